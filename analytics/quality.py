"""Quality of a setup: a weighted mean of seven factors, each scored in [0, 1] for the trade's direction d (+1/-1).

    quality = sum_i w_i * f_i             (weights sum to 1, every f_i is clipped to [0, 1],
                                           so quality is in [0, 1] by construction)

Quality grades a setup; it is not odds. Measured against "T1 before the stop" it scores worse
than always saying the base rate (README, Journal, scorecard and backtests), so replies show a
plan's calibrated probability (analytics.calibration) first and the quality second.

    factor       weight  score
    mtf          0.22    mean over the style's higher intervals of (1 + d * trend) / 2, where trend is
                         +1 (close > EMA21 >= EMA50), -1 (mirrored) or 0; 0.5 when there is none
    ema_stack    0.16    0.8 * (share of the pairs close/EMA9, EMA9/EMA21, EMA21/EMA50, EMA50/EMA200
                         ordered in direction d) + 0.2 * [MACD histogram has the sign of d]
    vwap         0.14    0.5 + 0.5 * d * (close - VWAP) / ATR   (VWAP = session VWAP intraday,
                         20-bar VWAP on daily/weekly bars; 0.5 when undefined)
    volume       0.12    (R - 0.7) / 1.3, R = mean volume of the last 3 bars / mean of the 30 before
    room         0.14    distance from entry to the nearest level in the trade's way, in units of
                         2 x risk (a level right at the entry scores 0; 2R of clear air or more scores 1)
    atr_regime   0.10    exp(-(ln(ATR / mean ATR of the last 100 bars) / 0.6)^2): 1 in a normal regime,
                         falling off as volatility compresses or blows out
    liquidity    0.12    (log10(dollar volume per session) - 7) / 2.5: $10M a day scores 0, $3B+ scores 1

The scanner ranks by `score = 0.8 * quality + 0.2 * min(rr1 / 4, 1)` where rr1 is the first
target's reward:risk, so quality leads and R:R breaks near-ties.
"""

from __future__ import annotations

import numpy as np

#: Factor names, in the column order of `factor_matrix`.
FACTORS: tuple[str, ...] = ("mtf", "ema_stack", "vwap", "volume", "room", "atr_regime", "liquidity")
#: Weight of each factor; they sum to 1.
WEIGHTS: dict[str, float] = {
    "mtf": 0.22,
    "ema_stack": 0.16,
    "vwap": 0.14,
    "volume": 0.12,
    "room": 0.14,
    "atr_regime": 0.10,
    "liquidity": 0.12,
}
#: How each factor reads in a reply.
LABELS: dict[str, str] = {
    "mtf": "higher-timeframe trend",
    "ema_stack": "EMA stack",
    "vwap": "side of VWAP",
    "volume": "volume",
    "room": "room to the next level",
    "atr_regime": "volatility regime",
    "liquidity": "liquidity",
}
_W = np.array([WEIGHTS[f] for f in FACTORS])
assert abs(_W.sum() - 1.0) < 1e-12


def _clip(x: np.ndarray, fill: float = 0.5) -> np.ndarray:
    """`x` in [0, 1]: NaN becomes `fill`, +inf 1 and -inf 0."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(np.where(np.isnan(x), fill, x), 0.0, 1.0)


def mtf_score(direction: np.ndarray, trends: list[np.ndarray]) -> np.ndarray:
    """Agreement of the higher intervals' trends with `direction`."""
    if not trends:
        return np.full(direction.shape, 0.5)
    t = np.stack(trends, axis=-1)  # (S, K)
    d = np.asarray(direction, dtype=np.float64)
    if d.ndim == 2:
        t = t[:, None, :]
    return _clip(((1.0 + d[..., None] * t) / 2.0).mean(axis=-1))


def ema_stack_score(
    direction: np.ndarray,
    close: np.ndarray,
    e9: np.ndarray,
    e21: np.ndarray,
    e50: np.ndarray,
    e200: np.ndarray,
    macd_hist: np.ndarray,
) -> np.ndarray:
    """Share of the EMA pairs ordered in the trade's direction, plus MACD agreement."""
    d = direction
    chain = [close, e9, e21, e50, e200]
    with np.errstate(invalid="ignore"):
        pairs = [d * (a - b) > 0 for a, b in zip(chain[:-1], chain[1:])]
        known = [np.isfinite(a - b) for a, b in zip(chain[:-1], chain[1:])]
        n_known = np.sum(known, axis=0)
        ordered = np.sum(pairs, axis=0) / np.maximum(n_known, 1)
        ordered = np.where(n_known > 0, ordered, 0.5)
        macd = np.where(np.isfinite(macd_hist), (d * macd_hist > 0).astype(float), 0.5)
    return _clip(0.8 * ordered + 0.2 * macd)


def vwap_score(direction: np.ndarray, close: np.ndarray, vwap: np.ndarray, atr: np.ndarray) -> np.ndarray:
    """Which side of VWAP price is on, scaled by ATR."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _clip(0.5 + 0.5 * direction * (close - vwap) / atr)


def volume_score(vol_ratio: np.ndarray) -> np.ndarray:
    """Volume expansion of the last bars."""
    return _clip((vol_ratio - 0.7) / 1.3)


def room_score(room: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Clear air to the nearest level in the trade's way, in units of 2R."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _clip(room / (2.0 * risk), fill=1.0)


def atr_regime_score(atr_ratio: np.ndarray) -> np.ndarray:
    """1 for a normal volatility regime, less when compressed or blown out."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _clip(np.exp(-((np.log(atr_ratio) / 0.6) ** 2)))


def liquidity_score(dollar_volume: np.ndarray) -> np.ndarray:
    """Dollar volume per session on a log scale."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _clip((np.log10(np.maximum(dollar_volume, 1.0)) - 7.0) / 2.5, fill=0.0)


def factor_matrix(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Stack factor scores (each (...,)) into (..., len(FACTORS)) in FACTORS order."""
    return np.stack([_clip(columns[f]) for f in FACTORS], axis=-1)


def quality(factors: np.ndarray) -> np.ndarray:
    """The weighted mean of the factor scores along the last axis, in [0, 1]."""
    q: np.ndarray = np.clip(np.asarray(factors) @ _W, 0.0, 1.0)
    return q


def rank_score(conf: np.ndarray, rr1: np.ndarray) -> np.ndarray:
    """The ranking key: quality first, the first target's R:R second."""
    score: np.ndarray = 0.8 * np.asarray(conf) + 0.2 * np.clip(np.nan_to_num(np.asarray(rr1)) / 4.0, 0.0, 1.0)
    return score
