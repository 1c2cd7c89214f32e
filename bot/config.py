"""Settings from the environment and `.env`. Secrets are SecretStr: they never print."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB = "sqlite+aiosqlite:///./var/coach.db"


class Settings(BaseSettings):
    """Everything the service reads from its environment. Defaults run fully offline."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(DEFAULT_DB, description="SQLAlchemy async URL; SQLite file by default, postgresql+asyncpg://... for PostgreSQL")
    coach_provider: str = Field("sim", description="market data: sim (offline), or a router chain like polygon,yahoo")
    coach_seed: int = Field(0, description="seed of the offline market")
    coach_out_dir: Path = Field(Path("./out"), description="where the console saves chart images")
    coach_log_level: str = Field("WARNING", description="log level for the service logs")
    coach_rate_per_minute: int = Field(30, description="commands per user per minute before the bot asks to slow down")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    coach_agent_max_steps: int = Field(6, ge=1, le=20, description="model calls per coach turn before it must answer")
    coach_llm_timeout: float = Field(30.0, gt=0, description="seconds per model call")
    coach_llm_retries: int = Field(2, ge=0, le=6, description="retries of a model call on 429/5xx/timeouts")
    coach_llm_stream: bool = Field(False, description="stream model responses (SSE)")
    coach_daily_token_budget: int = Field(200_000, ge=0, description="LLM tokens per user per UTC day; 0 = unlimited")
    coach_memory_tokens: int = Field(2_000, ge=0, description="conversation history kept in the prompt, in tokens")

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

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("postgres://"):
            v = "postgresql+asyncpg://" + v[len("postgres://"):]
        elif v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v[len("postgresql://"):]
        elif v.startswith("sqlite:///"):
            v = "sqlite+aiosqlite:///" + v[len("sqlite:///"):]
        return v

    @property
    def llm_enabled(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)

    def public(self) -> dict[str, object]:
        """Settings safe to show an operator: secrets reduced to set/unset, passwords masked in URLs."""
        out: dict[str, object] = {}
        for name, value in self.model_dump().items():
            if isinstance(getattr(self, name), SecretStr):
                out[name] = "set" if value else "unset"
            elif name == "database_url":
                out[name] = mask_url(str(value))
            else:
                out[name] = value
        return out


def mask_url(url: str) -> str:
    """Hide the password of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported elsewhere; never echo it whole
        return "<unparsable url>"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
