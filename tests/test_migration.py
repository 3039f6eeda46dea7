"""The migration sequence (issue 15, item 5): make-before-break steps from the current placement to a
plan, planned breaks within max_unavailable, blocked moves and the stop-first fallback, and the
independent transient verifier that replays every intermediate state.

The micro fleets use GPU type "T" (400 W board, idle 50 W, levels 250 and 400 W) on 1-GPU nodes
of 100 W host: a node running one replica at 400 W draws 100 + 400 = 500 W, at 250 W 350 W.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path

import pytest

from fleetplace.report import migration_lines
from placement.core import domain as d
from placement.core.sequence import migration
from placement.core.verify import verify
from placement.core.verify_sequence import verify_all, verify_migration
from placement.generator import generate
from placement.run.solve import solve
from tests.builders import build_plan, fleet, node, run_cli, site
from wire.convert import plan_from_proto, plan_to_proto

READY, DRAINING = d.NodeState.READY, d.NodeState.DRAINING


def one_gpu(name: str, s: str = "dc1", pd: str = "r1", state: d.NodeState = READY) -> d.Node:
    return node(name, s=s, pd=pd, gpus=1, state=state)


def running(name: str, *nodes: str, **kw: object) -> d.Workload:
    """A 1-GPU workload running one replica on each of ``nodes`` (uncapped: 400 W)."""
    n = len(nodes) or 1
    current = tuple(d.CurrentReplica(x, (0,)) for x in nodes)
    base = {"gpus": 1, "memory_gib": 10.0, "min_replicas": n, "max_replicas": n, "current": current}
    return d.Workload(name, **{**base, **kw})  # type: ignore[arg-type]


def plan(problem: d.Problem, *rows: tuple[str, str] | tuple[str, str, int]) -> d.Plan:
    """A verified plan of (workload, node[, cap]) rows on GPU 0; budgets and objective recomputed."""
    nodes = {n.name: n for n in problem.fleet.nodes}
    wls = {w.name: w for w in problem.workloads}
    seen: Counter[str] = Counter()
    out = []
    for row in rows:
        w, n = row[0], row[1]
        frac = wls[w].is_fractional
        cap = 400 if frac or len(row) < 3 else row[2]  # type: ignore[misc]
        out.append(
            d.ReplicaPlacement(
                w, seen[w], nodes[n].site, nodes[n].power_domain, n, (0,), wls[w].gpu_milli or 1000, cap
            )
        )
        seen[w] += 1
    p = build_plan(problem, tuple(out), ())
    assert verify(problem, p) == []
    return p


def sequenced(problem: d.Problem, p: d.Plan) -> d.Migration:
    m = migration(problem, p)
    assert verify_migration(problem, p, m) == []
    return m


def words(m: d.Migration) -> list[str]:
    return [
        f"{s.kind.value} {s.workload} {s.node}"
        + (f" {s.power_cap_w}" if s.kind is d.StepKind.SET_CAP else "")
        for s in m.steps
    ]


def problem_of(nodes: tuple[d.Node, ...], *wls: d.Workload, **fleet_kw: object) -> d.Problem:
    return d.Problem(fleet(nodes, **fleet_kw), wls)  # type: ignore[arg-type]


# --------------------------------------------------------------- a swap between two full nodes


@pytest.mark.parametrize(
    ("a_budget", "safe", "expected", "down"),
    [
        pytest.param(
            {},
            False,
            ["STOP B n2", "START A n2", "WAIT_READY A n2", "STOP A n1", "START B n1", "WAIT_READY B n1"],
            [("B", "n2", 1, 5, False)],
            id="no budget: both moves blocked, the fallback takes B down for 5 steps",
        ),
        pytest.param(
            {"max_unavailable_count": 1},
            True,
            ["STOP A n1", "START B n1", "WAIT_READY B n1", "STOP B n2", "START A n2", "WAIT_READY A n2"],
            [("A", "n1", 1, 5, True)],
            id="A may lose a replica: a planned break of A",
        ),
        pytest.param(
            {"max_unavailable_pct": 100},
            True,
            ["STOP A n1", "START B n1", "WAIT_READY B n1", "STOP B n2", "START A n2", "WAIT_READY A n2"],
            [("A", "n1", 1, 5, True)],
            id="A's budget as a percent of its current replicas",
        ),
    ],
)
def test_a_swap_between_two_full_nodes_needs_a_break_or_is_blocked(
    a_budget: dict[str, int], safe: bool, expected: list[str], down: list[tuple[str, str, int, int, bool]]
) -> None:
    problem = problem_of((one_gpu("n1"), one_gpu("n2")), running("A", "n1", **a_budget), running("B", "n2"))
    m = sequenced(problem, plan(problem, ("A", "n2"), ("B", "n1")))
    assert words(m) == expected
    assert m.safe is safe
    assert [(t.workload, t.node, t.stop_step, t.steps_down, t.within_budget) for t in m.downtime] == down
    if safe:
        assert m.blocked == ()
    else:
        assert {(b.workload, b.node, b.rule, b.where) for b in m.blocked} == {
            ("A", "n2", "gpu_count", "n2/gpu0"),
            ("B", "n1", "gpu_count", "n1/gpu0"),
        }
        assert "held by B" in next(b.message for b in m.blocked if b.workload == "A")


# ------------------------------------------------ a rack or site with room for one extra copy at a time


@pytest.mark.parametrize(
    ("tight", "usable_w", "safe", "rule"),
    [
        pytest.param("rack", 1500, True, "", id="rack: exactly one extra copy fits, moves serialize"),
        pytest.param("site", 1500, True, "", id="site: exactly one extra copy fits, moves serialize"),
        pytest.param("rack", 1499, False, "domain_power", id="rack boundary: 1 W short of one extra copy"),
        pytest.param("site", 1499, False, "site_power", id="site boundary: 1 W short of one extra copy"),
    ],
)
def test_a_move_through_a_tight_rack_serializes(tight: str, usable_w: int, safe: bool, rule: str) -> None:
    problem = serial_problem(tight, usable_w)
    m = sequenced(problem, plan(problem, ("w", "b1"), ("w", "b2")))
    assert m.safe is safe
    peaks = {p.name: p for p in (*m.site_peaks, *m.domain_peaks)}
    limited = peaks["r1" if tight == "rack" else "dc1"]
    assert (limited.start_w, limited.end_w) == (1000, 1000)
    if safe:
        assert words(m) == [
            "START w b1", "WAIT_READY w b1", "STOP w a1", "START w b2", "WAIT_READY w b2", "STOP w a2",
        ]  # fmt: skip
        assert (limited.peak_w, limited.peak_step) == (1500, 1)
        assert m.downtime == ()
    else:
        assert {b.rule for b in m.blocked} == {rule}
        assert (m.blocked[0].requested, m.blocked[0].available, m.blocked[0].unit) == (500.0, 499.0, "W")
        assert limited.peak_w <= usable_w


def serial_problem(tight: str, usable_w: int) -> d.Problem:
    """Rack r1: a1, a2 (DRAINING, running w) and b1, b2; the rack or the site holds ``usable_w``."""
    nodes = (
        one_gpu("a1", state=DRAINING),
        one_gpu("a2", state=DRAINING),
        one_gpu("b1"),
        one_gpu("b2"),
    )
    kw = usable_w / 1000
    sites = (site("dc1", kw=kw if tight == "site" else 100.0),)
    domains = (d.PowerDomain("r1", "dc1", kw if tight == "rack" else 100.0),)
    return problem_of(nodes, running("w", "a1", "a2"), sites=sites, domains=domains)


# ------------------------------------------------------------------ a drain with room elsewhere


def test_a_drain_with_room_elsewhere_is_make_before_break() -> None:
    nodes = (node("old", gpus=2, state=DRAINING), one_gpu("r1"), one_gpu("r2"), one_gpu("r3"))
    frac = d.Workload("F", gpus=0, gpu_milli=500, memory_gib=8.0, current=(d.CurrentReplica("old", (1,)),))
    problem = problem_of(nodes, running("A", "old"), frac, running("N"))
    m = sequenced(problem, plan(problem, ("A", "r1"), ("F", "r2"), ("N", "r3")))
    assert m.safe and m.blocked == () and m.downtime == ()
    assert Counter(s.kind for s in m.steps) == {
        d.StepKind.START: 3,
        d.StepKind.WAIT_READY: 3,
        d.StepKind.STOP: 2,
    }
    ready: set[str] = set()
    for s in m.steps:
        if s.kind is d.StepKind.WAIT_READY:
            ready.add(s.workload)
        if s.kind is d.StepKind.STOP:
            assert s.workload in ready, f"{s.workload} stopped before its new copy was ready"
    start_f = next(s for s in m.steps if s.kind is d.StepKind.START and s.workload == "F")
    assert (start_f.gpu_milli, start_f.power_cap_w) == (500, 400)
    assert words(m)[-2:] == ["START N r3", "WAIT_READY N r3"]  # an addition after the moves


# ------------------------------------------------------------ caps lowered before the watts are needed


@pytest.mark.parametrize(
    ("rack_w", "safe"),
    [
        pytest.param(700, True, id="exactly at the rack's cap once K is lowered"),
        pytest.param(699, False, id="boundary: 1 W short even with K lowered"),
    ],
)
def test_a_cap_is_lowered_before_a_start_that_needs_its_watts(rack_w: int, safe: bool) -> None:
    nodes = (one_gpu("a1"), one_gpu("b1"))
    domains = (d.PowerDomain("r1", "dc1", rack_w / 1000),)
    problem = problem_of(nodes, running("K", "a1"), running("N"), domains=domains)
    if not safe:  # the plan itself does not fit: the verifier of plans says so, the sequence is blocked
        p = build_plan(problem, plan_rows(problem), ())
        assert {v.rule for v in verify(problem, p)} == {"domain_power"}
        m = migration(problem, p)
        assert not m.safe and {b.rule for b in m.blocked} == {"domain_power"}
        return
    m = sequenced(problem, plan(problem, ("K", "a1", 250), ("N", "b1", 250)))
    assert words(m) == ["SET_CAP K a1 250", "START N b1", "WAIT_READY N b1"]
    assert m.safe
    assert [(p.name, p.start_w, p.peak_w, p.end_w) for p in m.domain_peaks] == [("r1", 500, 700, 700)]


def plan_rows(problem: d.Problem) -> tuple[d.ReplicaPlacement, ...]:
    return (
        d.ReplicaPlacement("K", 0, "dc1", "r1", "a1", (0,), 1000, 250),
        d.ReplicaPlacement("N", 0, "dc1", "r1", "b1", (0,), 1000, 250),
    )


def test_raised_caps_come_last() -> None:
    nodes = (one_gpu("a1"), one_gpu("b1", state=DRAINING), one_gpu("c1"))
    problem = problem_of(
        nodes, running("K", "a1", current=(d.CurrentReplica("a1", (0,), 250),)), running("M", "b1")
    )
    m = sequenced(problem, plan(problem, ("K", "a1", 400), ("M", "c1")))
    assert words(m) == ["START M c1", "WAIT_READY M c1", "STOP M b1", "SET_CAP K a1 400"]


@pytest.mark.parametrize(
    ("cpu_milli", "safe"),
    [
        pytest.param(0, True, id="host CPU not tracked"),
        pytest.param(1200, True, id="exactly room for both copies' CPU"),
        pytest.param(1199, False, id="boundary: 1 mCPU short for both copies"),
    ],
)
def test_host_resources_count_both_copies(cpu_milli: int, safe: bool) -> None:
    """w moves between the two GPUs of one node: both copies' 600 mCPU count while the new one starts."""
    problem = problem_of((node("n", gpus=2, cpu_milli=cpu_milli),), running("w", "n", cpu_milli=600))
    p = build_plan(problem, (d.ReplicaPlacement("w", 0, "dc1", "r1", "n", (1,), 1000, 400),), ())
    assert verify(problem, p) == []
    m = sequenced(problem, p)
    assert m.safe is safe
    assert [b.rule for b in m.blocked] == ([] if safe else ["host_resources"])


