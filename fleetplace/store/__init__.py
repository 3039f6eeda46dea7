"""The plan store: every plan recorded with its input and provenance, and at most one current plan.

    store = open_store("plans.db")                          # SQLite file: created and migrated
    store = open_store("postgresql://fleetplace@db/fleet")  # PostgreSQL (psycopg 3)
    record = store.record(problem, plan, requested_by="cli")
    store.get(record.id).plan, store.current(), store.history(limit=20)
    with store.lock("rebalance", ttl_s=900, wait_s=0):      # one rebalance at a time
        ...
        store.record(problem, plan, requested_by="cron", kind="rebalance", current=True,
                     expected_current=previous_id)

Where: ``resolve_url`` takes a file path, ``sqlite:///PATH`` or ``postgresql://...``; nothing
given: ``$FLEETPLACE_STORE``, else ``$XDG_DATA_HOME/fleetplace/plans.db`` (XDG_DATA_HOME
defaults to ``~/.local/share``).

A row holds the input digest (SHA-256 of the request as solved, deterministic protobuf bytes),
the input and the plan (``placement.v1`` protobuf, zlib-compressed), status, stop reason,
bound, gap, the objective tiers (moves among them), replicas, unplaced workloads, wall time,
code revision, who asked (cli, rpc, cron), the kind (plan or rebalance), the plan a rebalance
started from and its changes.

Guarantees, each held by the database itself:

* **One current plan.** A unique index over the rows whose ``is_current`` is true (partial
  index, SQLite and PostgreSQL alike) makes a second current row impossible. ``record(current=
  True, expected_current=ID)`` switches in one transaction, and only if ID is still current
  (an ``UPDATE ... WHERE id = ID AND is_current`` that must touch one row); otherwise
  ``CurrentChanged`` and nothing is written.
* **One rebalance at a time.** ``lock`` holds a lease row (name, token, host, pid, expiry): a
  second process waits up to ``wait_s`` and then gets ``StoreBusy`` naming the holder. A lease
  whose holder is gone (same host, no such process) or that expired is taken over.
* **Nothing half-written.** Every write is one transaction; SQLite runs in WAL mode with
  ``synchronous=FULL``. A process killed mid-write leaves the store as the last commit left it
  (``tests/test_store_kill.py``). Each plan's SHA-256 is checked when it is read.
* **Versioned schema.** Alembic migrations (``migrations/versions``) run on open, serialized
  (SQLite's write lock; a PostgreSQL advisory lock); a store at a revision this code does not
  know is refused with ``StoreSchemaError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from fleetplace.store.schema import KINDS, RECORD_COLUMNS, REQUESTERS, VERSION_TABLE, locks, plans
from placement.changes import FleetChanges
from placement.core.domain import Plan, Problem

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ENV_VAR = "FLEETPLACE_STORE"
ZLIB_LEVEL = 6
ADVISORY_LOCK_KEY = 0x466C_5053  # "FlPS": serializes migrations on PostgreSQL
SQLITE_BUSY_TIMEOUT_S = 60.0


class StoreError(Exception):
    """The store cannot do what was asked (unreachable, unreadable, refused)."""


class StoreBusy(StoreError):
    """Another process holds the lock (e.g. another rebalance is running)."""


class CurrentChanged(StoreError):
    """The current plan is not the one this run started from: nothing was recorded."""


class PlanNotFound(StoreError):
    pass


class StoreSchemaError(StoreError):
    """The store's schema is at a revision this code does not know (a newer fleetplace made it)."""


class StoreCorrupt(StoreError):
    """A stored plan does not match its checksum."""


@dataclass(frozen=True)
class PlanRecord:
    """One stored plan without its payloads (the proto message ``PlanRecord``)."""

    id: int
    created_at: datetime  # UTC
    requested_by: str  # cli, rpc, cron
    kind: str  # plan, rebalance
    current: bool
    parent_id: int | None
    input_digest: str  # SHA-256, hex, of the request as solved
    status: str  # SolveStatus name
    stop_reason: str  # StopReason name
    bound: float | None
    gap: float | None
    placed_work: int
    energy: int
    moves: int
    fragmentation: int
    move_price: int  # placed work the moves cost where priced (tier 1 is placed work less it)
    replicas: int
    unplaced_workloads: int
    wall_s: float
    code_revision: str
    changes: str  # a rebalance's changes in a line; "" otherwise


