"""The alert book: crossing edges with hysteresis, cooldown, expiry, session filter, indicators, and the O(log n) index."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.alertbook import AlertBook, Rule, bar_metric, build_rule, price_band, session_allows
from core.values import ns_from_utc, utc_from_ns

S = 1_000_000_000
MIN = 60 * S


def feed(book: AlertBook, symbol: str, prices, t0: int = 0, step: int = S, status: str = "open"):
    fired = []
    for i, p in enumerate(prices):
        fired += book.evaluate(symbol, p, t0 + i * step, status)
    return fired


def test_price_hovering_at_the_level_fires_once():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="TSLA", value=250.0, armed_up=True, repeat=True))
    hover = [249.9, 250.01, 249.99, 250.0, 249.98, 250.02, 249.97, 250.03] * 20
    fired = feed(book, "TSLA", hover)
    assert [t.rule_id for t in fired] == [1]
    assert fired[0].value == 250.01 and fired[0].fire_count == 1 and not fired[0].final
    # only a move back through the band (250 - 0.25) re-arms it
    fired = feed(book, "TSLA", [249.8, 250.2, 249.74, 250.0], t0=10**6 * S)
    assert [t.fire_count for t in fired] == [2]


def test_one_shot_leaves_the_book():
    book = AlertBook()
    book.add(build_rule("below", id=7, symbol="SPY", value=500.0, armed_down=True))
    fired = feed(book, "SPY", [501, 499.5, 501, 499])
    assert len(fired) == 1 and fired[0].final and fired[0].side == "down"
    assert 7 not in book and len(book) == 0


def test_cross_fires_on_either_side_with_shared_hysteresis():
    book = AlertBook()
    book.add(build_rule("cross", id=1, symbol="AAPL", value=190.0, repeat=True))
    # first tick only sets the state (below: the up side armed, the down side waiting for 190 + band)
    fired = feed(book, "AAPL", [189.0, 189.99, 190.0, 189.9, 190.1, 189.95, 190.5, 189.5, 188.0])
    sides = [t.side for t in fired]
    assert sides == ["up", "down"]
    assert fired[1].value == 189.5


def test_created_beyond_the_level_waits_for_a_real_cross():
    book = AlertBook()
    r = build_rule("above", id=1, symbol="NVDA", value=100.0)
    r.initial_armed(105.0)  # already above when created
    assert r.armed_up is False
    book.add(r)
    assert feed(book, "NVDA", [106, 104, 101]) == []
    assert len(feed(book, "NVDA", [99.8, 100.0])) == 1


def test_unknown_state_is_set_by_the_first_tick_without_firing():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="X", value=10.0))
    assert feed(book, "X", [11.0]) == []  # already above: no fire
    dirty = book.take_dirty()
    assert [r.id for r in dirty] == [1] and dirty[0].armed_up is False
    assert len(feed(book, "X", [9.0, 10.5])) == 1


def test_repeating_alert_respects_its_cooldown():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="QQQ", value=400.0, armed_up=True, repeat=True, cooldown_ns=10 * MIN))
    # crosses at t=0, re-arms, crosses again at t=2 min (inside the cooldown: consumed), then at t=12 min
    path = [(0, 401.0), (1 * MIN, 399.0), (2 * MIN, 401.0), (3 * MIN, 399.0), (12 * MIN, 401.0)]
    fired = [t for at, p in path for t in book.evaluate("QQQ", p, at)]
    assert [t.at_ns for t in fired] == [0, 12 * MIN]
    assert [t.fire_count for t in fired] == [1, 2]


def test_expired_alert_never_fires_and_is_reported_once():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="AMD", value=150.0, armed_up=True, expires_ns=5 * MIN))
    book.add(build_rule("above", id=2, symbol="AMD", value=151.0, armed_up=True, expires_ns=50 * MIN))
    assert feed(book, "AMD", [149.0, 149.5], t0=0) == []
    fired = book.evaluate("AMD", 152.0, 6 * MIN)  # 1 would hold, but it expired at 5 min
    assert [t.rule_id for t in fired] == [2]
    assert book.expire(6 * MIN) == [1]
    assert book.expire(7 * MIN) == []
    assert 1 not in book


def test_expiry_sweep_without_ticks():
    book = AlertBook()
    for i in range(5):
        book.add(build_rule("above", id=i, symbol="A", value=10.0 + i, armed_up=True, expires_ns=i * MIN))
    assert sorted(book.expire(2 * MIN)) == [0, 1, 2]
    assert len(book) == 2


def test_alert_outside_its_session_waits_then_fires_in_session():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="TSLA", value=250.0, armed_up=True, session="regular"))
    book.add(build_rule("above", id=2, symbol="TSLA", value=250.0, armed_up=True, session="extended"))
    fired = feed(book, "TSLA", [249.0, 251.0, 252.0], status="pre")
    assert [t.rule_id for t in fired] == [2]  # the extended alert fires pre-market
    fired = book.evaluate("TSLA", 251.5, 10 * MIN, "open")  # the regular one fires at the open, still above
    assert [t.rule_id for t in fired] == [1]


def test_waiting_alert_whose_condition_lapsed_fires_on_the_next_cross():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="TSLA", value=250.0, armed_up=True))
    assert feed(book, "TSLA", [251.0], status="post") == []
    assert book.evaluate("TSLA", 249.0, MIN, "open") == []  # back below at the open: still armed
    assert [t.rule_id for t in book.evaluate("TSLA", 250.0, 2 * MIN, "open")] == [1]


def test_not_yet_active_alert_ignores_older_ticks():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="A", value=10.0, armed_up=True, active_from_ns=5 * MIN))
    assert book.evaluate("A", 11.0, MIN) == []
    assert len(book.evaluate("A", 11.0, 6 * MIN)) == 1


def test_pct_move_from_reference():
    up = build_rule("pct", id=1, symbol="A", value=2.0, reference=100.0, armed_up=True)
    down = build_rule("pct", id=2, symbol="A", value=-3.0, reference=100.0, armed_down=True)
    assert up.level == pytest.approx(102.0) and up.sides == ("up",)
    assert down.level == pytest.approx(97.0) and down.sides == ("down",)
    book = AlertBook()
    book.add(up)
    book.add(down)
    fired = feed(book, "A", [100, 101.9, 102.1, 98, 96.9])
    assert [t.rule_id for t in fired] == [1, 2]


def test_plan_events_follow_the_direction():
    assert build_rule("stop", id=1, symbol="A", value=95, direction="long").sides == ("down",)
    assert build_rule("stop", id=1, symbol="A", value=105, direction="short").sides == ("up",)
    assert build_rule("target", id=1, symbol="A", value=110, direction="long").sides == ("up",)
    assert build_rule("entry", id=1, symbol="A", value=100, direction="long").sides == ("up", "down")
    inv = build_rule("invalidation", id=1, symbol="A", value=95, direction="long", interval="5m")
    assert inv.metric == "close" and inv.sides == ("down",)
    with pytest.raises(ValueError):
        build_rule("stop", id=1, symbol="A", value=95)


def test_entry_touched_from_above_fires_once():
    book = AlertBook()
    book.add(build_rule("entry", id=3, symbol="A", value=100.0, direction="long"))
    fired = feed(book, "A", [103, 101, 100.0, 99, 101, 100])
    assert [(t.rule_id, t.side) for t in fired] == [(3, "down")]
    assert 3 not in book


def test_many_rules_one_tick_fires_in_price_order():
    book = AlertBook()
    for i in range(100):
        book.add(build_rule("above", id=i, symbol="S", value=100.0 + i, armed_up=True))
    book.add(build_rule("below", id=1000, symbol="S", value=50.0, armed_down=True))
    fired = book.evaluate("S", 150.0, 0)
    assert [t.rule_id for t in fired] == list(range(51))
    assert len(book) == 50


def test_remove_and_replace():
    book = AlertBook()
    book.add(build_rule("above", id=1, symbol="S", value=10.0, armed_up=True))
    book.add(build_rule("cross", id=2, symbol="S", value=10.0, armed_up=True, armed_down=False))
    assert book.remove(1).id == 1 and book.remove(1) is None
    book.add(build_rule("above", id=2, symbol="S", value=20.0, armed_up=True))  # replaces the cross
    assert book.evaluate("S", 15.0, 0) == []
    assert [t.rule_id for t in book.evaluate("S", 20.0, 1)] == [2]
    assert len(book) == 0 and book.symbols() == set()


def test_session_allows():
    assert session_allows("regular", "open") and not session_allows("regular", "pre")
    assert session_allows("extended", "post") and not session_allows("extended", "closed")


def test_time_round_trip():
    import datetime as dt

    at = dt.datetime(2024, 3, 13, 15, 0, 1, 123456, tzinfo=dt.UTC)
    assert utc_from_ns(ns_from_utc(at)) == at
    assert ns_from_utc(at.astimezone(dt.timezone(dt.timedelta(hours=-4)))) == ns_from_utc(at)


# ---------------------------------------------------------------------- bar rules


def _bars(closes, start="2024-03-13 14:00", freq="5min", volume=1000.0):
    idx = pd.date_range(start, periods=len(closes), freq=freq, tz="UTC")
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame({"open": c, "high": c + 0.1, "low": c - 0.1, "close": c, "volume": volume}, index=idx)


def test_rsi_alert_fires_on_the_crossing_bar_only():
    book = AlertBook()
    book.add(build_rule("rsi_above", id=1, symbol="A", value=70.0, interval="5m", repeat=True))
    closes = list(100 - np.arange(30) * 0.2) + list(94.2 + np.arange(1, 30) * 0.5)
    fired_at = []
    for n in range(20, len(closes) + 1):
        df = _bars(closes[:n])
        for _trigger in book.evaluate_bars("A", "5m", df, n * 5 * MIN):
            fired_at.append(n)
    assert len(fired_at) == 1  # stays above 70 afterwards: no repeat without a re-arm below 68
    rsi_at = bar_metric("rsi", {"period": 14}, _bars(closes[: fired_at[0]]))
    rsi_before = bar_metric("rsi", {"period": 14}, _bars(closes[: fired_at[0] - 1]))
    assert rsi_at >= 70.0 > rsi_before


def test_ema_cross_and_vwap_reclaim():
    book = AlertBook()
    book.add(build_rule("ema_cross_up", id=1, symbol="A", interval="5m"))
    book.add(build_rule("vwap_reclaim", id=2, symbol="A", interval="5m"))
    down = list(100 - np.arange(40) * 0.1)
    up = list(96.1 + np.arange(1, 40) * 0.15)
    closes = down + up
    fired = {}
    for n in range(25, len(closes) + 1):
        for t in book.evaluate_bars("A", "5m", _bars(closes[:n]), n):
            fired.setdefault(t.rule_id, n)
    assert set(fired) == {1, 2}
    for rid, metric, params in ((1, "ema_diff_bps", {"fast": 9, "slow": 21}), (2, "vwap_diff_bps", {})):
        n = fired[rid]
        assert bar_metric(metric, params, _bars(closes[:n])) >= 0 > bar_metric(metric, params, _bars(closes[: n - 1]))


def test_bar_rule_warming_up_does_not_fire():
    book = AlertBook()
    book.add(build_rule("rsi_below", id=1, symbol="A", value=30.0, interval="5m", armed_down=True))
    assert book.evaluate_bars("A", "5m", _bars([100.0] * 5), 0) == []
    assert 1 in book


# ---------------------------------------------------------------------- against a plain scan


class _Scan:
    """The obvious O(rules) evaluator: every rule checked on every tick, same semantics."""

    def __init__(self, rules: list[Rule]):
        self.rules = {r.id: r for r in rules}

    def evaluate(self, symbol, price, at):
        out = []
        for r in sorted(self.rules.values(), key=lambda r: r.id):
            if r.symbol != symbol:
                continue
            for side in r.sides:
                if r.id not in self.rules:
                    break
                s = 1.0 if side == "up" else -1.0
                if r.armed(side) and s * price >= s * r.level:
                    if r.repeat and r.last_fired_ns is not None and at - r.last_fired_ns < r.cooldown_ns:
                        r.set_armed(side, False)
                        continue
                    r.fire_count += 1
                    r.last_fired_ns = at
                    r.set_armed(side, False)
                    out.append((r.id, side, r.fire_count))
                    if not r.repeat:
                        del self.rules[r.id]
                elif not r.armed(side) and s * price <= s * r.level - r.band:
                    r.set_armed(side, True)
        return out


def _random_rules(rng, n, symbols):
    rules = []
    for i in range(n):
        kind = rng.choice(["above", "below", "cross"])
        lvl = round(rng.uniform(90, 110), 2)
        r = build_rule(
            kind, id=i, symbol=rng.choice(symbols), value=lvl, repeat=rng.random() < 0.5, cooldown_ns=rng.choice([0, 3 * S])
        )
        r.initial_armed(100.0)
        rules.append(r)
    return rules


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6))
def test_book_matches_a_plain_scan(seed):
    rng = random.Random(seed)
    symbols = ["A", "B", "C"]
    rules = _random_rules(rng, 60, symbols)
    book = AlertBook()
    for r in rules:
        book.add(Rule(**{f: getattr(r, f) for f in r.__slots__}))
    scan = _Scan([Rule(**{f: getattr(r, f) for f in r.__slots__}) for r in rules])
    price = {s: 100.0 for s in symbols}
    for t in range(400):
        s = rng.choice(symbols)
        price[s] = max(1.0, price[s] + rng.gauss(0, 1.2))
        p = round(price[s], 2)
        got = sorted((x.rule_id, x.side, x.fire_count) for x in book.evaluate(s, p, t * S))
        want = sorted(scan.evaluate(s, p, t * S))
        assert got == want


def test_band_defaults():
    assert price_band(250.0) == pytest.approx(0.25)
    assert price_band(3.0) == 0.01
