"""Property tests: whatever the fleet, every plan that ``solve`` returns passes the verifier.

Hypothesis draws generator sizes, seeds and knobs (fractional and multi-GPU shares,
demand, binding racks and sites, current placements), time limits short enough that
many solves stop early, and either backend. The plan must verify as returned, survive
the proto round trip unchanged, and never place less work than nothing.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from placement import solve
from placement.core.domain import Backend, SolveOptions, SolveStatus
from placement.core.verify import verify
from placement.generator import generate
from wire.convert import plan_from_proto, plan_to_proto


@st.composite
def problems(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    size = draw(st.integers(min_value=4, max_value=96))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    knobs = {
        "demand_ratio": draw(st.sampled_from([0.5, 1.0, 1.5, 2.5])),
        "fractional_share": draw(st.sampled_from([0.0, 0.3, 0.6])),
        "multi_gpu_share": draw(st.sampled_from([0.0, 0.4])),
        "current_share": draw(st.sampled_from([0.0, 0.5])),
        "binding_rack_share": draw(st.sampled_from([0.0, 0.5, 1.0])),
    }
    problem = generate(size, seed, **knobs)
    options = SolveOptions(
        backend=draw(st.sampled_from([Backend.ORTOOLS, Backend.PULP])),
        time_limit_s=draw(st.sampled_from([0.5, 2.0])),
        seed=seed,
    )
    return replace(problem, options=options)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(problems())
def test_every_returned_plan_passes_the_verifier(problem) -> None:  # type: ignore[no-untyped-def]
    plan = solve(problem)
    assert verify(problem, plan) == []
    assert plan.info.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)
    assert plan.objective.placed_work >= 0
    if plan.info.gap is not None:
        assert plan.info.bound is not None
        assert plan.info.bound + 1e-6 >= plan.objective.net_work  # tier 1 as compared
        assert 0.0 <= plan.info.gap <= 1.0
    placed = {p.workload for p in plan.placements}
    assert placed.isdisjoint({u.workload for u in plan.unplaced})
    assert placed | {u.workload for u in plan.unplaced} == {w.name for w in problem.workloads}
    assert all(u.reasons for u in plan.unplaced), "every unplaced workload carries a reason"
    again = plan_from_proto(plan_to_proto(plan))
    assert again == plan
    assert verify(problem, again) == []
