"""`python -m bot.runtime`: the same worker as `coach runtime`, without loading the whole command line first."""

from bot.cli.runtime_run import runtime_cmd

if __name__ == "__main__":
    runtime_cmd.main(prog_name="python -m bot.runtime")
