"""`python -m bot.cli ...`: the `coach` command."""

from bot.cli.main import main

main()
