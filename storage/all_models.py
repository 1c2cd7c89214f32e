"""Imports every ORM module so Base.metadata knows every table (used by migrations and tests).

Add a line here when a feature adds a storage module with tables.
"""

from storage import (
    alerts,  # noqa: F401
    answers,  # noqa: F401
    api_answers,  # noqa: F401
    api_keys,  # noqa: F401
    conversations,  # noqa: F401
    iv_history,  # noqa: F401
    journal,  # noqa: F401
    models,  # noqa: F401
    odds_fits,  # noqa: F401
    orders,  # noqa: F401
    outbox,  # noqa: F401
    plans,  # noqa: F401
    removals,  # noqa: F401
    runtime_state,  # noqa: F401
)
