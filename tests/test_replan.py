"""Stable re-planning (issue 15, items 1-3): the current placement with its caps, move costs,
disruption budgets and upward-only preemption, from the input checks to the verifier."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from placement.core import domain as d
from placement.core.validate import validate
from tests.test_convert import sample_problem
from tests.test_validate import both, wl
from wire.convert import problem_from_request, request_from_problem

# ------------------------------------------------------------------ the input


@pytest.mark.parametrize(
    ("mutation", "path", "words"),
    [
        pytest.param(wl(0, current=(d.CurrentReplica("n1", (0, 1), 500),)), "", "", id="a level is fine"),
        pytest.param(wl(0, current=(d.CurrentReplica("n1", (0, 1), 700),)), "", "", id="the top level is fine"),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 600),)),
            "workloads[0].current[0].powerCapW", "not one of the H100 levels", id="not a level",
        ),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 350),), min_power_cap_pct=60),
            "", "", id="running below the floor: raised in place, not an input error",
        ),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 350), d.CurrentReplica("n1", (2, 3))),
               min_power_cap_pct=60, pinned=True),
            "workloads[0].current[0].powerCapW", "below the workload's floor", id="pinned below the floor",
        ),
        pytest.param(
            wl(0, current=(d.CurrentReplica("n1", (0, 1), 350), d.CurrentReplica("n1", (2, 3))),
               min_power_cap_pct=50, pinned=True),
            "", "", id="pinned exactly at the floor",
        ),
        pytest.param(
            wl(1, current=(d.CurrentReplica("n3", (1,), 40),)),
            "workloads[1].current[0].powerCapW", "runs uncapped", id="fractional capped",
        ),
        pytest.param(wl(1, current=(d.CurrentReplica("n3", (1,), 72),)), "", "", id="fractional at max"),
        pytest.param(
            wl(0, max_unavailable_count=1, max_unavailable_pct=10),
            "workloads[0].maxUnavailablePct", "not both", id="count and percent",
        ),
        pytest.param(
            both(wl(0, move_cost=-1), wl(0, max_unavailable_count=-2, max_unavailable_pct=None)),
            "workloads[0].moveCost", "negative", id="negative move cost",
        ),
    ],
)  # fmt: skip
def test_current_caps_and_budgets_are_checked(mutation: Any, path: str, words: str) -> None:
    errors = validate(mutation(sample_problem()))
    if not path:
        assert errors == []
    else:
        assert errors and errors[0].path == path and words in errors[0].message, errors


def test_several_bad_budget_values_are_reported_at_once() -> None:
    p = sample_problem()
    p = dataclasses.replace(
        p,
        options=dataclasses.replace(
            p.options, max_moves=-1, max_moves_per_site=-1, max_moves_per_power_domain=2
        ),
    )
    p = wl(0, max_unavailable_count=100_001, max_unavailable_pct=None)(p)
    assert [e.path for e in validate(p)] == [
        "workloads[0].maxUnavailableCount",
        "options.maxMoves",
        "options.maxMovesPerSite",
    ]


@pytest.mark.parametrize(
    ("count", "pct", "current", "want"),
    [
        pytest.param(None, None, 4, None, id="no budget"),
        pytest.param(0, None, 4, 0, id="count 0"),
        pytest.param(3, None, 4, 3, id="count"),
        pytest.param(None, 25, 4, 1, id="25% of 4"),
        pytest.param(None, 26, 4, 2, id="26% of 4 rounds up"),
        pytest.param(None, 0, 4, 0, id="0%"),
        pytest.param(None, 100, 3, 3, id="100%"),
    ],
)
def test_max_unavailable_as_a_pod_disruption_budget(
    count: int | None, pct: int | None, current: int, want: int | None
) -> None:
    w = d.Workload("w", max_replicas=8, max_unavailable_count=count, max_unavailable_pct=pct,
                   current=tuple(d.CurrentReplica("n", (i,)) for i in range(current)))  # fmt: skip
    assert w.max_unavailable == want


def test_the_new_fields_survive_the_wire() -> None:
    p = sample_problem()
    p = wl(
        0,
        current=(d.CurrentReplica("n1", (0, 1), 500),),
        move_cost=7,
        max_unavailable_count=2,
        max_unavailable_pct=None,
    )(p)
    p = dataclasses.replace(p, options=dataclasses.replace(p.options, max_moves=0, max_moves_per_site=None))
    back = problem_from_request(request_from_problem(p))
    assert back == p
    assert back.workloads[0].current[0].power_cap_w == 500
    assert back.options.max_moves == 0 and back.options.max_moves_per_site is None
    assert back.workloads[2].move_cost == 1  # absent means 1
