"""Imports every ORM module so Base.metadata knows every table (used by migrations and tests).

Add a line here when a feature adds a storage module with tables.
"""

from storage import models  # noqa: F401
from storage import plans  # noqa: F401
from storage import alerts  # noqa: F401
from storage import outbox  # noqa: F401
from storage import runtime_state  # noqa: F401
from storage import journal  # noqa: F401
from storage import iv_history  # noqa: F401
from storage import conversations  # noqa: F401
from storage import orders  # noqa: F401