# --------------------------------------------------------- spread and site-loss survival in the sequence


@pytest.mark.parametrize(
    ("rule", "safe"),
    [
        pytest.param({}, True, id="no spread: a planned break of the dc2 replica"),
        pytest.param({"spread": d.Spread(d.SpreadLevel.SITE, 2)}, False, id="spread over 2 sites: no break"),
        pytest.param({"survive_site_loss_pct": 33}, False, id="survive a site loss: no break"),
    ],
)
def test_spread_and_site_loss_survival_hold_during_the_sequence(rule: dict[str, object], safe: bool) -> None:
    """w runs 3 replicas (a1, a2 in dc1; c1 in dc2), max_unavailable 1; c1 drains and dc2 powers one
    node at a time, so c1 -> c2 needs a break, which the floor allows but spread and survival do not."""
    nodes = (
        one_gpu("a1"),
        one_gpu("a2"),
        one_gpu("c1", s="dc2", pd="r2", state=DRAINING),
        one_gpu("c2", s="dc2", pd="r2"),
    )
    sites = (site("dc1"), site("dc2", kw=0.5))
    w = running("w", "a1", "a2", "c1", max_unavailable_count=1, **rule)
    problem = problem_of(nodes, w, sites=sites)
    m = sequenced(problem, plan(problem, ("w", "a1"), ("w", "a2"), ("w", "c2")))
    assert words(m) == ["STOP w c1", "START w c2", "WAIT_READY w c2"]
    assert m.safe is safe
    assert [(t.node, t.steps_down, t.within_budget) for t in m.downtime] == [("c1", 2, safe)]
    assert [b.rule for b in m.blocked] == ([] if safe else ["site_power"])


