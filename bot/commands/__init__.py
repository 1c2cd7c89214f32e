"""Command modules, one per feature. Each declares its commands with `bot.registry.command`;
the composition root (`bot.app.COMMAND_MODULES`) lists the modules a service serves.
"""
