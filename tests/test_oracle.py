"""Brute force against the solver on seeded random tiny instances.

The oracle never touches the model: it enumerates every plan of a tiny instance
(replica counts per workload, each replica's node and power level, or its GPU for a
fractional one), keeps those the independent verifier accepts, and takes the
lexicographic best objective as computed by ``objective.evaluate``. Both backends must
reach exactly that optimum, tier by tier.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from placement import solve
from placement.core.domain import (
    Backend,
    SolveStatus,
)
from placement.core.verify import verify
from tests.builders import tiny_problem
from tests.oracles import brute_force


@pytest.mark.parametrize("seed", range(12))
def test_both_backends_match_brute_force(seed: int) -> None:
    problem = tiny_problem(seed)
    expected = brute_force(problem)
    for backend in (Backend.ORTOOLS, Backend.PULP):
        p = replace(problem, options=replace(problem.options, backend=backend))
        plan = solve(p)
        assert plan.info.status is SolveStatus.OPTIMAL, (backend, plan.info)
        assert plan.objective == expected, (backend, plan.objective, expected)
        assert verify(p, plan) == []


def test_oracle_instances_are_not_trivial() -> None:
    """The seeds above must exercise real trade-offs: something unplaced, power-capped or shared."""
    optima = [brute_force(tiny_problem(s)) for s in range(12)]
    full = [
        sum(w.priority * w.work_milli * 100 * w.max_replicas for w in tiny_problem(s).workloads)
        for s in range(12)
    ]
    assert any(o.placed_work < f for o, f in zip(optima, full, strict=True))
    assert any(o.placed_work == f for o, f in zip(optima, full, strict=True))
    assert len({o.placed_work for o in optima}) > 6
