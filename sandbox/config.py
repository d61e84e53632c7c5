"""Settings of the sandbox services, read from ``SANDBOX_*`` variables when built."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    """How big the synthetic dataset is and how the two sandbox services behave.

    Build it explicitly (``SandboxSettings()`` reads the environment at that moment) and
    pass it to ``create_app``; nothing reads the environment at import time.
    """

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", frozen=True)

    citizens: int = Field(default=10_000, ge=1)
    businesses: int | None = Field(default=None, ge=0)
    """Number of enterprises; ``None`` means ``citizens // 10``."""
    seed: int = 20250701
    host: str = "127.0.0.1"
    population_port: int = Field(default=8101, ge=0, le=65535)
    business_port: int = Field(default=8102, ge=0, le=65535)
    latency_ms: float = Field(default=0, ge=0)
    """Artificial delay before every lookup answers, for fault and benchmark runs."""
    max_batch: int = Field(default=100, ge=1)
