"""The gateway's settings: one typed object, built once and passed to `create_app`.

Every setting can be given as an environment variable with the `GATEWAY_` prefix
(`GATEWAY_DATABASE_URL`, `GATEWAY_INTROSPECTION`, ...) or in a `.env` file. Nothing in
the project reads the environment at import time.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConfigurationError", "GatewaySettings", "WitnessSetting", "is_loopback_url"]


def is_loopback_url(url: str) -> bool:
    """Whether `url` names a host of this machine: 127.0.0.0/8, ::1 or localhost."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host == "localhost":  # urlsplit gives the host in lower case
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sign_in_url_refused(name: str, url: str) -> str | None:
    """Why `url` cannot be a production sign-in URL (`name` is its variable), or `None`."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "https" or (scheme == "http" and is_loopback_url(url)):
        return None
    return (
        f"{name} must be an https:// URL in production (plain http:// only on this machine: "
        f"127.0.0.0/8, ::1 or localhost), not {url!r}"
    )


DEVELOPMENT_PLATFORM_ORG = "VN/GOV/BCA"
"""The platform's operators outside production: the org the sandbox's examples sign in with."""


class ConfigurationError(ValueError):
    """Settings that cannot work together (e.g. PostgreSQL in production without Redis)."""


class WitnessSetting(BaseModel):
    """A witness of the log: where to submit checkpoints, and its cosigning key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="The witness's submission prefix (http or https).")
    key: str = Field(description="Its verifier key, `<name>+<hex key id>+<base64 key>`.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a witness's URL is http:// or https://")
        return value.rstrip("/")

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        from lienthong_client.log import CheckpointError, parse_cosigner_key

        try:
            parse_cosigner_key(value)
        except CheckpointError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()