@dataclass(frozen=True)
class StoredPlan:
    record: PlanRecord
    problem: Problem  # the instance as solved (current replicas filled)
    plan: Plan
    changes: FleetChanges | None  # a rebalance's changes


@dataclass(frozen=True)
class LockHolder:
    host: str
    pid: int
    acquired_at: datetime
    expires_at: float  # seconds since the epoch

    def __str__(self) -> str:
        until = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.host} pid {self.pid} since {_utc_text(self.acquired_at)} (lease until {until})"


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fleetplace" / "plans.db"


def resolve_url(store: str | None) -> str:
    """The SQLAlchemy URL of ``--store``: a path, ``sqlite:///PATH`` or ``postgresql://...``;
    nothing given: ``$FLEETPLACE_STORE``, else the default path under the user's data folder."""
    value = store or os.environ.get(ENV_VAR) or ""
    if not value:
        return f"sqlite:///{default_path()}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    scheme, rest = value.split("://", 1)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme == "sqlite":
        return value
    raise StoreError(
        f"unknown store scheme {scheme!r}: give a file path, sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def display_url(url: str | URL) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unreadable store URL>"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc_text(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record(row: Any) -> PlanRecord:
    return PlanRecord(
        id=int(row.id),
        created_at=_utc(row.created_at),
        requested_by=row.requested_by,
        kind=row.kind,
        current=bool(row.is_current),
        parent_id=int(row.parent_id) if row.parent_id is not None else None,
        input_digest=row.input_digest,
        status=row.status,
        stop_reason=row.stop_reason,
        bound=row.bound,
        gap=row.gap,
        placed_work=int(row.placed_work),
        energy=int(row.energy),
        moves=int(row.moves),
        fragmentation=int(row.fragmentation),
        move_price=int(row.move_price),
        replicas=int(row.replicas),
        unplaced_workloads=int(row.unplaced_workloads),
        wall_s=float(row.wall_s),
        code_revision=row.code_revision,
        changes=row.changes or "",
    )


class PlanStore:
    """A plan store at a SQLAlchemy URL (see the module docstring). Thread-safe; one per process."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.backend = self.url.get_backend_name()
        if self.backend not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported store {display_url(self.url)}: SQLite or PostgreSQL only")
        self.engine = self._engine()
        try:
            self._migrate()
        except OperationalError as e:
            self.engine.dispose()
            raise StoreError(f"cannot open the store {self}: {_first_line(e)}") from None
        except BaseException:
            self.engine.dispose()
            raise

    def __str__(self) -> str:
        return display_url(self.url)

    # ------------------------------------------------------------------ set-up

    def _engine(self) -> Engine:
        if self.backend == "postgresql":
            return sa.create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        database = self.url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).parent
            if not folder.is_dir():
                raise StoreError(f"cannot open the store {self}: no such folder {folder}")
        engine = sa.create_engine(self.url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by sqlite3
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # a writer takes the write lock at once, so two writers queue instead of deadlocking
            write = conn.get_execution_options().get("fleetplace_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(fleetplace_write=True)
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        script = ScriptDirectory.from_config(config)
        with self._write() as conn:
            if self.backend == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            heads = set(
                MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
            )
            known = {s.revision for s in script.walk_revisions()}
            unknown = sorted(heads - known)
            if unknown:
                raise StoreSchemaError(
                    f"the store {self} has schema revision {', '.join(unknown)}, newer than this fleetplace "
                    f"knows (up to {', '.join(sorted(script.get_heads()))}); use a newer fleetplace"
                )
            if heads != set(script.get_heads()):
                log.info("store %s: migrating the schema from %s to head", self, sorted(heads) or "empty")
                config.attributes["connection"] = conn
                command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ plans

    def record(
        self,
        problem: Problem,
        plan: Plan,
        *,
        requested_by: str,
        kind: str = "plan",
        current: bool = False,
        expected_current: int | None = None,
        parent_id: int | None = None,
        changes: FleetChanges | None = None,
    ) -> PlanRecord:
        """Record ``plan`` of ``problem``; with ``current``, make it the current plan, provided that
        ``expected_current`` (None: no plan) is still current, else ``CurrentChanged``."""
        from wire.convert import changes_to_proto, plan_to_proto, request_from_problem

        if requested_by not in REQUESTERS:
            raise ValueError(f"requested_by must be one of {REQUESTERS}, got {requested_by!r}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        input_raw = request_from_problem(problem).SerializeToString(deterministic=True)
        plan_raw = plan_to_proto(plan).SerializeToString(deterministic=True)
        info = plan.info
        row = {
            "created_at": datetime.now(UTC),
            "requested_by": requested_by,
            "kind": kind,
            "is_current": current,
            "parent_id": parent_id,
            "input_digest": hashlib.sha256(input_raw).hexdigest(),
            "status": info.status.value,
            "stop_reason": info.stop_reason.value,
            "bound": info.bound,
            "gap": info.gap,
            "placed_work": plan.objective.placed_work,
            "energy": plan.objective.energy,
            "moves": plan.objective.moves,
            "fragmentation": plan.objective.fragmentation,
            "move_price": plan.objective.move_price,
            "replicas": len(plan.placements),
            "unplaced_workloads": len(plan.unplaced),
            "wall_s": info.wall_s,
            "code_revision": (info.code_revision or _code_revision())[:64],
            "changes": changes.summary() if changes is not None and not changes.empty else "",
            "input_z": zlib.compress(input_raw, ZLIB_LEVEL),
            "plan_z": zlib.compress(plan_raw, ZLIB_LEVEL),
            "changes_z": (
                zlib.compress(changes_to_proto(changes).SerializeToString(deterministic=True), ZLIB_LEVEL)
                if changes is not None
                else None
            ),
            "plan_sha256": hashlib.sha256(plan_raw).hexdigest(),
        }
        try:
            with self._write() as conn:
                if current:
                    self._release_current(conn, expected_current)
                new_id = conn.execute(sa.insert(plans).values(**row)).inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError as e:
            if current:
                raise CurrentChanged(
                    "another run made a plan current at the same moment; nothing recorded"
                ) from e
            raise
        except OperationalError as e:
            raise StoreError(f"cannot write to the store {self}: {_first_line(e)}") from None
        log.info(
            "store %s: recorded plan #%d (%s, by %s, current %s)", self, new_id, kind, requested_by, current
        )
        return self.get_record(int(new_id))

    def _release_current(self, conn: Connection, expected: int | None) -> None:
        now = conn.execute(sa.select(plans.c.id).where(plans.c.is_current)).scalar()
        if expected is None:
            if now is not None:
                raise CurrentChanged(
                    f"plan #{now} became current while this run was planning (it started from none); "
                    "nothing recorded"
                )
            return
        done = conn.execute(
            sa.update(plans).where(plans.c.id == expected, plans.c.is_current).values(is_current=False)
        )
        if done.rowcount != 1:
            now = conn.execute(sa.select(plans.c.id).where(plans.c.is_current)).scalar()
            what = f"plan #{now} is current now" if now is not None else "no plan is current now"
            raise CurrentChanged(
                f"the current plan changed while this run was planning (it started from #{expected}; "
                f"{what}); nothing recorded"
            )

    def get_record(self, plan_id: int) -> PlanRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(*RECORD_COLUMNS).where(plans.c.id == plan_id)).first()
        if row is None:
            raise PlanNotFound(f"no plan #{plan_id} in the store {self}")
        return _record(row)

    def current_id(self) -> int | None:
        with self._read() as conn:
            value = conn.execute(sa.select(plans.c.id).where(plans.c.is_current)).scalar()
        return int(value) if value is not None else None

    def current(self) -> StoredPlan | None:
        plan_id = self.current_id()
        return self.get(plan_id) if plan_id is not None else None

    def get(self, plan_id: int) -> StoredPlan:
        """The stored plan with its record, instance and changes; ``PlanNotFound``, ``StoreCorrupt``."""
        from wire.convert import changes_and_errors_from_proto, plan_from_proto, problem_from_request
        from wire.gen.placement.v1 import placement_pb2 as pb

        with self._read() as conn:
            row = conn.execute(sa.select(plans).where(plans.c.id == plan_id)).first()
        if row is None:
            raise PlanNotFound(f"no plan #{plan_id} in the store {self}")
        try:
            plan_raw = zlib.decompress(row.plan_z)
            input_raw = zlib.decompress(row.input_z)
        except zlib.error as e:
            raise StoreCorrupt(f"plan #{plan_id} in the store {self} cannot be read: {e}") from None
        if hashlib.sha256(plan_raw).hexdigest() != row.plan_sha256:
            raise StoreCorrupt(f"plan #{plan_id} in the store {self} does not match its checksum")
        if hashlib.sha256(input_raw).hexdigest() != row.input_digest:
            raise StoreCorrupt(f"the input of plan #{plan_id} in the store {self} does not match its digest")
        changes = None
        if row.changes_z is not None:
            changes, _ = changes_and_errors_from_proto(
                pb.FleetChanges.FromString(zlib.decompress(row.changes_z))
            )
        return StoredPlan(
            record=_record(row),
            problem=problem_from_request(pb.PlaceRequest.FromString(input_raw)),
            plan=plan_from_proto(pb.Plan.FromString(plan_raw)),
            changes=changes,
        )

    def history(self, limit: int = 20, before_id: int | None = None) -> list[PlanRecord]:
        """Records, newest first."""
        query = sa.select(*RECORD_COLUMNS).order_by(plans.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(plans.c.id < before_id)
        with self._read() as conn:
            return [_record(r) for r in conn.execute(query)]

    # ------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def lock(
        self,
        name: str,
        *,
        ttl_s: float,
        wait_s: float = 0.0,
        poll_s: float = 0.5,
        on_wait: Callable[[LockHolder], None] | None = None,
    ) -> Iterator[None]:
        """Hold the lease ``name`` for the block; wait up to ``wait_s`` for it, then ``StoreBusy``.
        ``on_wait`` is called once, with the holder, when the lock is taken and the wait begins."""
        token = uuid.uuid4().hex
        give_up = time.monotonic() + max(0.0, wait_s)
        waiting = False
        while True:
            holder = self._try_lock(name, token, ttl_s)
            if holder is None:
                break
            if time.monotonic() >= give_up:
                raise StoreBusy(
                    f"another {name} holds the lock of the store {self}: {holder}; "
                    "try again later (or wait for it with --wait SECONDS)"
                )
            if not waiting:
                waiting = True
                log.info("waiting for the %s lock held by %s", name, holder)
                if on_wait is not None:
                    on_wait(holder)
            time.sleep(min(poll_s, max(0.01, give_up - time.monotonic())))
        try:
            yield
        finally:
            try:
                with self._write() as conn:
                    conn.execute(sa.delete(locks).where(locks.c.name == name, locks.c.token == token))
            except OperationalError as e:  # the lease expires by itself
                log.warning("could not release the %s lock: %s", name, _first_line(e))

    def _try_lock(self, name: str, token: str, ttl_s: float) -> LockHolder | None:
        """None when the lease is now ours; else who holds it."""
        now = time.time()
        values = {
            "token": token,
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
            "acquired_at": datetime.now(UTC),
            "expires_at": now + ttl_s,
        }
        with self._write() as conn:
            row = conn.execute(sa.select(locks).where(locks.c.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(locks).values(name=name, **values))
                    return None
                except IntegrityError:  # PostgreSQL: another process inserted it just now
                    row = conn.execute(sa.select(locks).where(locks.c.name == name)).first()
                    if row is None:
                        return LockHolder("?", 0, datetime.now(UTC), now)
            holder = LockHolder(row.host, int(row.pid), _utc(row.acquired_at), float(row.expires_at))
            gone = row.host == values["host"] and row.pid != os.getpid() and not _alive(int(row.pid))
            if row.expires_at < now or gone:
                done = conn.execute(
                    sa.update(locks).where(locks.c.name == name, locks.c.token == row.token).values(**values)
                )
                if done.rowcount == 1:
                    why = "its process is gone" if gone else "its lease expired"
                    log.warning("took over the %s lock of %s: %s", name, holder, why)
                    return None
            return holder


def _first_line(e: BaseException) -> str:
    text = str(getattr(e, "orig", None) or e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def _code_revision() -> str:
    from placement.run.solve import code_revision

    return code_revision()


def open_store(store: str | None = None) -> PlanStore:
    """The store at ``store`` (see ``resolve_url``); the default SQLite file's folder is created."""
    url = resolve_url(store)
    if not store and not os.environ.get(ENV_VAR):
        default_path().parent.mkdir(parents=True, exist_ok=True)
    return PlanStore(url)
