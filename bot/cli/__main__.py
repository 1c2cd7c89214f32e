"""`python -m bot.cli ...`: the `coach` command."""

from bot.cli.main import main

# worker processes started by forkserver or spawn import this module again as __mp_main__: only the
# process that was started as `python -m bot.cli` runs the command
if __name__ == "__main__":
    main()
