"""Wire-level fakes for provider tests: an httpx.MockTransport that serves fixture payloads on cue."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """A fixture payload, e.g. fixture("polygon/aggs_minute.json")."""
    return json.loads((FIXTURES / name).read_text())


def resp(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A response with a JSON body (dict/list/None) or a text body (str)."""
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception | dict | list


class FakeAPI:
    """Routes (method, path regex) to queued answers; the last answer repeats. Records every request."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], list[Answer]]] = []
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> FakeAPI:
        self.routes.append((method.upper(), re.compile(path + r"\Z"), list(answers)))
        return self

    def calls(self, path: str) -> list[httpx.Request]:
        rx = re.compile(path + r"\Z")
        return [r for r in self.requests if rx.match(r.url.path)]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, rx, answers in self.routes:
            if method == request.method and rx.match(request.url.path):
                ans = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(ans, Exception):
                    raise ans
                if callable(ans) and not isinstance(ans, httpx.Response):
                    return ans(request)
                if isinstance(ans, (dict, list)):
                    return httpx.Response(200, json=ans)
                return ans
        return httpx.Response(404, json={"status": "NOT_FOUND", "message": f"no fake route for {request.url.path}"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


async def no_sleep(_seconds: float) -> None:
    """Stands in for asyncio.sleep so retries and backoff cost no wall time."""


class SleepLog:
    """An asyncio.sleep stand-in that records the waits it was asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def polygon_aggs(ticker: str, stamps_ms: list[int], price: float = 100.0, status: str = "OK") -> dict:
    """An aggregates payload (documented shape) with one bar per stamp."""
    results = [
        {
            "v": 1000.0 + i,
            "vw": price + 0.01,
            "o": price,
            "c": price + 0.02,
            "h": price + 0.05,
            "l": price - 0.05,
            "t": t,
            "n": 10,
        }
        for i, t in enumerate(stamps_ms)
    ]
    out = {
        "ticker": ticker,
        "queryCount": len(results),
        "resultsCount": len(results),
        "adjusted": True,
        "status": status,
        "request_id": "0" * 32,
        "count": len(results),
    }
    if results:
        out["results"] = results  # Polygon leaves `results` out when there is no data
    return out


def yahoo_chart(symbol: str, stamps_s: list[int], price: float = 100.0, granularity: str = "1m") -> dict:
    """A chart payload (documented shape) with one bar per stamp."""
    n = len(stamps_s)
    return {
        "chart": {
            "result": [
                {
                    "meta": {
                        "currency": "USD",
                        "symbol": symbol,
                        "exchangeName": "NMS",
                        "instrumentType": "EQUITY",
                        "gmtoffset": -14400,
                        "timezone": "EDT",
                        "exchangeTimezoneName": "America/New_York",
                        "regularMarketPrice": price,
                        "chartPreviousClose": price - 1,
                        "dataGranularity": granularity,
                        "range": "",
                    },
                    "timestamp": stamps_s,
                    "indicators": {
                        "quote": [
                            {
                                "open": [price] * n,
                                "high": [price + 0.1] * n,
                                "low": [price - 0.1] * n,
                                "close": [price + 0.05] * n,
                                "volume": [500] * n,
                            }
                        ]
                    },
                }
            ],
            "error": None,
        }
    }
