"""The `coach` command line (`bot.cli.main`): twins of the chat commands, and what only the command line does."""