# --------------------------------------------------------------- the transient verifier, mutation by mutation


def _serial() -> tuple[d.Problem, d.Plan, d.Migration]:
    problem = serial_problem("site", 1500)
    p = plan(problem, ("w", "b1"), ("w", "b2"))
    return problem, p, sequenced(problem, p)


def _drop(m: d.Migration, k: int) -> d.Migration:
    return dataclasses.replace(m, steps=m.steps[: k - 1] + m.steps[k:])


def _order(m: d.Migration, *order: int) -> d.Migration:
    return dataclasses.replace(m, steps=tuple(m.steps[k - 1] for k in order))


def _on_node(m: d.Migration, k: int, name: str) -> d.Migration:
    steps = list(m.steps)
    steps[k - 1] = dataclasses.replace(steps[k - 1], node=name)
    return dataclasses.replace(m, steps=tuple(steps))


# the valid order: 1 START b1, 2 WAIT_READY b1, 3 STOP a1, 4 START b2, 5 WAIT_READY b2, 6 STOP a2
MUTATIONS = [
    pytest.param(lambda m: _drop(m, 3), ("site_power", "step 3"), id="a stop dropped: the next start overdraws"),
    pytest.param(lambda m: _drop(m, 6), ("final_state", "final"), id="a stop dropped: the end is not the plan"),
    pytest.param(lambda m: _order(m, 1, 3, 2, 4, 5, 6), ("floor", "step 2"), id="stop before the new copy is ready"),
    pytest.param(lambda m: _order(m, 3, 1, 2, 4, 5, 6), ("floor", "step 1"), id="break before make"),
    pytest.param(lambda m: _order(m, 1, 2, 4, 5, 3, 6), ("site_power", "step 3"), id="two extra copies overdraw the site"),
    pytest.param(lambda m: _on_node(m, 4, "b1"), ("gpu_count", "step 4"), id="a GPU booked twice"),
    pytest.param(lambda m: _on_node(m, 3, "b2"), ("step", "step 3"), id="a stop of nothing running"),
    pytest.param(lambda m: _on_node(m, 2, "b2"), ("step", "step 2"), id="ready with nothing started"),
    pytest.param(lambda m: _on_node(m, 1, "gone"), ("step", "step 1"), id="an unknown node"),
    pytest.param(
        lambda m: dataclasses.replace(m, site_peaks=()), ("migration", "site dc1"), id="a site's peak left out"
    ),
    pytest.param(
        lambda m: dataclasses.replace(m, blocked=(d.BlockedMove("w", "b1", (0,), "site_power", "x"),)),
        ("migration", "safe"),
        id="safe with a blocked move",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "finding"), MUTATIONS)
