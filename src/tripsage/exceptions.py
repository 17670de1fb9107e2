"""Every error TripSage raises on purpose.

TripSageError
├── ConfigurationError          a setting is missing or invalid
├── DatabaseError               PostgreSQL could not be reached or refused something
│   ├── DatabaseUnavailable     no connection (unreachable, wrong password, no such database)
│   ├── InsufficientPrivilege   the role lacks a privilege it needs
│   └── CommandFailed           PostgreSQL refused a scheduled job's session or command (libpq's text)
├── EmbeddedServerError         the embedded PostgreSQL could not be initialised, started or stopped
├── MigrationError              a migration failed, or an applied migration's file changed
└── CryptoError                 a secret could not be encrypted or decrypted
"""

from __future__ import annotations


class TripSageError(Exception):
    """TripSage failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(TripSageError):
    """A setting is missing or invalid."""


class DatabaseError(TripSageError):
    """PostgreSQL could not be reached or refused the request."""


class DatabaseUnavailable(DatabaseError):
    """PostgreSQL could not be reached."""


class InsufficientPrivilege(DatabaseError):
    """The database role lacks a privilege TripSage needs."""


class CommandFailed(DatabaseError):
    """PostgreSQL refused a scheduled job's session or command."""


class EmbeddedServerError(TripSageError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


class MigrationError(TripSageError):
    """A migration could not be applied."""


class CryptoError(TripSageError):
    """A secret could not be encrypted or decrypted."""
