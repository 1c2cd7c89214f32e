"""Command modules. Importing this package registers every command in `bot.registry.REGISTRY`.

Each module holds one feature's commands; new modules are found automatically.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every module in this package (idempotent)."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


load_all()