def test_the_transient_verifier_names_the_broken_step(mutate: object, finding: tuple[str, str]) -> None:
    problem, p, m = _serial()
    bad = mutate(m)  # type: ignore[operator]
    found = {(v.rule, v.subject) for v in verify_migration(problem, p, bad)}
    assert finding in found, found


def test_a_declared_fallback_excuses_only_its_own_downtime() -> None:
    """The swap without budgets: B's out-of-budget downtime is declared; A's break, not declared, is found."""
    problem = problem_of((one_gpu("n1"), one_gpu("n2")), running("A", "n1"), running("B", "n2"))
    p = plan(problem, ("A", "n2"), ("B", "n1"))
    m = sequenced(problem, p)
    assert not m.safe
    hidden = dataclasses.replace(m, downtime=())
    assert ("floor", "step 1") in {(v.rule, v.subject) for v in verify_migration(problem, p, hidden)}
    claimed = dataclasses.replace(
        m,
        safe=True,
        downtime=tuple(dataclasses.replace(t, within_budget=True) for t in m.downtime),
        blocked=(),
    )
    assert {(v.rule, v.subject) for v in verify_migration(problem, p, claimed)} == {("floor", "step 1")}


# --------------------------------------------------------------------------------- the pipeline


def test_a_replan_through_solve_carries_a_migration_that_passes() -> None:
    base = generate(120, 4, current_share=0.6, demand_ratio=0.5)
    rng = random.Random(4)
    hosting = sorted({cr.node for w in base.workloads for cr in w.current})
    drained = set(rng.sample(hosting, 3))
    nodes = tuple(
        dataclasses.replace(n, state=DRAINING) if n.name in drained else n for n in base.fleet.nodes
    )
    problem = dataclasses.replace(
        base,
        fleet=dataclasses.replace(base.fleet, nodes=nodes),
        options=dataclasses.replace(base.options, time_limit_s=5.0),
    )
    p = solve(problem)
    m = p.migration
    assert m is not None
    assert verify_migration(problem, p, m) == []
    stopped = Counter((s.workload, s.node) for s in m.steps if s.kind is d.StepKind.STOP)
    for w in problem.workloads:
        for cr in w.current:
            if cr.node in drained:
                assert stopped[(w.name, cr.node)] >= 1, f"{w.name} still runs on drained {cr.node}"
    assert m.safe and m.downtime == ()
    assert {x.name for x in m.site_peaks} == {s.name for s in problem.fleet.sites}
    # the wire carries it both ways
    assert plan_from_proto(plan_to_proto(p)).migration == m


