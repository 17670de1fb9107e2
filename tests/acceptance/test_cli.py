"""The `tripsage` command from outside, as an operator runs it, against real servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import servers
from testkit.servers import free_port

from tripsage import jwt

PYTHON = sys.executable


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env.update({"TRIPSAGE_DATA_DIR": str(data_dir), **extra})
    return env


def tripsage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "tripsage", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=servers.REPO,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def data_dir() -> Iterator[Path]:
    from tripsage.db.embedded import EmbeddedPostgres

    path = servers.make_shared_tempdir("tsg-cli-")
    try:
        yield path
    finally:
        EmbeddedPostgres(path).stop()
        subprocess.run(["rm", "-rf", str(path)], check=False)


def test_deploy_twice_then_verify_on_embedded(data_dir: Path) -> None:
    env = environment(data_dir)
    first = tripsage("deploy", env=env)
    assert first.returncode == 0, first.stderr
    assert "Applied" in first.stdout
    second = tripsage("deploy", env=env)
    assert second.returncode == 0 and "Nothing to apply" in second.stdout
    dry = tripsage("deploy", "--dry-run", env=env)
    assert dry.returncode == 0 and "Nothing to apply" in dry.stdout
    verify = tripsage("verify", "--json", env=env)
    report = json.loads(verify.stdout)
    assert verify.returncode == (0 if report["ok"] else 1)
    statuses = {ext["name"]: ext["status"] for ext in report["extensions"]}
    assert statuses["vector"] == statuses["pg_stat_statements"] == statuses["btree_gist"] == "native"
    assert statuses["pgcrypto"] == "missing"
    checks = {check["component"]: check["status"] for check in report["checks"]}
    assert checks["realtime"] == "ok"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "verify must stop the server it started"


def test_unreachable_database_is_one_line_and_exit_1(data_dir: Path) -> None:
    env = environment(data_dir, DATABASE_URL="postgresql://tripsage:secret@127.0.0.1:1/nowhere")
    result = tripsage("deploy", env=env)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot connect to postgresql://tripsage:***@127.0.0.1:1/nowhere")
    assert "secret" not in result.stderr


def test_keys_are_signed_with_the_project_secret(data_dir: Path) -> None:
    result = tripsage("keys", env=environment(data_dir))
    assert result.returncode == 0
    secret = (data_dir / "jwt_secret").read_text().strip()
    tokens = dict(line.split(" key: ") for line in result.stdout.strip().splitlines())
    assert jwt.verify(secret, tokens["anon"])["role"] == "anon"
    assert jwt.verify(secret, tokens["service_role"])["role"] == "service_role"


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tripsage up exited with {process.returncode}: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: dict[str, object] = json.loads(response.read())
                return body
        except OSError:
            time.sleep(0.1)
    raise AssertionError("tripsage up did not become healthy")


def test_up_serves_health_and_stops_cleanly_on_sigterm(data_dir: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "tripsage", "up", "--port", str(port)],
        env=environment(data_dir),
        cwd=servers.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/health", process)
        assert health["status"] in {"ok", "degraded"}
        assert health["database"]["status"] == "ok"  # type: ignore[index]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert f"API URL: http://127.0.0.1:{port}" in out
    assert "service_role key: " in out and "anon key: " in out and "DB URL: " in out
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "the embedded server must be stopped on exit"


def test_seed_scripts_keep_working(embedded_server: servers.Server, data_dir: Path) -> None:
    name = embedded_server.create_database(template=None)
    try:
        env = environment(data_dir, DATABASE_URL=embedded_server.url(name))
        deploy = subprocess.run(
            [PYTHON, "scripts/automation/deploy_extensions.py"],
            env=env,
            cwd=servers.REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        verify = subprocess.run(
            [PYTHON, "scripts/verification/verify_extensions.py", "--json"],
            env=env,
            cwd=servers.REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = json.loads(verify.stdout)
        assert verify.returncode == deploy.returncode == (0 if report["ok"] else 1), deploy.stderr
        assert "Applied" in deploy.stdout
        bare = subprocess.run(
            [PYTHON, "scripts/verification/verify_extensions.py"],
            env=environment(data_dir),
            cwd=servers.REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bare.returncode == 1 and "set SUPABASE_DB_URL or DATABASE_URL" in bare.stderr
    finally:
        embedded_server.drop_database(name)
