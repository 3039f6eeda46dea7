"""Which current replicas a plan moves, and why: ``Plan.displaced`` (issue 15, items 1-2).

``displaced(problem, placements)`` lists one ``Displaced`` per current replica of a running
workload (current, not pinned) that the plan does not keep on its node, from the plan alone:

* ``node_state`` (forced): its node is gone, DRAINING or DOWN;
* a static rule the input now breaks there (forced): ``gpu_type``, ``gpu_memory``,
  ``power_cap`` (no allowed level), ``latency``, ``backup``;
* ``blast_radius`` (forced): a lowered cap (rule 16) leaves the node more of the workload's
  current replicas than ``max_per_node``, or its power domain more than
  ``max_per_power_domain`` (current replicas on nodes no static rule forces it off);
* ``preempted``: the workload is left out and ``evictor``, of higher priority, gained a
  replica on its node or in its power domain;
* ``moved``: the optimiser's choice (within the disruption budgets); ``to_node`` names a node
  where the workload gained a replica.

A workload scaled up past what runs (fewer current replicas than ``min_replicas``) is placed
anew whole, so its moves are forced (``replicas``), as the verifier counts them; so are those of
a workload whose current replicas, where they run, break its spread or site survival (``spread``,
``site_survival``: a scale-up raises the survivors it needs). Forced moves by
power: where the current placement, each replica at its recorded cap, overdraws
a power domain or a site (its capacity fell), every move off its nodes is forced
(``domain_power``, ``site_power``, with the watts), as the verifier counts them; the verifier
checks the budgets and preemption itself.

What each unforced move earns (``Displaced.earns_work``, ``earns_energy``) is attributed from
the plan alone: the work started on the node it leaves, shared by the replicas moved off that
node, and its own replica's energy there against where it goes. ``move_curve`` adds up the
best k of them for a few budgets k: what an operator reads as gain against moves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from placement.core.budgets import node_draws
from placement.core.domain import (
    Displaced,
    MovePoint,
    Node,
    NodeState,
    Problem,
    ReplicaPlacement,
    Workload,
    memory_milli_gib,
)
from placement.core.energy import allowed_levels, energy_coefficient, replica_work
from placement.core.network import latency_table
from placement.core.objective import throughput_pct, top_throughput_pct
from placement.core.verify import current_breaches

CURVE_PCT = (1, 2, 5, 10, 25)  # budgets of the curve, percent of the running replicas


def displaced(problem: Problem, placements: Iterable[ReplicaPlacement]) -> tuple[Displaced, ...]:
    placements = tuple(placements)
    fleet = problem.fleet
    nodes = {n.name: n for n in fleet.nodes}
    gpus = {g.name: g for g in fleet.gpu_types}
    sites = {s.name: s for s in fleet.sites}
    planned: Counter[tuple[str, str]] = Counter((p.workload, p.node) for p in placements)
    placed = {p.workload for p in placements}
    prio = {w.name: w.priority for w in problem.workloads}
    current_of = {w.name: Counter(c.node for c in w.current) for w in problem.workloads}
    latency: dict[tuple[str, str], float] | None = None

    def static(w: Workload, name: str, where: str) -> tuple[str, str] | None:
        """The node state or static rule that forces ``w``'s current replica off node ``name``."""
        nonlocal latency
        node = nodes.get(name)
        if node is None or node.state is not NodeState.READY:
            return "node_state", f"{where}: node {name} is {'gone' if node is None else node.state.value}"
        gpu = gpus[node.gpu_type]
        site = sites[node.site]
        if w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types:
            return "gpu_type", f"{where}: {gpu.name} is not allowed any more"
        if memory_milli_gib(w.memory_per_gpu_gib) > memory_milli_gib(gpu.memory_gib):
            return (
                "gpu_memory",
                f"{where}: needs {w.memory_per_gpu_gib:g} GiB per GPU, {gpu.name} has {gpu.memory_gib:g}",
            )
        if not w.is_fractional and not allowed_levels(w, gpu):
            return (
                "power_cap",
                f"{where}: no {gpu.name} level reaches {w.min_power_cap_pct}% of {gpu.max_power_w} W",
            )
        if site.backup_minutes < w.backup_minutes:
            return (
                "backup",
                f"{where}: site {site.name} has {site.backup_minutes:g} min, needs {w.backup_minutes:g}",
            )
        if w.max_latency_ms > 0:
            latency = latency if latency is not None else latency_table(fleet)
            lat = latency.get((w.user_region, site.name))
            if lat is None or lat > w.max_latency_ms + 1e-9:
                return (
                    "latency",
                    f"{where}: site {site.name} is over {w.max_latency_ms:g} ms from {w.user_region}",
                )
        return None

    by_workload: dict[str, list[str]] = {}  # nodes each workload has a replica on
    gained_in: dict[str, list[str]] = {}  # power domain -> workloads that gained a replica there
    for (v, n), k in planned.items():
        by_workload.setdefault(v, []).append(n)
        if v in prio and n in nodes and k > current_of[v][n]:
            gained_in.setdefault(nodes[n].power_domain, []).append(v)
    out: list[Displaced] = []
    overdrawn = _overdrawn(problem)
    for w in problem.workloads:
        if not w.current or w.pinned:
            continue
        gained = sorted(
            n for n in by_workload.get(w.name, ()) if planned[(w.name, n)] > current_of[w.name][n]
        )
        left: Counter[str] = Counter()  # per node: current replicas kept so far
        blocked = {c.node: static(w, c.node, "") for c in w.current}
        over = _over_caps(w, nodes, Counter(c.node for c in w.current if blocked[c.node] is None))
        shape = _shape_broken(w, nodes)
        for c in w.current:
            if left[c.node] < planned[(w.name, c.node)]:
                left[c.node] += 1
                continue
            node = nodes.get(c.node)
            where = f"{w.name} on {c.node} GPUs {list(c.gpu_indices)}"
            rule, forced, msg, evictor = "moved", False, f"{where}: moved by the plan", ""
            got = static(w, c.node, where) if blocked[c.node] is not None else None
            if got is not None:
                rule, forced, msg = got[0], True, got[1]
            elif c.node in over:
                rule, forced, msg = "blast_radius", True, f"{where}: {over[c.node]}"
            elif c.node in overdrawn:
                rule, forced = overdrawn[c.node][0], True
                msg = f"{where}: {overdrawn[c.node][1]}"
            elif len(w.current) < w.min_replicas:
                rule, forced = "replicas", True
                msg = (
                    f"{where}: scaled up to {w.min_replicas} replicas while {len(w.current)} run: placed anew"
                )
            elif shape is not None:
                rule, forced, msg = shape[0], True, f"{where}: {shape[1]}"
            if rule == "moved" and w.name not in placed:
                domain = node.power_domain if node is not None else ""
                takers = sorted((-prio[v], v) for v in gained_in.get(domain, ()) if prio[v] > w.priority)
                if takers:
                    evictor = takers[0][1]
                    rule = "preempted"
                    msg = f"{where}: {evictor} (priority {prio[evictor]} > {w.priority}) took its place"
                else:
                    msg = f"{where}: left out by the plan"
            out.append(
                Displaced(
                    w.name,
                    c.node,
                    tuple(c.gpu_indices),
                    forced,
                    rule,
                    msg,
                    evictor,
                    gained[0] if gained else "",
                )
            )
    return _earnings(problem, placements, out)


