"""Settings, from the environment (and a .env file): see the table in README.md.

The database is `SUPABASE_DB_URL`, else `DATABASE_URL`, else the embedded server in `TRIPSAGE_DATA_DIR`. Local secrets
(`TRIPSAGE_JWT_SECRET`, `TRIPSAGE_ENCRYPTION_KEY`) are generated on first start and kept with mode 0600 in the data
dir when unset; in production mode they are required.
"""

from __future__ import annotations

import base64
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tripsage.exceptions import ConfigurationError

DEFAULT_PORT = 54321
SECRETS_FILE_MODE = 0o600
MIN_JWT_SECRET_LENGTH = 32  # characters


class Settings(BaseSettings):
    """Every TripSage setting. Field names map to the environment variables in the README."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    supabase_db_url: str | None = Field(default=None, validation_alias="SUPABASE_DB_URL")
    database_url_env: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Field(default=Path(".tripsage"), validation_alias="TRIPSAGE_DATA_DIR")
    db_port: int | None = Field(default=None, validation_alias="TRIPSAGE_DB_PORT")
    mode: Literal["development", "production"] = Field(default="development", validation_alias="TRIPSAGE_MODE")
    jwt_secret_env: str | None = Field(default=None, validation_alias="TRIPSAGE_JWT_SECRET")
    encryption_key_env: str | None = Field(default=None, validation_alias="TRIPSAGE_ENCRYPTION_KEY")
    previous_encryption_keys: str = Field(default="", validation_alias="TRIPSAGE_PREVIOUS_ENCRYPTION_KEYS")
    embedding_dim: int = Field(default=384, validation_alias="TRIPSAGE_EMBEDDING_DIM")
    host: str = Field(default="127.0.0.1", validation_alias="TRIPSAGE_HOST")
    port: int = Field(default=DEFAULT_PORT, validation_alias="TRIPSAGE_PORT")
    public_url: str | None = Field(default=None, validation_alias="TRIPSAGE_PUBLIC_URL")
    db_role: str | None = Field(default=None, validation_alias="TRIPSAGE_DB_ROLE")
    pool_max_size: int = Field(default=10, validation_alias="TRIPSAGE_POOL_MAX_SIZE")
    migrations_dir: Path | None = Field(default=None, validation_alias="TRIPSAGE_MIGRATIONS_DIR")
    webhook_allow_hosts: str = Field(default="", validation_alias="TRIPSAGE_WEBHOOK_ALLOW_HOSTS")
    # Hosts or CIDRs the pg_net emulation's worker may reach although the SSRF guard refuses them (loopback, ...).
    net_allow_hosts: str = Field(default="", validation_alias="TRIPSAGE_NET_ALLOW_HOSTS")
    # Set by `tripsage up`: point the seed webhook configs trip_events/ai_processing at this runtime and activate them.
    webhook_point_seed: bool = Field(default=False, validation_alias="TRIPSAGE_WEBHOOK_POINT_SEED")
    smtp_url: str | None = Field(default=None, validation_alias=AliasChoices("SMTP_URL", "TRIPSAGE_SMTP_URL"))
    smtp_from: str = Field(
        default="TripSage <no-reply@tripsage.local>", validation_alias=AliasChoices("SMTP_FROM", "TRIPSAGE_SMTP_FROM")
    )
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    # Embeddings: "local" (sentence-transformers, all-MiniLM-L6-v2, CPU) or "openai" (an OpenAI-compatible API).
    embedding_provider: Literal["local", "openai"] = Field(
        default="local", validation_alias="TRIPSAGE_EMBEDDING_PROVIDER"
    )
    openai_embedding_model: str = Field(
        default="text-embedding-3-small", validation_alias="TRIPSAGE_OPENAI_EMBEDDING_MODEL"
    )
    # Preference extraction from chat messages: "rules" (built in) or "openai" (an OpenAI-compatible chat model).
    preference_extractor: Literal["rules", "openai"] = Field(
        default="rules", validation_alias="TRIPSAGE_PREFERENCE_EXTRACTOR"
    )
    openai_chat_model: str = Field(default="gpt-4o-mini", validation_alias="TRIPSAGE_OPENAI_CHAT_MODEL")
    openai_base_url: str = Field(default="https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL")
    log_level: str = Field(default="info", validation_alias="TRIPSAGE_LOG_LEVEL")
    # How often each replica writes its per-process figures (realtime latency, function calls) to system_metrics.
    runtime_figures_interval_s: float = Field(default=60.0, gt=0, validation_alias="TRIPSAGE_RUNTIME_FIGURES_INTERVAL")
    # The emulated scheduler: the timezone of cron schedules (pg_cron's cron.timezone), the default statement timeout.
    cron_timezone: str = Field(default="UTC", validation_alias="TRIPSAGE_CRON_TIMEZONE")
    cron_statement_timeout_s: float = Field(default=600.0, gt=0, validation_alias="TRIPSAGE_CRON_STATEMENT_TIMEOUT")
    # false: this runtime never runs emulated jobs (other replicas may); e.g. for tests that count rows jobs write.
    cron_enabled: bool = Field(default=True, validation_alias="TRIPSAGE_CRON_ENABLED")
    # Production topologies (docs/operations.md): a direct or session-mode URL for the runtime's session-bound parts
    # (LISTEN, the scheduler's leader lock, emulated jobs' sessions) when DATABASE_URL is a transaction-mode pooler.
    db_direct_url: str | None = Field(default=None, validation_alias="TRIPSAGE_DB_DIRECT_URL")
    # Hardening (docs/security.md): HTTPS/WSS served by the runtime itself, and realtime sockets per user and per
    # client address beside the per-process limit.
    tls_cert_file: Path | None = Field(default=None, validation_alias="TRIPSAGE_TLS_CERT_FILE")
    tls_key_file: Path | None = Field(default=None, validation_alias="TRIPSAGE_TLS_KEY_FILE")
    realtime_max_connections_per_user: int = Field(
        default=100, gt=0, validation_alias="TRIPSAGE_REALTIME_MAX_CONNECTIONS_PER_USER"
    )
    realtime_max_connections_per_ip: int = Field(
        default=200, gt=0, validation_alias="TRIPSAGE_REALTIME_MAX_CONNECTIONS_PER_IP"
    )
    # Supabase's "Allow public access" off: realtime channels must be private (public joins get PrivateOnly).
    realtime_private_only: bool = Field(default=False, validation_alias="TRIPSAGE_REALTIME_PRIVATE_ONLY")
    # permessage-deflate on realtime sockets. Off by default, as Supabase Realtime (its Phoenix endpoint does not
    # negotiate it): compressing each frame for each socket costs CPU per frame sent (docs/performance.md).
    realtime_compression: bool = Field(default=False, validation_alias="TRIPSAGE_REALTIME_COMPRESSION")

    @field_validator("cron_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value, "TRIPSAGE_CRON_TIMEZONE")

    @field_validator("embedding_dim")
    @classmethod
    def _dimension_in_range(cls, value: int) -> int:
        if not 1 <= value <= 2000:
            raise ValueError("TRIPSAGE_EMBEDDING_DIM must be between 1 and 2000 (pgvector HNSW's limit)")
        return value

    @model_validator(mode="after")
    def _tls_files_together(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TRIPSAGE_TLS_CERT_FILE and TRIPSAGE_TLS_KEY_FILE are set together (or neither)")
        return self

    @property
    def serves_tls(self) -> bool:
        return self.tls_cert_file is not None

    # -- the database ------------------------------------------------------------------------------------------

    @property
    def external_database_url(self) -> str | None:
        """The configured server, or None for the embedded one."""
        return self.supabase_db_url or self.database_url_env or None

    @property
    def uses_embedded(self) -> bool:
        return self.external_database_url is None

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def repo_root(self) -> Path:
        return Path(__file__).resolve().parents[2]

    @property
    def resolved_migrations_dir(self) -> Path:
        return (self.migrations_dir or self.repo_root / "supabase" / "migrations").resolve()

    # -- secrets -----------------------------------------------------------------------------------------------

    @cached_property
    def jwt_secret(self) -> str:
        secret = self.jwt_secret_env or self._local_secret("jwt_secret", lambda: secrets.token_urlsafe(48))
        if len(secret) < MIN_JWT_SECRET_LENGTH:
            raise ConfigurationError(
                f"TRIPSAGE_JWT_SECRET must be at least {MIN_JWT_SECRET_LENGTH} characters (as Supabase requires)"
            )
        return secret

    @cached_property
    def encryption_key(self) -> str:
        """Base64 of 32 random bytes (AES-256)."""
        return self.encryption_key_env or self._local_secret(
            "encryption_key", lambda: base64.b64encode(secrets.token_bytes(32)).decode()
        )

    @property
    def old_encryption_keys(self) -> list[str]:
        return [key.strip() for key in self.previous_encryption_keys.split(",") if key.strip()]

    def _local_secret(self, name: str, make: object) -> str:
        """Read `name` from the data dir, or create it there (mode 0600) in development mode."""
        env_name = f"TRIPSAGE_{name.upper()}"
        if self.mode == "production":
            raise ConfigurationError(f"{env_name} must be set in production mode (TRIPSAGE_MODE=production)")
        directory = self.resolved_data_dir
        path = directory / name
        if path.exists():
            if path.stat().st_mode & 0o077:
                raise ConfigurationError(f"{path} is readable by other users: chmod 600 {path}")
            return path.read_text().strip()
        assert callable(make)
        value = str(make())
        directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRETS_FILE_MODE)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(value + "\n")
        return value


def check_timezone(name: str, source: str) -> str:
    """`name` if it is a time zone of the IANA database (as pg_cron's cron.timezone is), else a one-line error."""
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise ValueError(
            f"{source}: unknown time zone {name!r} (use an IANA name such as UTC or Europe/Berlin)"
        ) from error
    return name


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value becomes one clear ConfigurationError (one line)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        problems = "; ".join(
            str(problem["msg"]).removeprefix("Value error, ")
            if problem["type"] == "value_error"
            else f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from error
    except ValueError as error:
        raise ConfigurationError(f"invalid settings: {error}") from error
