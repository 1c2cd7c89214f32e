"""The error tree travels between processes (worker pools send errors back) whole."""

from __future__ import annotations

import pickle

from bot.runtime.destinations import DeliveryError
from core.errors import NotFoundError, ProviderError, RateLimited, UserError


def test_every_error_survives_pickling_with_its_fields() -> None:
    for err in (
        UserError("bad input"),
        NotFoundError("no such plan"),
        ProviderError("polygon", "403 not entitled"),
        RateLimited("tradier", retry_after=2.5),
        DeliveryError("discord", "gone", permanent=True),
    ):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.__dict__ == err.__dict__
    rl = pickle.loads(pickle.dumps(RateLimited("tradier", retry_after=2.5)))
    assert rl.retry_after == 2.5 and rl.provider == "tradier" and rl.transient