class GatewaySettings(BaseSettings):
    """Settings of one gateway process."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", extra="ignore", frozen=True
    )

    # Where it listens and who it is.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    origin: str = Field(
        default="http://127.0.0.1:8000",
        description="The gateway's public origin; the audience of client tokens.",
    )
    environment: Literal["development", "demo", "production"] = "development"

    # Storage. SQLite under var/ by default; postgresql+asyncpg://... for production.
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///var/gateway.db")
    redis_url: SecretStr | None = None
    keys_dir: Path = Path("var/keys")

    # Connectors: manifest files (YAML or JSON) and per-connector endpoint overrides.
    connectors_dir: Path | None = None
    connector_urls: dict[str, str] = Field(default_factory=dict)
    connectors_allow_loopback: bool = Field(
        default=False,
        description="Let connectors registered through /admin reach loopback addresses "
        "(127.0.0.0/8, ::1, localhost) and SQLite files on this machine: the sandbox demo's "
        "agencies run there; a real agency's source never does.",
    )
    http_transport: Literal["aiohttp", "httpcore"] = Field(
        default="aiohttp", description="Transport of the client connectors call sources with."
    )
    clients_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="Seconds within which a change to a client or key made elsewhere (another "
        "replica, the CLI) reaches this gateway; a change made through it takes effect on "
        "the next request.",
    )
    catalogue_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Seconds within which a catalogue version coming into effect (approved "
        "through /admin/catalogue, or reaching its effective time) is followed.",
    )
    clients_jwks_ttl_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="Seconds the key set a client publishes (its JWKS URL) is kept before it "
        "is read again.",
    )
    clients_jwks_refetch_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Least seconds between two reads of one key set for a kid it does not hold "
        "(a key just published is found that soon; made-up kids cost one read).",
    )
    case_confirmation_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Seconds a dossier the dossier registry confirmed is kept, so that a "
        "case's next requests cost no lookup; a dossier closed meanwhile is seen closed at "
        "most this late. 0 looks every request's case up.",
    )
    connectors_poll_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Seconds between checks of the connectors in use, for a change to serve "
        "without restart; default: 5, or 60 with Redis, whose message announces a change at "
        "once (the check catches a message missed).",
    )

    # The verifiable access log.
    log_origin: str | None = Field(
        default=None,
        description="The log's name in checkpoints (a schema-less URL); default: "
        "<origin host>/log.",
    )
    merge_delay: float = Field(
        default=1.0, gt=0, le=300, description="Longest wait, in seconds, before integration."
    )
    witnesses: list[WitnessSetting] = Field(
        default_factory=list,
        description="Witnesses that cosign the log's checkpoints (c2sp.org/tlog-witness): "
        'JSON, `[{"url": "<submission prefix>", "key": "<name>+<key id>+<key>"}]`.',
    )
    witness_quorum: int | None = Field(
        default=None,
        ge=1,
        description="Cosignatures a checkpoint needs to be served at /log/checkpoint; "
        "default: every witness's.",
    )
    # Notifications (an outbox delivered by one replica at a time).
    notify_url: str | None = Field(
        default=None,
        description="The notification channel: each notification is POSTed there as JSON, "
        "its id as `Idempotency-Key`; unset, nothing is written to the outbox nor sent.",
    )
    notify_token: SecretStr | None = Field(
        default=None, description="Bearer secret the channel asks of the gateway, if any."
    )
    notify_interval: float = Field(
        default=5.0, gt=0, le=3600, description="Seconds between the dispatcher's passes."
    )
    notify_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Wait after a failed delivery, doubled at each failure up to "
        "`notify_retry_max_seconds`.",
    )
    notify_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    notify_max_attempts: int = Field(
        default=50, ge=1, le=1000, description="Attempts before a notification is failed."
    )
    notify_keep_days: float = Field(
        default=90.0,
        gt=0,
        description="Days a delivered or failed notification stays in the outbox.",
    )
    notify_breaker_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a connector's breaker stays open before its agency's "
        "administrators are told (once per outage).",
    )
    log_published_file: Path | None = Field(
        default=None,
        description="A file where the gateway keeps the newest checkpoint it signed, on "
        "storage that is not restored with the database (never beside its backups): a "
        "gateway whose database is older than it refuses to sign (LOG_BEHIND_PUBLISHED).",
    )
    log_continuity_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds between the sequencer's questions to the witnesses of whether "
        "the log continues what they cosigned (at start, and every 2 s while it does not).",
    )
    sequencer_timeout: float = Field(
        default=5.0,
        ge=1,
        le=300,
        description="PostgreSQL: seconds after which the database ends the session of a "
        "sequencer that holds the log's lock and stopped answering (partitioned, frozen), so "
        "that another replica takes over; its late commit then fails.",
    )
    request_deadline: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds within which a request is admitted, fetched and recorded; past "
        "them it is answered 503 DEADLINE_EXCEEDED, without data.",
    )
    recorder_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds a request waits for its access record to commit before it is "
        "refused (503 AUDIT_UNAVAILABLE, no data); if the record commits later, a record "
        "marking it undelivered follows.",
    )
    recorder_process: bool = Field(
        default=True,
        description="The access records' commits (their rows, sealing, hashes and "
        "statements) run in a process of their own beside each server process, so that "
        "they use another core; false keeps them in the server's process.",
    )
    retention_days: int = Field(
        default=1826,
        ge=1,
        description="Days the personal part of an access record is kept before it may be "
        "forgotten; a procedure of the catalogue may set its own.",
    )
    retention_schedule: bool = Field(
        default=True,
        description="Clear personal parts past their retention, and expire consents past "
        "their end, on schedule (one replica at a time; each run writes an admin record).",
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="Seconds between runs of retention (the first one interval after start; "
        "a run that leaves records past their retention is followed by another at once).",
    )
    retention_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Records cleared in one transaction."
    )
    retention_max_records: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="Most records one run of retention clears (its admin record lists them).",
    )
    hidden_max_days: int = Field(
        default=365, ge=1, le=3650, description="Longest an access may be hidden from subjects."
    )
    audit_max_range_days: int = Field(
        default=366, ge=1, description="Longest time range of one auditor search or export."
    )
    audit_max_page: int = Field(
        default=500, ge=1, le=10_000, description="Largest page of a search (`limit`)."
    )
    audit_max_export: int = Field(
        default=100_000, ge=1, description="Most records one export holds; beyond, it says so."
    )
    audit_pattern_peer_factor: float = Field(
        default=5.0,
        gt=1,
        description="A busy officer (auditor's patterns) reads more than this many times the "
        "median of the other officers of the same organisation over the period.",
    )
    audit_pattern_min_reads: int = Field(
        default=50,
        ge=1,
        description="A busy officer reads at least this many people over the period, whatever "
        "the median of their peers.",
    )
    audit_pattern_min_outside: int = Field(
        default=10,
        ge=1,
        description="Reads outside working hours flagged for an officer (or a client without "
        "officers) from this many on.",
    )
    audit_pattern_min_refusals: int = Field(
        default=10,
        ge=1,
        description="Records refused or withheld as SUBJECT_NOT_IN_CASE or CONSENT_REQUIRED "
        "flagged for a client or an officer from this many on.",
    )
    audit_pattern_min_orgs: int = Field(
        default=3,
        ge=2,
        description="A person read by at least this many distinct organisations over the period "
        "is flagged (by an opaque handle and a count, never the person's id).",
    )
    audit_work_start: int = Field(
        default=7,
        ge=0,
        le=23,
        description="Working hours start at this hour, Vietnam's time (UTC+7): a read before it "
        "is outside working hours.",
    )
    audit_work_end: int = Field(
        default=17,
        ge=1,
        le=24,
        description="Working hours end at this hour, Vietnam's time: a read at or after it, or "
        "on Saturday or Sunday, is outside working hours.",
    )

    # Clients and purposes.
    catalogue_dir: Path | None = Field(
        default=None, description="Procedure catalogue folder; default: the one shipped."
    )
    client_keys_dir: Path = Field(
        default=Path("var/client-keys"),
        description="Private keys of local clients, for `gateway token` (demo and tests).",
    )
    rate_limit_client: int = Field(default=1200, ge=1, description="Requests/minute per client.")
    rate_limit_officer: int = Field(default=120, ge=1, description="Requests/minute per officer.")
    consent_requests_per_minute: int = Field(default=30, ge=1)
    consent_answer_days: int = Field(default=7, ge=1, le=90)
    consent_max_days: int = Field(default=365, ge=1, le=3650)
    unsafe_demo_tokens: bool = Field(
        default=False,
        description="Sign request tokens for the query page at a loopback-only endpoint, "
        "for callers with `unsafe_demo_secret`. Demo only.",
    )
    unsafe_demo_secret: SecretStr | None = Field(
        default=None,
        description="Secret the query page sends to the demo-token endpoint (at least 32 "
        "characters); `gateway demo` makes a new one at each start. Required with "
        "`unsafe_demo_tokens`.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector to send traces to (e.g. http://collector:4318): "
        "spans of admission, decisions, source calls, recording and the log, with no "
        "personal data. Unset: no tracing.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer secret that reads GET /metrics (for a Prometheus scraper); an "
        "operator's staff sign-in reads it too. Unset: operators only.",
    )

    # Citizens and staff sign in with an OpenID Connect issuer (VNeID in production,
    # the sandbox issuer in the demo): its JWKS from discovery, a URL, or a file.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_jwks_file: Path | None = None
    oidc_audience: str | None = Field(
        default=None, description="Expected `aud` of citizen and staff tokens; default: origin."
    )
    oidc_jwks_max_age: float = Field(
        default=86400.0,
        gt=0,
        description="Seconds the issuer's keys are trusted after they were last fetched; "
        "when they cannot be fetched again by then, sign-in answers 503.",
    )
    oidc_level2_acr: list[str] = Field(
        default_factory=lambda: ["vneid-level-2"],
        description="`acr` values that prove an identity of level 2 (needed to approve consent).",
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="The gateway's client id at the issuer, for signing in through the "
        "browser (authorization code with PKCE); unset: no browser sign-in.",
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="The client's secret when the issuer registered a confidential client "
        "(sent by HTTP Basic to its token endpoint); unset: a public client, PKCE only.",
    )
    oidc_redirect_uri: str | None = Field(
        default=None,
        description="Where the issuer sends the browser back; default: "
        "<origin>/dang-nhap/callback.",
    )
    session_idle_minutes: float = Field(
        default=15.0,
        gt=0,
        le=24 * 60,
        description="Minutes without a request after which a browser session ends.",
    )
    session_max_hours: float = Field(
        default=8.0, gt=0, le=7 * 24, description="Hours after which a browser session ends."
    )
    platform_org: str | None = Field(
        default=None,
        description="The `org` (`VN/GOV/<org>`) of the platform's operators, who act on every "
        "client; other operators only on clients under their own org. Default: "
        f"`{DEVELOPMENT_PLATFORM_ORG}` (the sandbox's operators) except in production, "
        "where it is unset (no operator acts platform-wide); empty: none.",
    )

    @property
    def platform_organisation(self) -> str | None:
        """The `org` whose operators act on every client (see `platform_org`), or `None`."""
        if self.platform_org is not None:
            return self.platform_org or None
        return None if self.environment == "production" else DEVELOPMENT_PLATFORM_ORG

    # GraphQL.
    introspection: bool = Field(
        default=False,
        description="Answer `__schema` and `__type`. Default: on, except in production.",
    )
    query_page: bool = Field(
        default=False, description="Serve the GraphiQL query page at GET /graphql (text/html)."
    )
    query_example: str = Field(default="", description="Query the page shows on first load.")
    query_procedure: str = Field(
        default="1.004222", description="Procedure the page's demo tokens state at first."
    )
    max_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2000, ge=10)
    max_batch: int = Field(
        default=50, ge=1, description="Most identifiers one list argument may carry."
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    parser_cache_size: int = Field(default=1024, ge=1)

    # Logging.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True

    @model_validator(mode="before")
    @classmethod
    def _introspection_by_environment(cls, values: Any) -> Any:
        # The schema is public in the sandbox (the query page needs it); in production it
        # tells anyone probing what can be read, so it is answered only when asked for.
        if isinstance(values, dict) and values.get("introspection") is None:
            production = values.get("environment") == "production"
            return {**values, "introspection": not production}
        return values

    @model_validator(mode="after")
    def _sign_in_is_pinned(self) -> GatewaySettings:
        # A JWK set alone would let a token of any issuer signed with its keys in (another
        # tenant of the same provider): sign-in always names the issuer it trusts.
        if self.oidc_issuer is None and (
            self.oidc_jwks_url is not None or self.oidc_jwks_file is not None
        ):
            raise ValueError(
                "GATEWAY_OIDC_JWKS_URL or GATEWAY_OIDC_JWKS_FILE is set without "
                "GATEWAY_OIDC_ISSUER: set the issuer whose tokens are accepted (their `iss`)"
            )
        if self.environment == "production":
            for name, url in (
                ("GATEWAY_OIDC_ISSUER", self.oidc_issuer),
                ("GATEWAY_OIDC_JWKS_URL", self.oidc_jwks_url),
                # Notifications carry citizens' ids to the channel: never in clear.
                ("GATEWAY_NOTIFY_URL", self.notify_url),
            ):
                refused = _sign_in_url_refused(name, url) if url is not None else None
                if refused is not None:
                    raise ValueError(refused)
        return self

    @property
    def witness_names(self) -> tuple[str, ...]:
        """The configured witnesses' names: each key's name, before its first `+` (the
        keys were checked when read)."""
        return tuple(w.key.split("+", 1)[0] for w in self.witnesses)

    @field_validator("notify_url")
    @classmethod
    def _notify_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("GATEWAY_NOTIFY_URL is an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _quorum_of_witnesses(self) -> GatewaySettings:
        names = self.witness_names
        if len(set(names)) != len(names):
            raise ValueError("GATEWAY_WITNESSES names a witness twice")
        if self.witness_quorum is not None and self.witness_quorum > len(self.witnesses):
            raise ValueError(
                f"GATEWAY_WITNESS_QUORUM is {self.witness_quorum}, but "
                f"{len(self.witnesses)} witnesses are configured (GATEWAY_WITNESSES)"
            )
        return self

    @property
    def cosignatures_needed(self) -> int:
        """Cosignatures a checkpoint needs to be served at /log/checkpoint (0: none)."""
        if not self.witnesses:
            return 0
        return self.witness_quorum if self.witness_quorum is not None else len(self.witnesses)

    @field_validator("origin")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def browser_redirect_uri(self) -> str:
        """Where the issuer sends the browser back after sign-in."""
        return self.oidc_redirect_uri or f"{self.origin}/dang-nhap/callback"

    @property
    def checkpoint_origin(self) -> str:
        """The log's origin line: the setting, or the gateway's host and `/log`."""
        if self.log_origin:
            return self.log_origin
        return self.origin.split("://", 1)[-1].rstrip("/") + "/log"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.get_secret_value().startswith("sqlite")