def _overdrawn(problem: Problem) -> dict[str, tuple[str, str]]:
    """Nodes of the power domains and sites that the current placement, each replica at its recorded
    cap, overdraws (the watts from ``budgets.node_draws``, as the power budgets count them): which of
    their replicas go is the plan's choice, and each such move is forced (``domain_power`` or
    ``site_power``, with the numbers)."""
    fleet = problem.fleet
    nodes = {n.name: n for n in fleet.nodes}
    gpus = {g.name: g for g in fleet.gpu_types}
    now: list[ReplicaPlacement] = []
    for w in problem.workloads:
        for k, c in enumerate(w.current):
            node = nodes.get(c.node)
            if node is None or node.state is not NodeState.READY:
                continue
            gpu = gpus[node.gpu_type]
            cap = gpu.max_power_w if w.is_fractional or not c.power_cap_w else c.power_cap_w
            milli = w.gpu_milli if w.is_fractional else 1000
            now.append(
                ReplicaPlacement(
                    w.name, k, node.site, node.power_domain, node.name, c.gpu_indices, milli, cap
                )
            )
    if not now:
        return {}
    dom_w: Counter[tuple[str, str]] = Counter()
    site_w: Counter[str] = Counter()
    for name, draw in node_draws(fleet, now).items():
        node = nodes[name]
        dom_w[(node.site, node.power_domain)] += draw.it_w
        site_w[node.site] += draw.it_w
    out: dict[str, tuple[str, str]] = {}
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    sites = {s.name: s for s in fleet.sites}
    for node in fleet.nodes:
        d = domains.get((node.site, node.power_domain))
        s = sites.get(node.site)
        if d is not None and dom_w[(node.site, node.power_domain)] > d.usable_power_w:
            drew = dom_w[(node.site, node.power_domain)]
            out[node.name] = (
                "domain_power",
                f"the current placement draws {drew:,} W in {node.site}/{node.power_domain}, "
                f"usable {d.usable_power_w:,} W",
            )
        elif s is not None and site_w[node.site] > s.usable_power_w:
            out[node.name] = (
                "site_power",
                f"the current placement draws {site_w[node.site]:,} W in {node.site}, usable {s.usable_power_w:,} W",
            )
    return out


