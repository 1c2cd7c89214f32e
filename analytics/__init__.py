"""Pure computation on bars and option chains: no network, no database, no clock.

Time is always passed in. Everything else in the project may import this package;
this package imports only numpy, pandas, scipy, TA-Lib and the exchange calendar.
"""
