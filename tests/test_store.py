"""The plan store on a real SQLite file and a real PostgreSQL server (every test runs on both).

What is recorded comes back as it was; at most one plan is current, held by the database itself
(a unique partial index) and by compare-and-swap, also between racing processes; the rebalance
lock waits, fails clearly, and takes over from a holder that died; the schema is Alembic's, up
and down, the tables equal to the migrations, and a newer schema is refused.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fleetplace.datasets import tiny_problem
from fleetplace.store import (
    CurrentChanged,
    PlanNotFound,
    PlanStore,
    StoreBusy,
    StoreCorrupt,
    StoreSchemaError,
    open_store,
    resolve_url,
)
from fleetplace.store.schema import VERSION_TABLE, locks, metadata, plans
from placement import solve
from placement.changes import FleetChanges
from placement.core.domain import Plan, Problem
from tests.builders import REPO
from wire.convert import plan_to_proto, request_from_problem
from wire.files import write_json_atomic

HEAD = "0002"  # the migrations' head revision


@pytest.fixture(scope="module")
def solved() -> tuple[Problem, Plan]:
    problem = tiny_problem()
    problem = replace(problem, options=replace(problem.options, time_limit_s=20.0, deterministic=True))
    return problem, solve(problem)


@pytest.fixture
def store(store_url: str) -> PlanStore:
    s = open_store(store_url)
    yield s  # type: ignore[misc]
    s.close()


def test_a_plan_comes_back_as_it_was_recorded(store: PlanStore, solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    changes = FleetChanges(drain_nodes=("dc-a-r1-n01",))
    record = store.record(problem, plan, requested_by="cron", kind="rebalance", changes=changes)
    stored = store.get(record.id)
    assert stored.plan == plan
    assert stored.problem == problem
    assert stored.changes == changes
    r = stored.record
    digest = hashlib.sha256(request_from_problem(problem).SerializeToString(deterministic=True)).hexdigest()
    assert r.input_digest == digest
    assert (r.requested_by, r.kind, r.current, r.parent_id, r.changes) == (
        "cron",
        "rebalance",
        False,
        None,
        "drain 1 node",
    )
    assert (r.status, r.stop_reason) == (plan.info.status.value, plan.info.stop_reason.value)
    assert (r.bound, r.gap, r.wall_s) == (plan.info.bound, plan.info.gap, plan.info.wall_s)
    o = plan.objective
    assert (r.placed_work, r.energy, r.moves, r.fragmentation, r.move_price) == (
        o.placed_work,
        o.energy,
        o.moves,
        o.fragmentation,
        o.move_price,
    )
    assert (r.replicas, r.unplaced_workloads) == (len(plan.placements), len(plan.unplaced))
    assert r.code_revision == plan.info.code_revision
    assert abs((datetime.now(UTC) - r.created_at).total_seconds()) < 600
    with pytest.raises(PlanNotFound):
        store.get(record.id + 1)


def test_history_is_newest_first_and_pages(store: PlanStore, solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    ids = [store.record(problem, plan, requested_by=by).id for by in ("cli", "rpc", "cron", "cli")]
    assert [r.id for r in store.history()] == ids[::-1]
    assert [r.id for r in store.history(limit=2)] == ids[:1:-1]
    assert [r.id for r in store.history(limit=2, before_id=ids[2])] == ids[1::-1]
    assert [r.requested_by for r in store.history()] == ["cli", "cron", "rpc", "cli"]


def test_the_current_plan_switches_only_from_the_plan_a_run_started_from(
    store: PlanStore, solved: tuple[Problem, Plan]
) -> None:
    problem, plan = solved
    assert store.current() is None
    first = store.record(problem, plan, requested_by="cli", current=True, expected_current=None)
    assert store.current_id() == first.id
    with pytest.raises(CurrentChanged, match=f"plan #{first.id} became current"):
        store.record(problem, plan, requested_by="cli", current=True, expected_current=None)
    second = store.record(problem, plan, requested_by="cron", current=True, expected_current=first.id)
    assert store.current_id() == second.id
    assert not store.get_record(first.id).current
    with pytest.raises(CurrentChanged, match=f"started from #{first.id}; plan #{second.id} is current now"):
        store.record(problem, plan, requested_by="cron", current=True, expected_current=first.id)
    assert [r.id for r in store.history()] == [second.id, first.id]  # the refused ones wrote nothing
    assert [r.current for r in store.history()] == [True, False]


def test_the_database_itself_refuses_a_second_current_plan(
    store: PlanStore, solved: tuple[Problem, Plan]
) -> None:
    problem, plan = solved
    current = store.record(problem, plan, requested_by="cli", current=True, expected_current=None)
    other = store.record(problem, plan, requested_by="cli")
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.update(plans).where(plans.c.id == other.id).values(is_current=True))
    assert store.current_id() == current.id
    assert [r.id for r in store.history() if r.current] == [current.id]


def _files(tmp_path: Path, problem: Problem, plan: Plan) -> tuple[str, str]:
    input_path, plan_path = tmp_path / "input.json", tmp_path / "plan.json"
    write_json_atomic(input_path, request_from_problem(problem))
    write_json_atomic(plan_path, plan_to_proto(plan))
    return str(input_path), str(plan_path)


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store_worker", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _start_together(procs: list[subprocess.Popen[str]], go: Path) -> None:
    """Wait until every worker says ``ready``, then create the file they all wait for."""
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    go.touch()


def test_racing_processes_make_exactly_one_current_plan(
    store_url: str, store: PlanStore, solved: tuple[Problem, Plan], tmp_path: Path
) -> None:
    """Four processes start the same switch at the same moment: one wins, three are told why."""
    problem, plan = solved
    base = store.record(problem, plan, requested_by="cli", current=True, expected_current=None)
    input_path, plan_path = _files(tmp_path, problem, plan)
    go = tmp_path / "go"
    procs = [_worker("race", store_url, str(base.id), str(go), input_path, plan_path) for _ in range(4)]
    _start_together(procs, go)
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lines = [o[0].strip() for o in outs]
    won = [line for line in lines if line.startswith("won ")]
    lost = [line for line in lines if line.startswith("lost: ")]
    assert len(won) == 1 and len(lost) == 3, lines
    winner = int(won[0].split()[1])
    assert store.current_id() == winner
    assert [r.id for r in store.history()] == [winner, base.id]
    assert all("nothing recorded" in line for line in lost)


def test_processes_opening_a_new_store_at_once_migrate_it_once(store_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [_worker("open", store_url, str(go)) for _ in range(3)]
    _start_together(procs, go)
    outs = [p.communicate(timeout=120) for p in procs]
    assert [o[0].strip() for o in outs] == ["opened"] * 3, [o[1][-2000:] for o in outs]
    s = open_store(store_url)
    with s.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [HEAD]
    s.close()


def test_the_tables_equal_the_migrations(store: PlanStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []


def test_migrations_go_down_and_up_again(
    store_url: str, store: PlanStore, solved: tuple[Problem, Plan]
) -> None:
    from alembic import command
    from alembic.config import Config

    from fleetplace.store import MIGRATIONS

    problem, plan = solved
    store.record(problem, plan, requested_by="cli")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert not {"fleetplace_plans", "fleetplace_locks"} & set(sa.inspect(store.engine).get_table_names())
    store.close()
    again = open_store(store_url)  # migrates to the head again: an empty store
    assert {"fleetplace_plans", "fleetplace_locks"} <= set(sa.inspect(again.engine).get_table_names())
    assert again.history() == []
    again.close()


def test_a_store_at_revision_0001_is_upgraded_on_open_and_its_plans_kept(
    store_url: str, store: PlanStore, solved: tuple[Problem, Plan]
) -> None:
    """A store as revision 0001 left it (before the move price was recorded): opening it migrates
    it to the head; its plan reads back whole, the new column 0 for it."""
    from alembic import command
    from alembic.config import Config

    from fleetplace.store import MIGRATIONS

    problem, plan = solved
    record = store.record(problem, plan, requested_by="cli")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert "move_price" not in {c["name"] for c in sa.inspect(store.engine).get_columns("fleetplace_plans")}
    store.close()
    again = open_store(store_url)
    with again.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [HEAD]
    assert again.get_record(record.id).move_price == 0
    assert again.get(record.id).plan == plan
    again.close()


def test_a_store_from_a_newer_fleetplace_is_refused(store_url: str, store: PlanStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreSchemaError, match="schema revision 9999, newer than this fleetplace knows"):
        open_store(store_url)


def test_a_damaged_plan_is_detected_when_read(store: PlanStore, solved: tuple[Problem, Plan]) -> None:
    problem, plan = solved
    record = store.record(problem, plan, requested_by="cli")
    with store.engine.begin() as conn:
        conn.execute(sa.update(plans).where(plans.c.id == record.id).values(plan_sha256="0" * 64))
    with pytest.raises(StoreCorrupt, match=f"plan #{record.id} .* does not match its checksum"):
        store.get(record.id)


# ---------------------------------------------------------------------------- the lock


def test_a_second_holder_fails_at_once_naming_the_first(store_url: str, store: PlanStore) -> None:
    other = open_store(store_url)
    try:
        with (
            store.lock("rebalance", ttl_s=60),
            pytest.raises(StoreBusy) as busy,
            other.lock("rebalance", ttl_s=60, wait_s=0),
        ):
            pass
        assert f"{socket.gethostname()} pid {os.getpid()}" in str(busy.value)
        with other.lock("rebalance", ttl_s=60, wait_s=0):  # released: free again
            pass
    finally:
        other.close()


def test_a_waiting_holder_gets_the_lock_when_it_is_released(store_url: str, store: PlanStore) -> None:
    other = open_store(store_url)
    got = threading.Event()

    def second() -> None:
        with other.lock("rebalance", ttl_s=60, wait_s=60, poll_s=0.05):
            got.set()

    try:
        with store.lock("rebalance", ttl_s=60):
            waiter = threading.Thread(target=second)
            waiter.start()
            time.sleep(0.5)
            assert not got.is_set()  # it waits
        waiter.join(timeout=60)
        assert got.is_set()
    finally:
        other.close()


@pytest.mark.parametrize(
    "name, host, alive, expires_in_s, taken_over",
    [
        ("a live holder here", "here", True, 600, False),
        ("a holder here whose process is gone", "here", False, 600, True),
        ("a holder elsewhere, lease running", "elsewhere", False, 600, False),
        ("a holder elsewhere, lease expired", "elsewhere", False, -1, True),
    ],
)
def test_a_lock_whose_holder_died_is_taken_over(
    store: PlanStore, name: str, host: str, alive: bool, expires_in_s: float, taken_over: bool
) -> None:
    if alive:
        pid = os.getppid()  # the test runner's parent: alive, and not us
    else:
        done = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        )
        pid = int(done.stdout)  # exited and reaped: no such process
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(locks).values(
                name="rebalance",
                token="theirs",
                host=socket.gethostname() if host == "here" else "another-host",
                pid=pid,
                acquired_at=datetime.now(UTC),
                expires_at=time.time() + expires_in_s,
            )
        )
    if taken_over:
        with store.lock("rebalance", ttl_s=60, wait_s=0), store.engine.connect() as conn:
            assert conn.execute(sa.select(locks.c.pid)).scalar() == os.getpid(), name
    else:
        with pytest.raises(StoreBusy), store.lock("rebalance", ttl_s=60, wait_s=0):
            pass


# ------------------------------------------------------------------------------- where


def test_where_the_store_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETPLACE_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_url(None) == f"sqlite:///{tmp_path}/data/fleetplace/plans.db"
    s = open_store(None)  # the default folder is created
    assert (tmp_path / "data" / "fleetplace" / "plans.db").exists()
    s.close()
    assert resolve_url("plans.db").startswith("sqlite:////")
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("FLEETPLACE_STORE", "postgres://u:secret@h/db")
    assert resolve_url(None) == "postgresql+psycopg://u:secret@h/db"


def test_a_password_never_shows_in_messages() -> None:
    from fleetplace.store import StoreError

    with pytest.raises(StoreError) as e:
        PlanStore(resolve_url("postgresql://fleet:s3cret@127.0.0.1:1/nowhere"))
    assert "s3cret" not in str(e.value)
    assert "fleet:***@127.0.0.1:1/nowhere" in str(e.value)


def test_a_store_in_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    from fleetplace.store import StoreError

    with pytest.raises(StoreError, match="no such folder"):
        open_store(str(tmp_path / "nope" / "plans.db"))
