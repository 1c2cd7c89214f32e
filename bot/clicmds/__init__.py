"""Hand-written CLI commands of feature modules.

Each module here defines `register(group: click.Group) -> None` and adds its commands
(for example `coach chart`, `coach backtest`, `coach runtime`). A command with the same
name as a registry command replaces the generated twin. Use `bot.cli.run` and
`bot.cli.fail` so errors become one line and an exit code.
"""
