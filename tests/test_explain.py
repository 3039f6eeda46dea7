"""Reasons for unplaced work name the rule that binds, with numbers equal to the plan's budgets.

Hand-built plans, one per binding rule (boundaries included), the bundled datasets checked
against an oracle that works from the plan's placements and budgets alone, and the
``fleetplace explain`` / ``--version`` commands run as real processes.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from placement import solve
from placement.construct.heuristics import HEURISTICS
from placement.core.budgets import compute_budgets
from placement.core.candidates import filter_candidates
from placement.core.domain import (
    Fleet,
    GpuType,
    Node,
    Plan,
    PowerDomain,
    PowerLevel,
    Problem,
    Reason,
    ReplicaPlacement,
    Site,
    SiteKind,
    SolveInfo,
    SolveOptions,
    SolveStatus,
    Workload,
    memory_milli_gib,
)
from placement.core.explain import PLAN_RULES, explain, unplaced_reasons
from placement.core.objective import evaluate
from placement.core.state import FleetState
from placement.core.verify import verify
from server.client import PlacementClient
from tests.builders import REPO, run_cli
from tests.server_support import running_server
from wire import convert
from wire.files import load_problem, write_json_atomic

# 4 GPUs a node, idle 100 W, caps 400 W (75%) and 700 W; a node's host draws 1000 W, so a
# node on with idle GPUs draws 1,400 W and a 4-GPU replica at 400 W adds 1,200 W (2,600 W
# on a node that was off); at 700 W it adds 2,400 W (a full node draws 3,800 W).
GPU = GpuType(
    name="T",
    memory_gib=80.0,
    max_power_w=700,
    min_power_cap_w=300,
    idle_power_w=100,
    power_levels=(PowerLevel(400, 75), PowerLevel(700, 100)),
    shareable=True,
)


def _node(name: str, pd: str = "r1", **kw: object) -> Node:
    return Node(name=name, site="dc1", power_domain=pd, gpu_type="T", gpu_count=4, host_power_w=1000, **kw)  # type: ignore[arg-type]


def _problem(
    nodes: tuple[Node, ...], workloads: tuple[Workload, ...], domain_kw: dict[str, float], site_kw: float
) -> Problem:
    site = Site(
        name="dc1", kind=SiteKind.DATACENTER, region="eu", capacity_kw=site_kw, pue=1.0, has_generator=True
    )
    domains = tuple(PowerDomain(name=d, site="dc1", capacity_kw=kw) for d, kw in sorted(domain_kw.items()))
    fleet = Fleet(gpu_types=(GPU,), sites=(site,), power_domains=domains, nodes=nodes, regions=("eu",))
    return Problem(fleet=fleet, workloads=workloads, options=SolveOptions(time_limit_s=5))


H4 = Workload(name="h4", gpus=4, max_replicas=4, priority=10)  # holders, placed by hand
H1 = Workload(name="h1", gpus=1, max_replicas=8, priority=10)
F600 = Workload(name="f600", gpus=0, gpu_milli=600, memory_gib=10.0, max_replicas=8, priority=10)
F300 = Workload(name="f300", gpus=0, gpu_milli=300, memory_gib=60.0, max_replicas=8, priority=10)
W4 = Workload(name="w", gpus=4)


def _plan(problem: Problem, rows: list[tuple[str, str, tuple[int, ...], int]]) -> Plan:
    """A plan of ``rows`` (workload, node, GPU indices, cap W), with budgets and the reasons of ``solve``."""
    nodes = {n.name: n for n in problem.fleet.nodes}
    wl = {w.name: w for w in problem.workloads}
    count: dict[str, int] = defaultdict(int)
    placements = []
    for w, n, idx, cap in rows:
        milli = wl[w].gpu_milli if wl[w].is_fractional else 1000
        placements.append(ReplicaPlacement(w, count[w], "dc1", nodes[n].power_domain, n, idx, milli, cap))
        count[w] += 1
    prepared = filter_candidates(problem)
    unplaced = unplaced_reasons(prepared, FleetState.from_placements(prepared, placements))
    plan = Plan(
        placements=tuple(placements),
        budgets=compute_budgets(problem, placements),
        unplaced=tuple(unplaced),
        objective=evaluate(problem, placements),
        info=SolveInfo(status=SolveStatus.FEASIBLE, backend="hand"),
    )
    assert verify(problem, plan) == [], "the hand-built plan itself must be valid"
    return plan


def _numbers(r: Reason) -> tuple[str, float, float, str, str, int]:
    return (r.rule, r.requested, r.available, r.unit, r.where, r.candidates_excluded)


FULL = [("h4", "n1", (0, 1, 2, 3), 700)]  # n1 full: 3,800 W

# (case, nodes, workloads, domain kW, site kW, placements, expected reasons of "w", message parts)
CASES = [
    (
        "free GPUs but rack watts bind",
        (_node("n1"), _node("n2")),
        (H4, W4),
        {"r1": 6.399},
        100.0,
        FULL,
        [("domain_power", 2600, 2599, "W", "dc1/r1", 1), ("gpu_count", 4, 0, "GPUs", "n1", 1)],
        ["closest: n2 needs 2.6 kW", "plus 1.4 kW to power the node on", "2.599 kW of headroom", "h4 (1)"],
    ),
    (
        "exactly enough watts fits",
        (_node("n1"), _node("n2")),
        (H4, W4),
        {"r1": 6.4},
        100.0,
        FULL,
        [("time_limit", 1, 1, "replicas", "", 0)],
        ["room remains beside the placed work for at least 1 replicas"],
    ),
    (
        "rack has watts, site cap binds",
        (_node("n1"), _node("n2", pd="r2")),
        (H4, W4),
        {"r1": 100.0, "r2": 100.0},
        5.8,
        FULL,
        [("site_power", 2600, 2000, "W", "dc1", 1), ("gpu_count", 4, 0, "GPUs", "n1", 1)],
        [
            "site's cap binds",
            "its power domain dc1/r2 has 100 kW of headroom",
            "site dc1 has 2 kW of headroom",
        ],
    ),
    (
        "rack and site both short: the rack is named",
        (_node("n1"), _node("n2")),
        (H4, W4),
        {"r1": 6.0},
        6.1,
        FULL,
        [("domain_power", 2600, 2200, "W", "dc1/r1", 1), ("gpu_count", 4, 0, "GPUs", "n1", 1)],
        [],
    ),
    (
        "a powered node needs only its GPUs' watts",
        (_node("n1"), _node("n2")),
        (H1, replace(W4, gpus=3)),
        {"r1": 2.899},
        100.0,
        [("h1", "n1", (0,), 700)],
        [("domain_power", 900, 899, "W", "dc1/r1", 2)],
        [
            "on every candidate node (2)",
            "closest: n1 needs 0.9 kW (3 GPUs at the lowest allowed cap of 400 W",
        ],
    ),
    (
        "GPUs bind everywhere, watts to spare",
        (_node("n1"), _node("n2")),
        (H4, H1, W4),
        {"r1": 100.0},
        100.0,
        [*FULL, ("h1", "n2", (0,), 700), ("h1", "n2", (1,), 700)],
        [("gpu_count", 4, 2, "GPUs", "n2", 2)],
        ["on every candidate node (2), fewer than 4 GPUs are free (the most: 2, on n2)"],
    ),
    (
        "host CPU binds",
        (_node("n1", cpu_milli=8000),),
        (replace(H1, cpu_milli=6000), replace(W4, gpus=1, cpu_milli=4000)),
        {"r1": 100.0},
        100.0,
        [("h1", "n1", (0,), 700)],
        [("host_resources", 4000, 2000, "mCPU", "n1", 1)],
        ["the node lacks CPU: needs 4000 mCPU, the most left is 2000 mCPU"],
    ),
    (
        "shared GPUs have too little milli-GPU left",
        (_node("n1"),),
        (F600, Workload(name="w", gpus=0, gpu_milli=500)),
        {"r1": 100.0},
        100.0,
        [("f600", "n1", (j,), 700) for j in range(4)],
        [("gpu_share", 500, 400, "milli-GPU", "n1", 1)],
        ["no shared GPU has 500 milli-GPU left (the most left on a shared GPU: 400 milli on n1)"],
    ),
    (
        "shared GPU memory binds",
        (_node("n1"),),
        (F300, Workload(name="w", gpus=0, gpu_milli=300, memory_gib=30.0)),
        {"r1": 100.0},
        100.0,
        [("f300", "n1", (j,), 700) for j in range(4)],
        [("gpu_memory", 30.0, 20.0, "GiB", "n1", 1)],
        [],
    ),
    (
        "a free GPU to share but not its uncapped watts",
        (_node("n1"),),
        (F600, Workload(name="w", gpus=0, gpu_milli=500)),
        {"r1": 3.799},
        100.0,
        [("f600", "n1", (j,), 700) for j in range(3)],
        [("domain_power", 600, 599, "W", "dc1/r1", 1)],
        ["one shared GPU uncapped at 700 W"],
    ),
    (
        "room for fewer replicas than it needs",
        (_node("n1"), _node("n2")),
        (H4, replace(W4, gpus=2, min_replicas=3, max_replicas=3)),
        {"r1": 100.0},
        100.0,
        FULL,
        [("replicas", 3, 2, "replicas", "", 0), ("gpu_count", 2, 0, "GPUs", "n1", 1)],
        ["room beside the placed work for only 2 of the 3 replicas"],
    ),
    (
        "room at the lowest cap is room",
        (_node("n1"),),
        (replace(W4, gpus=1, min_replicas=2, max_replicas=2),),
        {"r1": 2.0},  # on (1,400) + 2 x 300 W at 400 W fits; at 700 W only one would
        100.0,
        [],
        [("time_limit", 2, 2, "replicas", "", 0)],
        [],
    ),
]


@pytest.mark.parametrize(
    ("case", "nodes", "workloads", "domain_kw", "site_kw", "rows", "expected", "parts"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_the_reason_names_the_binding_rule_with_the_budgets_numbers(
    case: str,
    nodes: tuple[Node, ...],
    workloads: tuple[Workload, ...],
    domain_kw: dict[str, float],
    site_kw: float,
    rows: list[tuple[str, str, tuple[int, ...], int]],
    expected: list[tuple[str, float, float, str, str, int]],
    parts: list[str],
) -> None:
    problem = _problem(nodes, workloads, domain_kw, site_kw)
    plan = _plan(problem, rows)
    (unplaced,) = [u for u in plan.unplaced if u.workload == "w"]
    assert [_numbers(r) for r in unplaced.reasons] == expected, case
    text = " | ".join(r.message for r in unplaced.reasons)
    for part in parts:
        assert part in text, (case, part, text)
    # the numbers are the plan's own budgets, to the watt
    for r in unplaced.reasons:
        if r.rule in ("domain_power", "site_power"):
            assert r.available == _headroom_w(plan, r.rule, r.where)
    # explain() with the plan gives the same, after the filter's reasons
    assert explain(problem, "w", plan=plan) == [*explain(problem, "w"), *unplaced.reasons]


NO_PLAN_CASES = [
    (
        "the site's cap is below the node with one replica",
        {"r1": 100.0},
        2.599,
        [("site_power", 2600, 2599, "W", "dc1", 1)],
    ),
    ("exactly at the site's cap fits", {"r1": 100.0}, 2.6, []),
    (
        "the rack's cap is below the node with one replica",
        {"r1": 2.599},
        100.0,
        [("domain_power", 2600, 2599, "W", "dc1/r1", 1)],
    ),
    ("exactly at the rack's cap fits", {"r1": 2.6}, 100.0, []),
]


@pytest.mark.parametrize(
    ("case", "domain_kw", "site_kw", "expected"), NO_PLAN_CASES, ids=[c[0] for c in NO_PLAN_CASES]
)
def test_without_a_plan_the_power_reason_is_the_usable_cap(
    case: str,
    domain_kw: dict[str, float],
    site_kw: float,
    expected: list[tuple[str, float, float, str, str, int]],
) -> None:
    problem = _problem((_node("n1"),), (W4,), domain_kw, site_kw)
    assert [_numbers(r) for r in explain(problem, "w")] == expected, case


def _headroom_w(plan: Plan, rule: str, where: str) -> int:
    if rule == "domain_power":
        site, name = where.split("/")
        (b,) = [b for b in plan.budgets.power_domains if (b.site, b.name) == (site, name)]
    else:
        (b,) = [b for b in plan.budgets.sites if b.name == where]
    return round(b.headroom_kw * 1000)


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Found:
    rule: str
    node: int
    requested: float
    available: float
    unit: str
    where: str


def _oracle(problem: Problem, plan: Plan, w: int, nodes: list[int]) -> tuple[list[Found], int]:
    """What binds on each of ``nodes`` for one more replica of workload ``w``, from the plan's
    placements and budgets alone (in the documented order); and how many nodes have room."""
    fleet = problem.fleet
    wk = problem.workloads[w]
    wl = {x.name: x for x in problem.workloads}
    gpu = {g.name: g for g in fleet.gpu_types}
    free: dict[str, int] = defaultdict(int)
    for g in plan.budgets.gpus:
        free[g.node] += g.used_milli == 0
    on = {b.node: b.on for b in plan.budgets.nodes}
    dom_room = {(b.site, b.name): round(b.headroom_kw * 1000) for b in plan.budgets.power_domains}
    site_room = {b.name: round(b.headroom_kw * 1000) for b in plan.budgets.sites}
    cpu: dict[str, int] = defaultdict(int)
    hmem: dict[str, int] = defaultdict(int)
    shares: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for p in plan.placements:
        cpu[p.node] += wl[p.workload].cpu_milli
        hmem[p.node] += wl[p.workload].host_memory_mib
        if p.gpu_milli < 1000:
            sh = shares[(p.node, p.gpu_indices[0])]
            sh[0] += p.gpu_milli
            sh[1] += memory_milli_gib(wl[p.workload].memory_gib)
    found: list[Found] = []
    room = 0
    for n in nodes:
        node = fleet.nodes[n]
        t = gpu[node.gpu_type]
        mine = [v for (name, _j), v in shares.items() if name == node.name]
        has_share = False
        if not wk.is_fractional:
            if free[node.name] < wk.gpus:
                found.append(Found("gpu_count", n, wk.gpus, free[node.name], "GPUs", node.name))
                continue
        else:
            mem, cap = memory_milli_gib(wk.memory_gib), memory_milli_gib(t.memory_gib)
            has_share = any(m + wk.gpu_milli <= 1000 and b + mem <= cap for m, b in mine)
            if not has_share and free[node.name] == 0:
                ok = [b for m, b in mine if m + wk.gpu_milli <= 1000]
                if ok:
                    most = max(cap - b for b in ok)
                    found.append(Found("gpu_memory", n, mem / 1000, most / 1000, "GiB", node.name))
                else:
                    left = max((1000 - m for m, _b in mine), default=0)
                    found.append(Found("gpu_share", n, wk.gpu_milli, left, "milli-GPU", node.name))
                continue
        if node.cpu_milli and cpu[node.name] + wk.cpu_milli > node.cpu_milli:
            found.append(
                Found("host_resources", n, wk.cpu_milli, node.cpu_milli - cpu[node.name], "mCPU", node.name)
            )
            continue
        if node.host_memory_mib and hmem[node.name] + wk.host_memory_mib > node.host_memory_mib:
            left = node.host_memory_mib - hmem[node.name]
            found.append(Found("host_resources", n, wk.host_memory_mib, left, "MiB", node.name))
            continue
        if has_share:
            room += 1
            continue
        if wk.is_fractional:
            delta = t.max_power_w - t.idle_power_w
        else:
            floor_w = wk.min_power_cap_pct * t.max_power_w / 100
            lowest = min(lv.power_cap_w for lv in t.power_levels if lv.power_cap_w + 1e-9 >= floor_w)
            delta = wk.gpus * (lowest - t.idle_power_w)
        need = delta + (0 if on[node.name] else node.host_power_w + node.gpu_count * t.idle_power_w)
        if need > dom_room[(node.site, node.power_domain)]:
            found.append(
                Found(
                    "domain_power",
                    n,
                    need,
                    dom_room[(node.site, node.power_domain)],
                    "W",
                    f"{node.site}/{node.power_domain}",
                )
            )
        elif need > site_room[node.site]:
            found.append(Found("site_power", n, need, site_room[node.site], "W", node.site))
        else:
            room += 1
    return found, room


def _check_plan_reasons(
    problem: Problem, plan: Plan, w: int, nodes: list[int], reasons: list[Reason]
) -> None:
    name = problem.workloads[w].name
    found, room = _oracle(problem, plan, w, nodes)
    node_rules = [r for r in reasons if r.rule in PLAN_RULES]
    others = [r for r in reasons if r.rule not in PLAN_RULES]
    if room == 0:
        assert not others, (name, reasons)
    else:  # what the room falls short of, then what binds on the rest
        assert [r.rule for r in reasons[:1]] == [others[0].rule] and len(others) == 1, (name, reasons)
        (o,) = others
        assert o.rule in ("replicas", "spread", "site_survival", "time_limit"), (name, o)
        assert (o.available >= o.requested) == (o.rule == "time_limit"), (name, o)
        if o.rule == "time_limit":
            return
    groups: dict[tuple[str, str], list[Found]] = defaultdict(list)
    for f in found:
        groups[(f.rule, f.unit)].append(f)
    assert {(r.rule, r.unit) for r in node_rules} == set(groups), (name, reasons, found)
    for r in node_rules:
        group = groups[(r.rule, r.unit)]
        assert r.candidates_excluded == len(group), (name, r)
        if r.rule in ("domain_power", "site_power"):
            best = min(group, key=lambda f: (f.requested - f.available, f.node))
            assert r.available == _headroom_w(plan, r.rule, r.where), (name, r)
            assert f"closest: {problem.fleet.nodes[best.node].name} needs" in r.message, (name, r)
        else:
            best = max(group, key=lambda f: (f.available, -f.node))
        assert (r.requested, r.available, r.where) == (best.requested, best.available, best.where), (
            name,
            r,
            best,
        )
        assert r.available < r.requested, (name, r)


def _check_filter_reasons(problem: Problem, reasons: list[Reason]) -> None:
    usable = {d.name: d.usable_power_w for d in problem.fleet.power_domains}
    sites = {s.name: s.usable_power_w for s in problem.fleet.sites}
    counts = {n.name: n.gpu_count for n in problem.fleet.nodes}
    for r in reasons:
        if r.rule == "domain_power":
            assert r.available == usable[r.where.split("/")[1]] < r.requested, r
        elif r.rule == "site_power":
            assert r.available == sites[r.where] < r.requested, r
        elif r.rule == "gpu_count":
            assert r.available == counts[r.where] < r.requested, r
        elif r.rule in ("gpu_memory", "backup"):
            assert r.available < r.requested, r
        elif r.rule == "latency":
            assert r.available > r.requested, r


def _plans(problem: Problem) -> list[tuple[str, Plan]]:
    """A short solve and two deterministic heuristics' plans (which leave more work out), each
    with the reasons ``solve`` gives."""
    out = [("solve", solve(replace(problem, options=replace(problem.options, time_limit_s=2.0))))]
    prepared = filter_candidates(problem)
    for method in ("first_fit_decreasing", "best_fit"):
        placements = HEURISTICS[method](problem)
        plan = Plan(
            placements=placements,
            budgets=compute_budgets(problem, placements),
            unplaced=tuple(unplaced_reasons(prepared, FleetState.from_placements(prepared, placements))),
            objective=evaluate(problem, placements),
            info=SolveInfo(status=SolveStatus.FEASIBLE, backend=method),
        )
        out.append((method, plan))
    return out


@pytest.mark.parametrize("dataset", ["tiny", "mixed", "infeasible"])
def test_bundled_datasets_reasons_agree_with_the_plans_budgets(dataset: str) -> None:
    problem = load_problem(REPO / "datasets" / dataset)
    prepared = filter_candidates(problem)
    index = {w.name: i for i, w in enumerate(problem.workloads)}
    checked: dict[str, int] = defaultdict(int)
    for method, plan in _plans(problem):
        assert verify(problem, plan) == [], method
        for u in plan.unplaced:
            w = index[u.workload]
            if problem.workloads[w].pinned:
                continue
            filt = explain(problem, u.workload)
            full = explain(problem, u.workload, plan=plan)
            assert full[: len(filt)] == filt
            _check_filter_reasons(problem, filt)
            analysed = not u.reasons[0].message.startswith("not analysed")
            if w in prepared.by_workload:
                nodes = sorted(c.node for c in prepared.by_workload[w])
                _check_plan_reasons(problem, plan, w, nodes, full[len(filt) :])
                if analysed:
                    assert list(u.reasons) == full[len(filt) :], (method, u.workload)
            else:
                assert full == filt
                if analysed:
                    assert list(u.reasons) == filt, (method, u.workload)
            for r in u.reasons:
                checked[r.rule] += 1
    if dataset == "mixed":  # the heuristics leave fractional and whole-GPU work out
        assert checked["gpu_share"] and checked["gpu_count"], checked
        assert checked["domain_power"] + checked["site_power"], checked
    if dataset == "infeasible":
        assert checked["domain_power"] and checked["gpu_count"], checked


def test_never_most_free_zero_gpus_while_an_unpowered_node_is_free() -> None:
    """The issue's nightly-eval: entirely free nodes that lack watts are a power reason, and the
    GPU reason speaks only of the nodes whose GPUs are taken."""
    nodes = (_node("n1"), _node("n2"), _node("n3", pd="r2"))
    problem = _problem(nodes, (H4, W4), {"r1": 6.399, "r2": 100.0}, 100.0)
    plan = _plan(problem, [*FULL, ("h4", "n3", (0, 1, 2, 3), 700)])
    (u,) = [u for u in plan.unplaced if u.workload == "w"]
    rules = {r.rule: r for r in u.reasons}
    assert set(rules) == {"domain_power", "gpu_count"}
    assert "every candidate" not in rules["gpu_count"].message
    assert rules["gpu_count"].candidates_excluded == 2 and rules["domain_power"].candidates_excluded == 1


# -------------------------------------------------------------------------------- CLI


@pytest.fixture
def case_files(tmp_path: Path) -> tuple[Path, Path, Problem]:
    """The "free GPUs but rack watts bind" case as files: input and a plan whose reasons ran out of time."""
    problem = _problem((_node("n1"), _node("n2")), (H4, W4), {"r1": 6.399}, 100.0)
    plan = _plan(problem, FULL)
    late = Reason("time_limit", "not analysed within the time limit", 0)
    plan = replace(plan, unplaced=tuple(replace(u, reasons=(late,)) for u in plan.unplaced))
    write_json_atomic(tmp_path / "input.json", convert.request_from_problem(problem))
    write_json_atomic(tmp_path / "plan.json", convert.plan_to_proto(plan))
    return tmp_path / "input.json", tmp_path / "plan.json", problem


def test_explain_command_gives_the_plans_reasons(case_files: tuple[Path, Path, Problem]) -> None:
    input_path, plan_path, _ = case_files
    r = run_cli("explain", str(input_path), "w", "--plan", str(plan_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"w: not placed in {plan_path}")
    assert "[domain_power]" in r.stdout and "2.599 kW of headroom" in r.stdout and "[gpu_count]" in r.stdout
    j = run_cli("explain", str(input_path), "w", "--plan", str(plan_path), "--format", "json")
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc.get("placed", False) is False
    power = next(x for x in doc["reasons"] if x["rule"] == "domain_power")
    assert (power["requested"], power["available"], power["unit"], power["where"]) == (
        2600,
        2599,
        "W",
        "dc1/r1",
    )


def test_explain_command_without_a_plan_and_for_a_placed_workload(
    case_files: tuple[Path, Path, Problem],
) -> None:
    input_path, plan_path, _ = case_files
    r = run_cli("explain", str(input_path), "w")
    assert r.returncode == 0, r.stderr
    assert "on an empty fleet" in r.stdout and "no rule rules any node out" in r.stdout
    placed = run_cli("explain", str(input_path), "h4", "--plan", str(plan_path), "--format", "json")
    assert placed.returncode == 0, placed.stderr
    assert json.loads(placed.stdout)["placed"] is True
    site = run_cli("explain", str(input_path), "w", "--plan", str(plan_path), "--site", "dc1")
    assert site.returncode == 0 and "in site dc1" in site.stdout and "[domain_power]" in site.stdout


@pytest.mark.parametrize(
    ("case", "args", "paths"),
    [
        ("unknown workload", ["nope"], ["workload"]),
        ("unknown site", ["w", "--site", "nowhere"], ["site"]),
        ("both at once", ["nope", "--site", "nowhere"], ["workload", "site"]),
    ],
    ids=["unknown workload", "unknown site", "both at once"],
)
def test_explain_command_bad_names_exit_2_with_field_paths(
    case_files: tuple[Path, Path, Problem], case: str, args: list[str], paths: list[str]
) -> None:
    input_path, _, _ = case_files
    r = run_cli("explain", str(input_path), *args)
    assert r.returncode == 2, case
    assert [line.split(":")[0].strip() for line in r.stderr.splitlines()[1:]] == paths, r.stderr


def test_explain_command_refuses_a_plan_of_another_input(case_files: tuple[Path, Path, Problem]) -> None:
    _, plan_path, _ = case_files
    r = run_cli("explain", str(REPO / "datasets" / "tiny"), "vision-batch", "--plan", str(plan_path))
    assert r.returncode == 2
    assert "plan: does not pass the verifier" in r.stderr


def test_the_report_names_a_command_that_exists(
    case_files: tuple[Path, Path, Problem], tmp_path: Path
) -> None:
    """A plan whose explanations ran out of time points at ``fleetplace explain``, which answers."""
    input_path, _, problem = case_files
    prepared = filter_candidates(problem)
    state = FleetState.from_placements(prepared, _plan(problem, FULL).placements)
    (u,) = [u for u in unplaced_reasons(prepared, state, deadline=0.0) if u.workload == "w"]
    (late,) = u.reasons
    command = re.search(r"`fleetplace (explain [^`]+)`", late.message)
    assert command is not None, late.message
    args = (
        command.group(1)
        .replace("INPUT", str(input_path))
        .replace("PLAN", str(tmp_path / "plan.json"))
        .split()
    )
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "[domain_power]" in r.stdout


def test_version_names_package_revision_and_solvers() -> None:
    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    from importlib.metadata import version

    line = r.stdout.strip()
    assert "\n" not in line
    assert line.startswith(f"fleetplace {version('fleetplace')} (code revision {rev})"), line
    assert f"ortools {version('ortools')}" in line and f"pulp {version('pulp')}" in line


# -------------------------------------------------------------------------------- RPC


@pytest.mark.slow
def test_explain_rpc_and_command_are_twins(case_files: tuple[Path, Path, Problem]) -> None:
    """The Explain RPC works the plan's reasons out anew too: the same answer as the command."""
    input_path, plan_path, problem = case_files
    cli = run_cli("explain", str(input_path), "w", "--plan", str(plan_path), "--format", "json")
    assert cli.returncode == 0, cli.stderr
    from google.protobuf import json_format

    from wire.files import load_plan

    with running_server() as (_server, address), PlacementClient(address, timeout_s=30) as client:
        answer = client.explain(convert.request_from_problem(problem), "w", plan=load_plan(plan_path))
    assert json_format.MessageToDict(answer) == json.loads(cli.stdout)
    assert any(r.rule == "domain_power" and r.available == 2599 for r in answer.reasons)
