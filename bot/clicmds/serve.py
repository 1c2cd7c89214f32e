"""`coach serve [--port N] [--host H]`: the bot on every configured surface (replaces the plain `serve`)."""

from __future__ import annotations

from typing import Optional

import click


def register(group: click.Group) -> None:
    """Add `serve` with its network options (overrides the foundation's option-less command)."""

    @click.command("serve")
    @click.option("--port", type=int, default=None, help="Slack HTTP mode port (default: $PORT or 3000)")
    @click.option("--host", default="0.0.0.0", show_default=True, help="address the Slack HTTP server binds")
    def serve_cmd(port: Optional[int], host: str) -> None:
        """Run the bot on the surfaces whose credentials are set; the console when none is."""
        from bot.cli import fail, run
        from bot.config import get_settings
        from bot.logging import setup_logging
        from bot.serve import configured_surfaces, serve

        if port is not None and not 0 < port < 65536:
            fail(f"--port must be 1-65535, not {port}")
        try:
            surfaces = configured_surfaces(get_settings())
        except Exception as exc:  # ConfigError: one line, exit 1
            fail(str(exc), 1)
            return
        if surfaces:
            # a server logs to stderr for its supervisor; the console keeps its log file so replies stay readable
            setup_logging("server")
        run(lambda: serve(port=port, host=host))

    group.add_command(serve_cmd)
