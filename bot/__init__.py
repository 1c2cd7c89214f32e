"""The bot: commands, surfaces, the LLM agent, the alert runtime, configuration and the CLI."""
