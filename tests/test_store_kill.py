"""SIGKILL in the middle of a write loses nothing: the store is intact, with the last complete plan.

A writer process records a 2,000-GPU plan as the current plan over and over (``tests.store_worker
writer``). Each round kills it with SIGKILL at another point of a write, reopens the store and
checks: the database's own integrity check (SQLite), every stored plan readable and matching its
checksum, exactly one current plan, and that plan the last one committed (or the one whose commit
finished just before the kill, before the writer could say so), and no lock left behind. Then the
next round writes on from there. The points:

* inside the transaction, right after the previous plan stopped being current (no plan is current
  in the uncommitted state) and right after the new row was written, before the commit: the writer
  stops there itself (``paused after ...``) and is killed;
* at a fraction of a whole write's measured time after it started (building the protobuf bytes,
  compressing, the transaction, the commit), wherever that lands.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
import sqlalchemy as sa

from fleetplace.store import open_store
from placement import solve
from placement.core.domain import Plan, Problem
from placement.generator import generate
from tests.builders import REPO
from wire.convert import plan_to_proto, request_from_problem
from wire.files import write_json_atomic

ROUNDS = [("update", 0.0), ("insert", 0.0), ("none", 0.3), ("none", 0.7), ("none", 0.95)]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Problem, Plan]:
    problem = generate(2000, seed=1)
    problem = replace(problem, options=replace(problem.options, time_limit_s=20.0, deterministic=True))
    plan = solve(problem)
    folder = tmp_path_factory.mktemp("kill")
    write_json_atomic(folder / "input.json", request_from_problem(problem))
    write_json_atomic(folder / "plan.json", plan_to_proto(plan))
    return str(folder / "input.json"), str(folder / "plan.json"), problem, plan


class Writer:
    def __init__(self, url: str, input_path: str, plan_path: str, pause: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store_worker", "writer", url, input_path, plan_path, pause],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=120)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(
                "the writer stopped: " + (self.proc.stderr.read() if self.proc.stderr else "")
            ) from None


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_writer_killed_mid_write_loses_nothing(
    store_url: str, files: tuple[str, str, Problem, Plan]
) -> None:
    input_path, plan_path, problem, plan = files
    open_store(store_url).close()  # create and migrate before the first round
    committed: list[int] = []
    for pause, fraction in ROUNDS:
        writer = Writer(store_url, input_path, plan_path, pause)
        times: list[float] = []
        while len(times) < 2:  # two complete writes (and their time)
            line = writer.next_line()
            if line.startswith("committed "):
                _, plan_id, seconds = line.split()
                committed.append(int(plan_id))
                times.append(float(seconds))
        if pause != "none":
            while (line := writer.next_line()) != f"paused after {pause}":
                assert not line.startswith("committed "), line
        else:
            while not (line := writer.next_line()).startswith("writing "):
                pass
            time.sleep(fraction * sum(times) / len(times))
        writer.proc.send_signal(signal.SIGKILL)
        writer.proc.wait(timeout=60)
        assert writer.proc.returncode == -signal.SIGKILL
        while not writer.lines.empty():  # a commit it reported just before the kill
            line = writer.lines.get()
            if line.startswith("committed "):
                committed.append(int(line.split()[1]))

        store = open_store(store_url)
        try:
            if store.backend == "sqlite":
                with store.engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            records = store.history(limit=1000)
            ids = [r.id for r in records]
            assert set(committed) <= set(ids), pause
            extra = len(ids) - len(committed)
            # paused inside the transaction: nothing more; elsewhere at most the write just committed
            assert extra == 0 if pause != "none" else extra in (0, 1), (pause, fraction, ids, committed)
            assert [r.id for r in records if r.current] == [max(ids)]
            for plan_id in ids:  # every plan is whole: readable and matching its checksum
                stored = store.get(plan_id)
                assert stored.plan == plan and stored.problem == problem
            with store.engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM fleetplace_locks")).scalar() == 0
            committed = ids[::-1]
        finally:
            store.close()
