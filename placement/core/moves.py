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

Forced moves by power (a rack whose capacity fell) are named ``moved`` with the domain's
numbers left to the budgets; the verifier checks the budgets and preemption itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from placement.core.domain import (
    Displaced,
    Node,
    NodeState,
    Problem,
    ReplicaPlacement,
    Workload,
    memory_milli_gib,
)
from placement.core.energy import allowed_levels
from placement.core.network import latency_table


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
    for w in problem.workloads:
        if not w.current or w.pinned:
            continue
        gained = sorted(
            n for n in by_workload.get(w.name, ()) if planned[(w.name, n)] > current_of[w.name][n]
        )
        left: Counter[str] = Counter()  # per node: current replicas kept so far
        blocked = {c.node: static(w, c.node, "") for c in w.current}
        over = _over_caps(w, nodes, Counter(c.node for c in w.current if blocked[c.node] is None))
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
    return tuple(out)


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
