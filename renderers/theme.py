"""Chart colours and page layout: the dark (chat-client) and light themes, and where each panel sits in pixels.

Both render paths read the same `Theme` and `Layout`, so a chart looks the same whichever
drew it. Colours follow one rule everywhere: stop red, targets green, entry blue; candles
use softer teal/red so the plan's lines stand out from the bars behind them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import UserError


@dataclass(frozen=True)
class Theme:
    """Every colour a chart uses, by role."""

    name: str
    bg: str
    panel: str
    grid: str
    text: str
    muted: str
    spine: str
    up: str
    down: str
    up_volume: str
    down_volume: str
    entry: str
    stop: str
    target: str
    last: str
    vwap: str
    ema: tuple[str, ...]
    #: Level colours by Level.kind; unknown kinds use `level_default`.
    level: dict[str, str] = field(default_factory=dict)
    level_default: str = "#90a4ae"
    #: Band fill colours by kind, drawn with `band_alpha`.
    band: dict[str, str] = field(default_factory=dict)
    band_alpha: float = 0.16
    session_break: str = "#3a3f4b"


DARK = Theme(
    name="dark",
    # close to the Discord / Slack dark message background, a touch darker so the chart reads as a card
    bg="#17191e",
    panel="#17191e",
    grid="#262a33",
    text="#e6e8ee",
    muted="#9aa0ac",
    spine="#323743",
    up="#26a69a",
    down="#ef5350",
    up_volume="#1f6f68",
    down_volume="#8e3434",
    entry="#3d8bfd",
    stop="#ff3b3b",
    target="#22c55e",
    last="#c3c7d0",
    vwap="#ffffff",
    ema=("#f5c542", "#b18cff", "#ff8a4c"),
    level={
        "orh": "#ffb547",
        "orl": "#ffb547",
        "pdh": "#d48cf0",
        "pdl": "#d48cf0",
        "pdc": "#d48cf0",
        "hod": "#4fd2e6",
        "lod": "#4fd2e6",
        "swing_high": "#9aa5b1",
        "swing_low": "#9aa5b1",
        "htf": "#f48fb1",
        "liquidity_high": "#ffe066",
        "liquidity_low": "#ffe066",
        "avwap": "#ff9e6b",
        "vwap": "#ffffff",
    },
    band={
        "supply": "#ef5350",
        "demand": "#26a69a",
        "fvg_bull": "#4fc3f7",
        "fvg_bear": "#f48fb1",
        "liquidity_high": "#ffe066",
        "liquidity_low": "#ffe066",
        "entry_zone": "#3d8bfd",
    },
    session_break="#3a3f4b",
)

LIGHT = Theme(
    name="light",
    bg="#ffffff",
    panel="#ffffff",
    grid="#eceef2",
    text="#1d2330",
    muted="#5d6470",
    spine="#c9ced6",
    up="#089981",
    down="#e0433f",
    up_volume="#9fd9cf",
    down_volume="#f3b3b1",
    entry="#1f6feb",
    stop="#d91e1e",
    target="#138a3c",
    last="#59606b",
    vwap="#1d2330",
    ema=("#c98a00", "#7c4dff", "#e2561d"),
    level={
        "orh": "#d97a00",
        "orl": "#d97a00",
        "pdh": "#9c27b0",
        "pdl": "#9c27b0",
        "pdc": "#9c27b0",
        "hod": "#0097a7",
        "lod": "#0097a7",
        "swing_high": "#607d8b",
        "swing_low": "#607d8b",
        "htf": "#c2185b",
        "liquidity_high": "#b08900",
        "liquidity_low": "#b08900",
        "avwap": "#e65100",
        "vwap": "#1d2330",
    },
    level_default="#607d8b",
    band={
        "supply": "#e0433f",
        "demand": "#089981",
        "fvg_bull": "#0288d1",
        "fvg_bear": "#c2185b",
        "liquidity_high": "#b08900",
        "liquidity_low": "#b08900",
        "entry_zone": "#1f6feb",
    },
    band_alpha=0.13,
    session_break="#d5d9e0",
)

THEMES: dict[str, Theme] = {"dark": DARK, "light": LIGHT}


def get_theme(name: str) -> Theme:
    """The theme called `name` (dark or light), or a UserError naming the accepted ones."""
    theme = THEMES.get(str(name).strip().lower())
    if theme is None:
        raise UserError(f"unknown theme {str(name)[:20]!r}; accepted: {', '.join(THEMES)}")
    return theme


def level_color(theme: Theme, kind: str) -> str:
    """Colour of a level line of `kind` (orh, pdh, ...)."""
    return theme.level.get(kind, theme.level_default)


def band_color(theme: Theme, kind: str) -> str:
    """Fill colour of a band of `kind` (supply, demand, fvg_bull, ...)."""
    return theme.band.get(kind, theme.level_default)


def text_on(color: str) -> str:
    """Black or white, whichever reads better on a box filled with `color` (hex #rrggbb)."""
    c = color.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    # relative luminance (sRGB approximation) with the WCAG midpoint
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#0b0d12" if lum > 0.45 else "#ffffff"


# --------------------------------------------------------------------------- layout

#: Font sizes in points (at 100 dpi one point is 1.39 px).
TITLE_PT = 14.0
SUBTITLE_PT = 10.0
LABEL_PT = 9.5
TICK_PT = 9.0
FOOTER_PT = 9.0


@dataclass(frozen=True)
class Layout:
    """Where the panels sit, in pixels from the top-left corner of the image."""

    width: int
    height: int
    dpi: int
    left: int
    right: int  # x of the price axes' right edge; the label gutter runs from here to `width`
    price_top: int
    price_bottom: int
    volume_top: int
    volume_bottom: int
    label_h: int  # height of one right-edge label box
    rail_w: int  # width of the exact-price marker strip at the image's right edge

    def fig_rect(self, top: int, bottom: int) -> tuple[float, float, float, float]:
        """[left, bottom, width, height] in figure fractions for a panel spanning rows top..bottom."""
        return (
            self.left / self.width,
            1.0 - bottom / self.height,
            (self.right - self.left) / self.width,
            (bottom - top) / self.height,
        )

    @property
    def price_rect(self) -> tuple[float, float, float, float]:
        return self.fig_rect(self.price_top, self.price_bottom)

    @property
    def volume_rect(self) -> tuple[float, float, float, float]:
        return self.fig_rect(self.volume_top, self.volume_bottom)

    def price_to_row(self, price: float, lo: float, hi: float) -> float:
        """Pixel row (from the top) of `price` on the price axes showing lo..hi."""
        return self.price_top + (hi - price) / (hi - lo) * (self.price_bottom - self.price_top)


def layout(width: int = 1200, height: int = 700, dpi: int = 100) -> Layout:
    """The page layout for an image of width x height pixels."""
    scale = dpi / 100.0
    gutter = int(round(170 * scale))  # fits a bold "Entry / ORH 4,565.98" tag
    header = int(round(58 * scale))
    footer = int(round(52 * scale))
    volume_h = max(int(round(0.13 * height)), int(round(40 * scale)))
    gap = int(round(6 * scale))
    price_bottom = height - footer - volume_h - gap
    return Layout(
        width=width,
        height=height,
        dpi=dpi,
        left=int(round(10 * scale)),
        right=width - gutter,
        price_top=header,
        price_bottom=price_bottom,
        volume_top=price_bottom + gap,
        volume_bottom=height - footer,
        label_h=int(round(18 * scale)),
        rail_w=int(round(5 * scale)),
    )
