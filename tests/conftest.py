"""Pytest fixtures shared by several test files.

Where shared test code lives: plain builders (GPU types, fleets, problems, plan checks) in
``tests/builders.py``, imported by name; the brute-force oracle in ``tests/oracles.py``;
the validation tests' mutations in ``tests/mutations.py``; a server on loopback in
``tests/server_support.py``; ``fleetplace`` run in this process in ``tests/cli_support.py``;
a headless Chromium driven over its DevTools pipe in ``tests/browser.py``; a plan store
writer for the tests' own processes in ``tests/store_worker.py``; fixtures (set-up with a
teardown) here, among them a real PostgreSQL server for the plan store's tests
(``postgres_server``: ``initdb`` into a temporary folder and ``pg_ctl start`` on a free
loopback port, no mock, no system cluster; as root both run as the ``postgres`` user, since
PostgreSQL refuses to run as root; ``.ci/run`` installs the server when the machine lacks
it), a fresh database on it per test (``pg_url``) and ``store_url``, which runs a test on a
SQLite file and then on PostgreSQL. No test file imports from another test file
(``tests/test_suite_layout.py`` checks it).

Tests that take more than about 5 s each carry ``@pytest.mark.slow``: ``pytest -m "not slow"``
is a quick local loop; ``bash run.sh test`` and CI run everything.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """Ray in this process (2 CPUs, no dashboard), shut down after the module's tests."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


def _pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    raise RuntimeError("PostgreSQL server binaries not found (initdb, pg_ctl): .ci/run installs them")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _pg_bindir()
    # not under pytest's temporary folder: that one is private to this user, and the server runs as another
    base = Path(tempfile.mkdtemp(prefix="fleetplace-pg-"))
    data = base / "data"
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        shutil.chown(base, user=user)
        os.chmod(base, 0o700)
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=120, user=user)

    run(
        str(bindir / "initdb"), "-D", str(data), "-U", "fleetplace", "--auth=trust", "-E", "UTF8", "--no-sync"
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base} -c max_connections=50"
    )
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "server.log"), "-w", "start")
    try:
        yield PostgresServer("127.0.0.1", port, "fleetplace")
    finally:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=60,
            user=user,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, as a ``postgresql://`` URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty plan store: a SQLite file, then a PostgreSQL database (every test runs on both)."""
    if request.param == "sqlite":
        return str(tmp_path / "plans.db")
    return str(request.getfixturevalue("pg_url"))
