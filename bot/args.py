"""Argument types shared by command models: the base model, validated symbols, intervals, styles, chart interval count.

Light on purpose (no numpy, no pandas): a chat front declares and validates every command's arguments
with these and never loads what the handlers compute with.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from analytics.intervals import normalise_interval
from analytics.symbols import validate_symbol


class ArgsModel(BaseModel):
    """The base of every command's argument model: what all commands refuse, declared once.

    NaN and infinity are refused for every number (`above nan`, `value=inf`, a tool call's NaN):
    Python's float() and JSON parsers accept them, but no price, percent, size or threshold can
    be one, and comparisons with NaN are silently false deeper down. The registry refuses a
    command whose model does not inherit this.
    """

    model_config = ConfigDict(allow_inf_nan=False)


def _lower(v: object) -> object:
    return v.strip().lower() if isinstance(v, str) else v


def _symbol_list(v: object) -> object:
    if isinstance(v, str):
        return [p for p in v.replace(",", " ").split() if p]
    return v


#: A ticker, upper-cased and validated (`TSLA`, `BRK.B`).
SymbolArg = Annotated[str, AfterValidator(validate_symbol)]
#: An interval token, normalised (`5min` -> `5m`).
IntervalArg = Annotated[str, AfterValidator(normalise_interval)]
#: A list of tickers; accepts "AAPL,MSFT" or ["AAPL", "MSFT"].
SymbolsArg = Annotated[list[SymbolArg], BeforeValidator(_symbol_list), Field(max_length=500)]
#: Trading style; sets the intervals a plan looks at.
StyleArg = Annotated[Literal["scalp", "intraday", "swing", "leaps"], BeforeValidator(_lower)]

#: The most intervals one chart request draws (one image each, or one grid); the chart service holds to it too.
MAX_CHART_INTERVALS = 4
