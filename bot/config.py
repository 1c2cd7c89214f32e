"""The one settings object: everything the service reads from the environment and `.env`.

Nothing else in the project reads `os.environ` for configuration; `coach config` prints every
field here (secrets as set/unset). Secrets are SecretStr: they never print.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError
from core.urls import mask_url, url_credentials

DEFAULT_DB = "sqlite+aiosqlite:///./var/coach.db"
#: The log level when COACH_LOG_LEVEL is not set (the README's configuration table says the same; a test holds them together).
DEFAULT_LOG_LEVEL = "INFO"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Everything the service reads from its environment. Defaults run fully offline."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        DEFAULT_DB, description="SQLAlchemy async URL; SQLite file by default, postgresql+asyncpg://... for PostgreSQL"
    )
    coach_provider: str = Field("sim", description="market data: sim (offline), or a router chain like polygon,yahoo")
    coach_seed: int = Field(0, description="seed of the offline market")
    coach_replay_dir: Path | None = Field(
        None, description="folder of your own bar files (one per symbol, e.g. AAPL.csv) served by COACH_PROVIDER=replay"
    )
    coach_replay_tz: str = Field(
        "America/New_York", description="time zone of naive (offset-less) intraday times in replay files, e.g. UTC"
    )
    coach_out_dir: Path = Field(Path("./out"), description="where the console saves chart images")
    coach_log_level: str = Field(DEFAULT_LOG_LEVEL, description="log level for the service logs: " + ", ".join(LOG_LEVELS))
    coach_log_file: Path = Field(Path("./var/coach.log"), description="where the CLI and the console log (servers log to stderr)")
    coach_log_salt: SecretStr | None = Field(
        None, description="salt of the hashed tenant and user ids in server logs (default: derived from the database URL)"
    )
    coach_http_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="port of coach serve's HTTP endpoints (/healthz, /readyz, /metrics) when --port is not given",
    )
    coach_rate_per_minute: int = Field(30, ge=1, description="commands per user per minute before the bot asks to slow down")
    coach_api: bool = Field(
        True, description="serve the HTTP API (/api/v1/<command>, /openapi.json) on coach serve's HTTP port when one is set"
    )
    coach_api_max_body: int = Field(65_536, ge=1_024, le=10_485_760, description="largest HTTP API request body, in bytes")
    port: int | None = Field(
        None, ge=1, le=65535, description="HTTP port of `coach serve` (Slack HTTP mode) when --port is not given"
    )

    coach_chart_workers: int | None = Field(
        None, ge=0, le=16, description="chart render processes (default min(2, CPUs); 0 renders in a thread)"
    )
    coach_chart_renderer: Literal["fast", "mplfinance"] = Field("fast", description="default chart render path")
    coach_chart_start: Literal["forkserver", "spawn"] | None = Field(
        None, description="how chart workers start (default forkserver where it exists)"
    )

    coach_worker_id: str | None = Field(None, description="name of this runtime worker for the leader lease (default host:pid)")
    coach_rearm_min_quality: float = Field(
        0.5, ge=0.0, le=1.0, description="auto-rearm adopts a re-plan only at this quality grade or more (0-1)"
    )
    coach_rearm_max_per_day: int = Field(
        2, ge=0, le=50, description="auto-rearm adoptions per symbol and channel per day (0: never adopt by itself)"
    )

    coach_odds_symbols: str = Field(
        "SPY,QQQ,AAPL,MSFT,NVDA,TSLA",
        description="symbols whose replayed history calibrates the plans' odds (coach calibrate, and daily in coach serve)",
    )
    coach_odds_refit: bool = Field(True, description="refit the plans' odds after each close inside coach serve")

    coach_workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="worker processes that run chat requests in coach serve (default: one per core; 0: in the front)",
    )
    coach_queue_url: SecretStr | None = Field(
        None, description="a job queue (redis://host:6379/0): coach serve only admits and enqueues, coach worker runs the jobs"
    )
    coach_worker_nice: int = Field(
        0,
        ge=0,
        le=19,
        description="CPU priority worker processes give up (Unix nice) on a machine shared with the front and alerts",
    )
    coach_queue_prefix: str = Field(
        "coach",
        pattern=r"^[A-Za-z0-9_.:-]{1,40}$",
        description="the start of every queue key in Redis (deployments sharing one Redis differ here)",
    )
    coach_queue_claim_idle: float = Field(
        15.0, ge=2.0, le=600.0, description="seconds after which a silent worker's job goes to another worker"
    )
    coach_user_concurrency: int = Field(3, ge=1, le=100, description="requests one person may have running at once")
    coach_tenant_concurrency: int = Field(
        100, ge=1, le=10_000, description="requests one server or workspace may have running at once"
    )
    coach_cpu_budget: float = Field(20.0, gt=0, description="CPU seconds a quick command may use")
    coach_heavy_cpu_budget: float = Field(
        120.0, gt=0, description="CPU seconds a heavy command (a wide scan, a backtest) may use"
    )
    coach_discord_shard_count: int | None = Field(None, ge=1, description="Discord shards in all (several fronts split them)")
    coach_discord_shard_ids: str | None = Field(None, description="the shards this front runs, e.g. 0,1 (default: all)")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    coach_agent_max_steps: int = Field(6, ge=1, le=20, description="model calls per coach turn before it must answer")
    coach_llm_timeout: float = Field(30.0, gt=0, description="seconds per model call")
    coach_llm_retries: int = Field(2, ge=0, le=6, description="retries of a model call on 429/5xx/timeouts")
    coach_llm_stream: bool = Field(False, description="stream model responses (SSE)")
    coach_daily_token_budget: int = Field(200_000, ge=0, description="LLM tokens per user per UTC day; 0 = unlimited")
    coach_memory_tokens: int = Field(2_000, ge=0, description="conversation history kept in the prompt, in tokens")
    coach_llm_context: int = Field(
        128_000,
        ge=2_048,
        le=10_000_000,
        description="tokens the model server accepts per call (its context window); memory, tools and results are trimmed to fit",
    )

    discord_token: SecretStr | None = None
    discord_guild_id: int | None = None
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None

    polygon_api_key: SecretStr | None = None
    tradier_access_token: SecretStr | None = None
    tradier_account_id: str | None = None
    tradier_env: Literal["production", "sandbox"] = "sandbox"

    polygon_base_url: str = Field("https://api.massive.com", description="Polygon (Massive) REST base URL")
    polygon_ws_url: str = Field("wss://socket.massive.com/stocks", description="Polygon stocks WebSocket URL")
    disable_polygon_options: bool = Field(False, description="never call Polygon's option endpoints")
    disable_polygon_snapshots: bool = Field(False, description="never call Polygon's snapshot endpoints")
    disable_polygon_last: bool = Field(False, description="never call Polygon's last trade / NBBO endpoints")
    disable_polygon_stream: bool = Field(False, description="never open Polygon's WebSocket")
    tradier_base_url: str | None = Field(None, description="Tradier base URL (default: by TRADIER_ENV)")
    yahoo_base_url: str = Field("https://query2.finance.yahoo.com", description="Yahoo chart API base URL")
    coach_stale_minutes: float = Field(15.0, gt=0, description="data older than this during regular hours is stale")
    coach_broker: Literal["paper", "tradier"] = Field("paper", description="where orders go")
    coach_public_url: str | None = Field(
        None,
        description="public base URL of coach serve (https://coach.example.com): replies get an Open chart link to it, "
        "and /openapi.json names it as the API's server",
    )
    coach_link_secret: SecretStr | None = Field(
        None, description="key that signs chart links (HMAC-SHA256), at least 32 characters; no links without it"
    )
    coach_link_ttl: int = Field(
        7 * 86400,
        ge=60,
        le=90 * 86400,
        description="how long a chart link works: seconds, or 90m, 36h, 7d (default 7d)",
    )
    coach_webhook_allow_private: bool = Field(
        False,
        description=(
            "let alert webhooks reach private addresses (loopback, 10/8, 172.16/12, 192.168/16, CGNAT, IPv6 ULA) and plain "
            "http there, for self-hosted receivers; off: public https only"
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("postgres://"):
            v = "postgresql+asyncpg://" + v[len("postgres://") :]
        elif v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v[len("postgresql://") :]
        elif v.startswith("sqlite:///"):
            v = "sqlite+aiosqlite:///" + v[len("sqlite:///") :]
        return v

    @field_validator("coach_link_ttl", mode="before")
    @classmethod
    def _ttl(cls, v: object) -> object:
        # "7d", "36h", "90m", "3600s" or plain seconds
        if isinstance(v, str):
            text = v.strip().lower()
            units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
            if text and text[-1] in units and text[:-1].strip().isdigit():
                return int(text[:-1]) * units[text[-1]]
        return v

    @field_validator("coach_public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip().rstrip("/")
        if not v.startswith(("https://", "http://")) or "?" in v or "#" in v:
            raise ValueError("must be an http(s) base URL like https://coach.example.com (no query)")
        return v

    @field_validator("coach_log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        # a misspelt level used to fall back to INFO without a word
        level = v.strip().upper()
        level = "WARNING" if level == "WARN" else level
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (default {DEFAULT_LOG_LEVEL}), not {v[:20]!r}")
        return level

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    @property
    def tradier_env_choice(self) -> Literal["production", "sandbox", "auto"]:
        """`production`/`sandbox` when TRADIER_ENV is set, else `auto` (the token tells)."""
        return self.tradier_env if "tradier_env" in self.model_fields_set else "auto"

    def polygon_disabled(self) -> list[str]:
        """The Polygon call families switched off by hand."""
        out = []
        if self.disable_polygon_options:
            out += ["options", "contracts"]
        if self.disable_polygon_snapshots:
            out.append("snapshot")
        if self.disable_polygon_last:
            out.append("last")
        if self.disable_polygon_stream:
            out.append("stream")
        return out

    def secret_values(self) -> list[str]:
        """The values of every secret that is set, and the credentials inside URL settings (for log redaction)."""
        values = [getattr(self, n) for n in type(self).model_fields]
        out = [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
        for v in values:
            if isinstance(v, SecretStr) and "://" in v.get_secret_value():
                out += url_credentials(v.get_secret_value())
            elif isinstance(v, str) and "://" in v:
                out += url_credentials(v)
        return out

    def public(self) -> dict[str, object]:
        """Every setting as an operator may see it: secrets reduced to set/unset, every URL masked (`core.urls`).

        Any URL may carry a credential (`user:password@`, a token in its path or query), and this
        output lands in terminals, tickets and support chats.
        """
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if "SecretStr" in str(type(self).model_fields[name].annotation):
                out[name] = "set" if value else "unset"
            elif isinstance(value, str) and "://" in value:
                out[name] = mask_url(value)
            else:
                out[name] = "unset" if value is None else value
        return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; a bad value is a ConfigError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "_".join(str(p) for p in err.get("loc", ())).upper() or "a setting"
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ConfigError(f"{name}: {msg}") from None