def _earnings(
    problem: Problem, placements: tuple[ReplicaPlacement, ...], moves: list[Displaced]
) -> tuple[Displaced, ...]:
    """``moves`` with what each unforced one earns (module docstring)."""
    if not any(not m.forced for m in moves):
        return tuple(moves)
    fleet = problem.fleet
    nodes = {n.name: n for n in fleet.nodes}
    gpus = {g.name: g for g in fleet.gpu_types}
    sites = {s.name: s for s in fleet.sites}
    wl = {w.name: w for w in problem.workloads}
    metric = problem.options.energy_metric
    current = Counter((w.name, c.node) for w in problem.workloads for c in w.current)
    seen: Counter[tuple[str, str]] = Counter()
    started: Counter[str] = Counter()  # node -> placed work of replicas not running there today
    draw: dict[tuple[str, str], int] = {}  # (workload, node) -> watts of one of its replicas there
    for p in placements:
        w, node = wl.get(p.workload), nodes.get(p.node)
        if w is None or node is None:
            continue
        gpu = gpus[node.gpu_type]
        draw[(w.name, node.name)] = _draw_w(w.gpus, p.gpu_milli, p.power_cap_w, gpu.max_power_w)
        seen[(w.name, node.name)] += 1
        if seen[(w.name, node.name)] > current[(w.name, node.name)]:
            pct = top_throughput_pct(gpu) if w.is_fractional else throughput_pct(gpu, p.power_cap_w)
            started[node.name] += replica_work(w, pct)
    off = Counter(m.node for m in moves if not m.forced)
    out = []
    for m in moves:
        node = nodes.get(m.node)
        if m.forced or node is None:
            out.append(m)
            continue
        w = wl[m.workload]
        gpu = gpus[node.gpu_type]
        cap = next((c.power_cap_w for c in w.current if c.node == m.node), 0) or gpu.max_power_w
        before = energy_coefficient(sites[node.site], metric) * _draw_w(
            w.gpus, w.gpu_milli or 1000, cap, gpu.max_power_w
        )
        to = nodes.get(m.to_node) if m.rule == "moved" else None
        after = energy_coefficient(sites[to.site], metric) * draw.get((w.name, to.name), 0) if to else 0
        out.append(replace(m, earns_work=started[m.node] // off[m.node], earns_energy=before - after))
    return tuple(out)


def _draw_w(gpus: int, milli: int, cap_w: int, max_w: int) -> int:
    """Watts one replica adds: its GPUs at their cap, a share of an uncapped GPU for a fractional one."""
    return gpus * cap_w if milli >= 1000 else max_w * milli // 1000


def move_curve(problem: Problem, moves: Iterable[Displaced]) -> tuple[MovePoint, ...]:
    """Gain against moves at a few budgets (``CURVE_PCT`` of the running replicas, and every unforced
    move): the best k unforced moves by ``earns_work``, added up; empty without unforced moves."""
    free = sorted((m for m in moves if not m.forced), key=lambda m: (-m.earns_work, -m.earns_energy))
    if not free:
        return ()
    running = sum(len(w.current) for w in problem.workloads if w.running)
    budgets = sorted({max(1, round(pct * running / 100)) for pct in CURVE_PCT} | {len(free)})
    out: list[MovePoint] = []
    for k in budgets:
        if k > len(free):
            break
        best = free[:k]
        out.append(MovePoint(k, sum(m.earns_work for m in best), sum(m.earns_energy for m in best)))
    return tuple(out)


def _shape_broken(w: Workload, nodes: dict[str, Node]) -> tuple[str, str] | None:
    """The spread or site survival (rules 11-12, the verifier's ``current_breaches``) that ``w``'s
    current replicas break where they run (a scale-up raises the survivors needed), or None."""
    for rule, message in current_breaches(w, nodes):
        if rule in ("spread", "site_survival"):
            return rule, f"where they run, {message}: placed anew"
    return None


def _over_caps(w: Workload, nodes: dict[str, Node], current: Counter[str]) -> dict[str, str]:
    """Rule 16 against the current placement: node -> why its current replicas of ``w`` are forced
    off (``current``: node -> current replicas of ``w`` on nodes no static rule forces it off)."""
    if not w.capped:
        return {}
    out: dict[str, str] = {}
    per_domain: Counter[tuple[str, str]] = Counter()
    for name, k in current.items():
        per_domain[(nodes[name].site, nodes[name].power_domain)] += k
    for name, k in sorted(current.items()):
        dom = (nodes[name].site, nodes[name].power_domain)
        if w.max_per_node and k > w.max_per_node:
            out[name] = f"{k} current replicas on node {name}, max_per_node {w.max_per_node}"
        elif w.max_per_power_domain and per_domain[dom] > w.max_per_power_domain:
            out[name] = (
                f"{per_domain[dom]} current replicas in power domain {dom[0]}/{dom[1]}, "
                f"max_per_power_domain {w.max_per_power_domain}"
            )
    return out
