"""Instances that once broke something, solved again as they were."""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement import solve
from placement.core.domain import Backend, SolveOptions, SolveStatus
from placement.core.verify import verify
from placement.generator import generate


@pytest.mark.parametrize(
    ("size", "seed", "knobs"),
    [
        (88, 3, {"demand_ratio": 1.0, "fractional_share": 0.3, "multi_gpu_share": 0.4, "current_share": 0.5}),
        (41, 5913, {"demand_ratio": 2.5, "fractional_share": 0.6, "current_share": 0.5}),
        (55, 5382, {"demand_ratio": 1.5, "fractional_share": 0.3, "binding_rack_share": 1.0}),
    ],
)
def test_cbc_with_a_warm_start_and_a_short_limit(size: int, seed: int, knobs: dict[str, float]) -> None:
    """CBC 2.10.3 segfaulted with "-timeMode elapsed" plus a MIP start when the limit fell in preprocessing."""
    problem = generate(size, seed, **knobs)
    problem = replace(problem, options=SolveOptions(backend=Backend.PULP, time_limit_s=2.0, seed=seed))
    plan = solve(problem)
    assert plan.info.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert verify(problem, plan) == []
