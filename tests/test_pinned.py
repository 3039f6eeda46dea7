"""Pinned workloads: their current replicas stay exactly where they are."""

from __future__ import annotations

from dataclasses import replace

from placement.core.domain import CurrentReplica, Problem
from placement.core.validate import validate
from placement.core.verify import verify
from tests.builders import build_plan, reference_fleet, reference_placements, reference_workloads


def _problem(**small_changes: object) -> Problem:
    workloads = tuple(
        replace(w, **small_changes) if w.name == "small" else w
        for w in reference_workloads()  # type: ignore[arg-type]
    )
    return Problem(fleet=reference_fleet(), workloads=workloads)


def test_pinned_replicas_in_place_and_uncapped_pass() -> None:
    problem = _problem(pinned=True, current=(CurrentReplica("n3", (0,)),), min_replicas=1)
    placements = tuple(p for p in reference_placements() if not (p.workload == "small" and p.node == "n1"))
    assert verify(problem, build_plan(problem, placements)) == []


def test_pinned_replica_capped_is_named() -> None:
    problem = _problem(pinned=True, current=(CurrentReplica("n1", (2,)), CurrentReplica("n3", (0,))))
    violations = verify(problem, build_plan(problem, reference_placements()))
    assert [(v.rule, v.subject) for v in violations] == [("pinned", "small[0]")]
    assert "300 W" in violations[0].message


def test_pinned_replica_moved_or_missing_is_named() -> None:
    problem = _problem(pinned=True, current=(CurrentReplica("n3", (1,)),), min_replicas=1)
    placements = tuple(p for p in reference_placements() if not (p.workload == "small" and p.node == "n1"))
    violations = [v for v in verify(problem, build_plan(problem, placements)) if v.rule == "pinned"]
    assert len(violations) == 1 and violations[0].subject == "small"
    assert "missing n3[1]" in violations[0].message and "not current n3[0]" in violations[0].message


def test_unplaced_pinned_workload_is_named() -> None:
    problem = _problem(pinned=True, current=(CurrentReplica("n3", (0,)),), min_replicas=1)
    placements = tuple(p for p in reference_placements() if p.workload != "small")
    violations = verify(problem, build_plan(problem, placements))
    assert ("pinned", "small") in {(v.rule, v.subject) for v in violations}


def test_pinned_needs_min_replicas_current() -> None:
    problem = _problem(pinned=True, current=(CurrentReplica("n3", (0,)),), min_replicas=2)
    errors = validate(problem)
    assert [e.path for e in errors] == ["workloads[1].pinned"]
    assert "fewer than min replicas 2" in errors[0].message