def test_a_plan_without_current_replicas_has_no_migration() -> None:
    problem = problem_of((one_gpu("n1"),), running("A"))
    problem = dataclasses.replace(problem, options=dataclasses.replace(problem.options, time_limit_s=5.0))
    assert solve(problem).migration is None


# --------------------------------------------------------------------------------------- the report


def test_the_report_summarises_ten_thousand_steps_in_a_few_lines() -> None:
    step = d.MigrationStep(d.StepKind.START, "w", "n1", (0,), 400)
    down = tuple(d.Downtime("w", f"n{i}", (0,), i, 3, i % 2 == 0) for i in range(50))
    blocked = tuple(
        d.BlockedMove("w", f"n{i}", (0,), "site_power", f"site dc1 is short {i} W") for i in range(30)
    )
    peak = d.PowerPeak("site", "dc1", "dc1", 10_000, 8_000, 9_500, 17, 9_000)
    m = d.Migration((step,) * 10_000, blocked, down, (peak,), (), False)
    text = "\n".join(migration_lines(m))
    assert "10,000 steps" in text and "NOT SAFE" in text
    assert "30 blocked" in text and "50 replicas" in text
    assert "9,500" in text and "10,000" in text  # the site's peak against its usable watts
    assert len(text.splitlines()) < 40


def test_an_unsafe_migration_crosses_the_wire_whole() -> None:
    problem = problem_of((one_gpu("n1"), one_gpu("n2")), running("A", "n1"), running("B", "n2"))
    p = plan(problem, ("A", "n2"), ("B", "n1"))
    m = sequenced(problem, p)
    assert m.blocked and m.downtime and m.domain_peaks
    back = plan_from_proto(plan_to_proto(dataclasses.replace(p, migration=m)))
    assert back.migration == m
    assert plan_from_proto(plan_to_proto(p)).migration is None


# ------------------------------------------------------------------ a plan file's migration is checked too


def _files(tmp_path: Path, problem: d.Problem, p: d.Plan) -> tuple[Path, Path]:
    from wire.convert import request_from_problem
    from wire.files import to_json

    inp, out = tmp_path / "problem.json", tmp_path / "plan.json"
    inp.write_text(to_json(request_from_problem(problem)))
    out.write_text(to_json(plan_to_proto(p)))
    return inp, out


@pytest.mark.parametrize(
    ("mutate", "code", "finding"),
    [
        pytest.param(lambda m: m, 0, "", id="the-migration-as-built"),
        pytest.param(lambda m: _drop(m, 3), 1, "[site_power] step 3", id="a-stop-dropped"),
        pytest.param(lambda m: _order(m, 3, 1, 2, 4, 5, 6), 1, "[floor] step 1", id="break-before-make"),
    ],
)
def test_verify_checks_the_migration_a_plan_file_carries(
    tmp_path: Path, mutate: object, code: int, finding: str
) -> None:
    problem, p, m = _serial()
    carried = dataclasses.replace(p, migration=mutate(m))  # type: ignore[operator]
    assert verify(problem, carried) == []  # the plan itself is valid: only the steps can fail
    assert bool(verify_all(problem, carried)) == bool(code)
    inp, out = _files(tmp_path, problem, carried)
    r = run_cli("verify", str(inp), str(out))
    assert r.returncode == code, r.stdout + r.stderr
    assert finding in r.stdout
