"""Issue #17's CLI repros: `tripsage webhooks add` takes a signing secret from standard input, an environment
variable or a hidden prompt on a terminal (never from its arguments), and refuses headers that are not a token or
carry CR/LF (stored, they failed every later delivery)."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from testkit import servers

from tripsage import standard_webhooks
from tripsage.crypto import Keyring
from tripsage.db import vault
from tripsage.db.connector import Database

WAIT = 60.0  # seconds the prompt test waits for the command (a bound, not a measurement)


@pytest.fixture
def env(embedded_database: str, tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    values.update(
        DATABASE_URL=embedded_database,
        TRIPSAGE_DATA_DIR=str(tmp_path),
        TRIPSAGE_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode(),
        TRIPSAGE_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
    )
    return values


def add(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tripsage", "webhooks", "add", *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=servers.REPO,
    )


async def stored_secrets(env: dict[str, str], name: str) -> list[str]:
    async with Database(env["DATABASE_URL"]) as db:
        return await vault.get_webhook_secrets(db, Keyring(env["TRIPSAGE_ENCRYPTION_KEY"]), name)


async def test_the_secret_comes_from_stdin_or_the_environment_never_the_arguments(env: dict[str, str]) -> None:
    piped, from_env = standard_webhooks.generate_secret(), standard_webhooks.generate_secret()
    added = add("piped", "http://127.0.0.1:9/a", "--secret-stdin", env=env, stdin=piped + "\n")
    assert added.returncode == 0, added.stderr
    assert piped not in added.stdout  # a given secret is not echoed back
    assert await stored_secrets(env, "piped") == [piped]

    added = add("from-env", "http://127.0.0.1:9/b", env={**env, "TRIPSAGE_WEBHOOK_SECRET": from_env})
    assert added.returncode == 0, added.stderr
    assert await stored_secrets(env, "from-env") == [from_env]

    empty = add("empty", "http://127.0.0.1:9/c", "--secret-stdin", env=env, stdin="")
    assert empty.returncode == 1 and "standard input has no secret" in empty.stderr
    no_terminal = add("asked", "http://127.0.0.1:9/d", "--ask-secret", env=env)
    assert no_terminal.returncode == 1 and "needs a terminal" in no_terminal.stderr
    on_the_line = add("argv", "http://127.0.0.1:9/e", "--secret", piped, env=env)
    assert on_the_line.returncode != 0  # there is no such option any more


def _take_terminal() -> None:  # in the child: make the pty on stdin the controlling terminal (getpass reads it)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_the_secret_can_be_typed_at_a_hidden_prompt(env: dict[str, str]) -> None:
    typed = standard_webhooks.generate_secret()
    controller, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tripsage", "webhooks", "add", "typed", "http://127.0.0.1:9/t", "--ask-secret"],
        env=env,
        cwd=servers.REPO,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + WAIT
        while b"signing secret" not in seen and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                seen += os.read(controller, 4096)
        assert b"signing secret" in seen, seen
        # Type only once the prompt has turned echo off (it flushes pending input as it does).
        while termios.tcgetattr(controller)[3] & termios.ECHO and time.monotonic() < deadline:
            select.select([controller], [], [], 0.05)
        os.write(controller, typed.encode() + b"\n")
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                try:
                    seen += os.read(controller, 4096)
                except OSError:  # the command exited and closed the terminal
                    break
        assert process.wait(timeout=WAIT) == 0, seen
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    assert typed.encode() not in seen  # hidden: not echoed
    assert asyncio.run(stored_secrets(env, "typed")) == [typed]


@pytest.mark.parametrize(
    "header",
    ["X-A=1\r\nX-Injected: 2", "X-A=line\nbreak", "Bad Name=1", "X-A:=1", "=value", "X-A=\x07"],
)
def test_headers_are_validated_when_added(env: dict[str, str], header: str) -> None:
    refused = add("bad-header", "http://127.0.0.1:9/h", "--header", header, env=env)
    assert refused.returncode == 1, refused.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "tripsage", "webhooks", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=servers.REPO,
        stdin=subprocess.DEVNULL,
    )
    assert "bad-header" not in listed.stdout
    fine = add("good-header", "http://127.0.0.1:9/h", "--header", "X-Tenant=a b\tc", env=env)
    assert fine.returncode == 0, fine.stderr
