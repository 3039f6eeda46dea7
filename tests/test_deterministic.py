"""The deterministic mode: the same input, seed and code give the same plan, whatever the load.

Each case solves twice, the second time with both cores kept busy by two other processes,
and compares everything a plan says except the clock (wall time, start time) and the bound
(which may come from children that are still improving it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from placement import solve
from placement.bounds.bound import columns_estimate
from placement.core.candidates import filter_candidates
from placement.core.domain import Backend, Plan, Problem, StopReason
from placement.core.verify import verify
from placement.generator import generate
from placement.run import effort as effort_mod
from placement.run.effort import plan_effort
from placement.run.solve import _model_vars
from tests.builders import CLI, MIXED, REPO
from tests.server_support import running_server
from wire.files import load_problem


@contextlib.contextmanager
def busy_cores(n: int = 2) -> Iterator[None]:
    """Two other processes spinning, as a loaded shared machine would have."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _deterministic(problem: Problem, limit_s: float, backend: Backend = Backend.ORTOOLS) -> Problem:
    return replace(
        problem,
        options=replace(problem.options, deterministic=True, time_limit_s=limit_s, backend=backend),
    )


def _same(a: Plan, b: Plan) -> None:
    assert a.placements == b.placements
    assert a.budgets == b.budgets
    assert a.objective == b.objective
    assert a.unplaced == b.unplaced
    assert (a.info.status, a.info.stop_reason) == (b.info.status, b.info.stop_reason)


# (name, instance, time limit, backend, the per-node model runs, the LP runs); the work is planned
# for a tenth of the limit (a quarter by default): the suite itself may run beside two other busy
# processes and this test adds two more, so the safety net must not cut either run
CASES = [
    ("mixed, CP-SAT model", lambda: load_problem(MIXED), 40.0, Backend.ORTOOLS, True, True),
    ("mixed, CBC: no model in 12 s", lambda: load_problem(MIXED), 12.0, Backend.PULP, False, True),
    ("tiny, CBC model", lambda: load_problem(REPO / "datasets" / "tiny"), 30.0, Backend.PULP, True, True),
    ("4,000 GPUs: LP, roundings, repack", lambda: generate(4000, seed=2), 60.0, Backend.ORTOOLS, False, True),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "make", "limit_s", "backend", "model", "lp"), CASES, ids=[c[0] for c in CASES]
)
def test_the_same_plan_quiet_and_under_load(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    make: object,
    limit_s: float,
    backend: Backend,
    model: bool,
    lp: bool,
) -> None:
    monkeypatch.setattr(effort_mod, "DET_SHARE", 0.1)
    problem = _deterministic(make(), limit_s, backend)  # type: ignore[operator]
    prepared = filter_candidates(problem)
    planned = plan_effort(
        prepared, limit_s, _model_vars(prepared), columns_estimate(prepared), 4, cbc=backend is Backend.PULP
    )
    assert (planned.model, planned.lp) == (model, lp), planned
    first = solve(problem)
    with busy_cores():
        second = solve(problem)
    assert first.info.deterministic and second.info.deterministic
    assert first.info.stop_reason in (StopReason.WORK_LIMIT, StopReason.NONE), name
    assert not verify(problem, first)
    _same(first, second)


@pytest.mark.slow
def test_the_same_plan_from_the_cli_and_over_grpc(tmp_path: Path) -> None:
    """``plan --deterministic`` here and through the service give the same plan (the tiny fleet: its
    model's deterministic time is capped by its size, far inside the limit however busy the machine)."""
    tiny = REPO / "datasets" / "tiny"
    args = ["plan", str(tiny), "--deterministic", "--time-limit", "60", "--quiet", "--format", "json"]
    args.append("--allow-drop")  # its optimum preempts vision-batch, which runs today (else exit 4)
    local = subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr
    with running_server() as (_server, address):
        remote = subprocess.run(
            [*CLI, *args, "--server", address], cwd=REPO, capture_output=True, text=True, timeout=300
        )
    assert remote.returncode == 0, remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    for key in ("placements", "budgets", "unplaced", "objective"):
        assert a[key] == b[key], key
    assert a["info"]["deterministic"] and b["info"]["deterministic"]
    assert a["info"]["stopReason"] == b["info"]["stopReason"]
    assert a["info"]["stopReason"] in ("STOP_REASON_WORK_LIMIT", "STOP_REASON_NONE")


def test_a_run_the_clock_cuts_says_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work planned far beyond the time limit: the safety net cuts it, and the plan says so."""
    monkeypatch.setattr(effort_mod, "DET_SHARE", 50.0)
    problem = _deterministic(generate(4000, seed=2), 3.0)
    plan = solve(problem)
    assert plan.info.stop_reason is StopReason.TIME_LIMIT
    assert plan.placements
    assert not verify(problem, plan)


def test_the_work_plan_depends_on_size_and_limit_only() -> None:
    problem = load_problem(MIXED)
    prepared = filter_candidates(problem)
    cols = columns_estimate(prepared)
    efforts = [plan_effort(prepared, limit_s, 5_000, cols, 4) for limit_s in (1.0, 5.0, 30.0, 300.0)]
    assert efforts == [plan_effort(prepared, limit_s, 5_000, cols, 4) for limit_s in (1.0, 5.0, 30.0, 300.0)]
    # more time never means less work (the model, once it fits, takes what roundings had)
    for small, large in itertools.pairwise(efforts):
        assert large.model_det_s >= small.model_det_s
        assert large.estimate_s >= small.estimate_s
        if large.model == small.model:
            assert large.guided_variants >= small.guided_variants
            assert large.polish_rounds >= small.polish_rounds
    assert efforts[-1].model and efforts[-1].lp and efforts[-1].polish_rounds >= 1
    assert all(
        e.estimate_s <= effort_mod.DET_SHARE * t + 1e-9 for e, t in zip(efforts, (1, 5, 30, 300), strict=True)
    )
    # a model over the variable cap is never built, however long the limit
    assert not plan_effort(prepared, 300.0, effort_mod.MODEL_MAX_VARS + 1, cols, 4).model
