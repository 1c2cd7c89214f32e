"""What every layer shares and nothing else: the error tree, the wall clock, retry and cache policies, value helpers.

`core` imports nothing from the project; every other package may import it.
"""
