"""``SolveInfo`` says what made the plan: its methods, the LP/MIP solvers that ran for it, and the
per-node model's backend only where the model ran."""

from __future__ import annotations

import importlib
from dataclasses import replace

import pytest

from placement import solve
from placement.core.domain import Backend, SolveInfo
from placement.core.verify import verify
from placement.exact.backends.linear import versions
from placement.generator import generate
from placement.run.methods import METHODS
from tests.builders import MIXED, golden
from wire.files import load_problem

MODEL_SOLVER = {Backend.ORTOOLS: "cp-sat", Backend.PULP: "cbc"}


def consistent(info: SolveInfo) -> None:
    """Every method named is registered (or the per-node model), and the solvers are theirs."""
    steps = info.method.split("+")
    assert steps and all(s in METHODS or s == "model" for s in steps), info.method
    assert ("glop" in info.solvers) is ("lp_guided" in steps), info
    assert info.solver_version == versions(info.solvers)
    assert len(set(info.solvers)) == len(info.solvers)


@pytest.mark.parametrize("backend", [Backend.ORTOOLS, Backend.PULP], ids=["ortools", "pulp"])
def test_the_model_proves_the_greedy_plan_optimal(backend: Backend) -> None:
    """The hand-solved golden instance: the greedy's plan is the optimum and the model proves it;
    the plan is the greedy's, the model's solver ran for it."""
    info = solve(golden(backend)).info
    assert (info.method, info.solvers, info.backend) == ("greedy", (MODEL_SOLVER[backend],), backend.value)
    consistent(info)


@pytest.mark.parametrize(
    ("case", "backend", "method", "solvers", "model_backend"),
    [
        (  # two workloads run today: the LP-guided plans move their replicas, at a price
            "CP-SAT's model from the polished current placement",
            Backend.ORTOOLS,
            "keep_current+polish+model",
            ("cp-sat",),
            "ortools",
        ),
        (
            "CBC's model does not fit 12 s: CBC never runs",
            Backend.PULP,
            "keep_current+polish",
            ("cp-sat",),
            "",
        ),
    ],
)
def test_the_deterministic_plans_of_the_mixed_fleet_name_their_makers(
    case: str, backend: Backend, method: str, solvers: tuple[str, ...], model_backend: str
) -> None:
    p = load_problem(MIXED)
    p = replace(p, options=replace(p.options, deterministic=True, time_limit_s=12.0, backend=backend))
    info = solve(p).info
    assert (info.method, info.solvers, info.backend) == (method, solvers, model_backend), case
    consistent(info)


@pytest.mark.parametrize("backend", [Backend.ORTOOLS, Backend.PULP], ids=["ortools", "pulp"])
def test_without_a_model_the_requested_backend_is_not_stamped(
    monkeypatch: pytest.MonkeyPatch, backend: Backend
) -> None:
    """As at M, L and XL: no per-node model is built, so no backend ran and none is named."""
    monkeypatch.setattr(importlib.import_module("placement.run.solve"), "MODEL_MAX_VARS", 0)
    p = generate(300, 2)
    p = replace(p, options=replace(p.options, time_limit_s=8, backend=backend))
    plan = solve(p)
    assert verify(p, plan) == []
    info = plan.info
    assert info.backend == ""
    assert "cbc" not in info.solvers
    consistent(info)
