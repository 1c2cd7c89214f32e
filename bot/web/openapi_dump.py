"""`python -m bot.web.openapi_dump`: print the HTTP API's OpenAPI document (for a light front, which builds it here).

A front that hands every request to workers never loads the analytics; the result models it needs
for the document live there, so it asks a child process running this module instead.
"""

from __future__ import annotations

import json
import sys

from bot.app import command_registry
from bot.web.openapi import build_document


def main() -> None:
    json.dump(build_document(command_registry(), server_url="/"), sys.stdout, separators=(",", ":"))


if __name__ == "__main__":
    main()
