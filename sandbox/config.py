"""Settings of the sandbox services, read from ``SANDBOX_*`` variables when built."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    """How big the synthetic dataset is and how the sandbox services behave.

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
    insurance_port: int = Field(default=8104, ge=0, le=65535)
    civil_port: int = Field(default=8105, ge=0, le=65535)
    dossiers_port: int = Field(default=8106, ge=0, le=65535)
    witness_port: int = Field(default=8107, ge=0, le=65535)
    notify_port: int = Field(default=8108, ge=0, le=65535)
    witness_name: str = "witness.sandbox.lienthong.test/w1"
    """The witness's name (a schema-less URL, as C2SP asks): its cosignatures carry it."""
    witness_key_file: Path | None = None
    """The witness's PKCS#8 PEM Ed25519 key, written (mode 0600) when missing; ``None``:
    one per process (its cosignatures then mean nothing after a restart)."""
    witness_state_file: Path = Path("var/witness-state.json")
    """Where the witness keeps the last checkpoint it cosigned of each log."""
    witness_log_keys: list[str] = Field(default_factory=list)
    """Verifier keys of the logs it witnesses (``<origin>+<key id>+<key>``), as the
    gateway's ``GET /log/key`` gives them; ``SANDBOX_WITNESS_LOG_KEYS='["..."]'``."""
    latency_ms: float = Field(default=0, ge=0)
    """Artificial delay before every lookup answers, for fault and benchmark runs."""
    max_batch: int = Field(default=100, ge=1)
    sample_size: int = Field(default=10, ge=1)
    """How many ids of each kind ``GET /_sandbox/sample`` offers."""
    civil_key_file: Path | None = None
    """The civil registry's PKCS#8 PEM Ed25519 key for signing documents, written (mode
    0600) when missing; ``None``: one per process."""
    business_key_file: Path | None = None
    """The business registry's document-signing key, as ``civil_key_file``."""

    # The sandbox identity issuer (``sandbox.issuer``): signs for anyone, no passwords.
    issuer_port: int = Field(default=8103, ge=0, le=65535)
    issuer_url: str | None = None
    """The issuer's ``iss`` and base URL; ``None`` means ``http://{host}:{issuer_port}``."""
    issuer_audience: str = "http://127.0.0.1:8000"
    """The ``aud`` of the tokens it signs: the gateway's origin."""
    issuer_key_file: Path | None = None
    """PKCS#8 PEM Ed25519 key, written (mode 0600) when missing; ``None``: one per process."""
    issuer_token_lifetime: int = Field(default=600, ge=1)
    """Seconds from ``iat`` to ``exp`` of the tokens it signs."""
    issuer_clients: dict[str, list[str]] = Field(
        default_factory=lambda: {"gateway": ["http://127.0.0.1:8000/dang-nhap/callback"]}
    )
    """Registered OpenID Connect clients: client id -> the redirect URIs it may use
    (exact match); ``SANDBOX_ISSUER_CLIENTS='{"gateway": ["http://..."]}'``."""

    @property
    def issuer_base_url(self) -> str:
        """``issuer_url``, or the URL the issuer listens on by default."""
        url = self.issuer_url or f"http://{self.host}:{self.issuer_port}"
        return url.rstrip("/")
