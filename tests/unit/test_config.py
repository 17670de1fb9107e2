import stat
from pathlib import Path

import pytest

from tripsage.config import load_settings
from tripsage.exceptions import ConfigurationError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "SUPABASE_DB_URL",
        "DATABASE_URL",
        "TRIPSAGE_JWT_SECRET",
        "TRIPSAGE_ENCRYPTION_KEY",
        "TRIPSAGE_MODE",
        "TRIPSAGE_EMBEDDING_DIM",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("TRIPSAGE_DATA_DIR", str(tmp_path / "data"))


def test_database_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().uses_embedded
    monkeypatch.setenv("DATABASE_URL", "postgresql://b/db")
    assert load_settings().external_database_url == "postgresql://b/db"
    monkeypatch.setenv("SUPABASE_DB_URL", "postgresql://a/db")
    assert load_settings().external_database_url == "postgresql://a/db"


def test_local_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load_settings()
    secret = settings.jwt_secret
    key = settings.encryption_key
    for name in ("jwt_secret", "encryption_key"):
        mode = stat.S_IMODE((tmp_path / "data" / name).stat().st_mode)
        assert mode == 0o600
    again = load_settings()
    assert again.jwt_secret == secret
    assert again.encryption_key == key


def test_world_readable_secret_file_is_refused(tmp_path: Path) -> None:
    load_settings().jwt_secret  # noqa: B018 - creates the file
    (tmp_path / "data" / "jwt_secret").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_settings().jwt_secret  # noqa: B018


def test_production_requires_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPSAGE_MODE", "production")
    with pytest.raises(ConfigurationError, match="TRIPSAGE_JWT_SECRET must be set"):
        load_settings().jwt_secret  # noqa: B018
    monkeypatch.setenv("TRIPSAGE_JWT_SECRET", "too-short")
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_settings().jwt_secret  # noqa: B018
    monkeypatch.setenv("TRIPSAGE_JWT_SECRET", "from-the-environment-and-long-enough-to-sign")
    assert load_settings().jwt_secret == "from-the-environment-and-long-enough-to-sign"


def test_embedding_dimension_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPSAGE_EMBEDDING_DIM", "4096")
    with pytest.raises(ConfigurationError, match="between 1 and 2000"):
        load_settings()


def test_a_mistyped_cron_timezone_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(data_dir=tmp_path, cron_timezone="Europe/Berln")
    assert str(error.value) == (
        "invalid settings: TRIPSAGE_CRON_TIMEZONE: unknown time zone 'Europe/Berln' "
        "(use an IANA name such as UTC or Europe/Berlin)"
    )
    assert load_settings(data_dir=tmp_path, cron_timezone="America/New_York").cron_timezone == "America/New_York"
