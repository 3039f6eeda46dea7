"""Pinned workloads: their current replicas stay exactly where they run, at their recorded caps.

A pinned workload (``Workload.pinned``) gets no variables and no candidates: its
current replicas are placed first, as they are (same node, same GPU indices, the cap
``domain.current_cap_w`` reads: the recorded one, the board maximum where none is), and the rest of the plan is built around them; they
consume GPUs, host resources and power as constants and count in the objective.

``pinned_errors`` checks them against the hard rules before anything else; a pinned
replica that breaks one is an input error naming ``workloads[i].current[j]`` and the
rule (node_state, latency, backup, gpu_type, gpu_memory, gpu_count, gpu_share,
host_resources, domain_power, site_power, blast_radius). Everything here is one pass over the pinned
replicas, so thousands of them cost milliseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from placement.core.domain import Node, NodeState, Problem, Workload, current_cap_w, memory_milli_gib
from placement.core.errors import FieldError


def pinned_errors(problem: Problem, latency_ms: Mapping[tuple[str, str], float]) -> list[FieldError]:
    """Every hard rule a pinned replica breaks (with the replicas before it in problem order)."""
    fleet = problem.fleet
    nodes = {n.name: n for n in fleet.nodes}
    gpus = {g.name: g for g in fleet.gpu_types}
    sites = {s.name: s for s in fleet.sites}
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    out: list[FieldError] = []
    whole: dict[tuple[str, int], str] = {}
    shared_milli: dict[tuple[str, int], int] = defaultdict(int)
    shared_mem: dict[tuple[str, int], int] = defaultdict(int)
    cpu: dict[str, int] = defaultdict(int)
    hmem: dict[str, int] = defaultdict(int)
    gpu_w: dict[str, int] = defaultdict(int)  # per node: GPU watts above idle
    node_path: dict[str, str] = {}
    for wi, w in enumerate(problem.workloads):
        if not w.pinned:
            continue
        if w.capped:
            out.extend(_blast_errors(wi, w, nodes))
        for k, cr in enumerate(w.current):
            path = f"workloads[{wi}].current[{k}]"
            n = nodes.get(cr.node)
            if n is None:
                continue  # the validator reports unknown nodes
            gpu = gpus[n.gpu_type]
            site = sites[n.site]

            def bad(rule: str, msg: str, path: str = path, node: str = n.name) -> None:
                out.append(FieldError(path, f"pinned replica on {node} breaks {rule}: {msg}"))

            if n.state is not NodeState.READY:
                bad("node_state", f"node is {n.state.value}")
                continue
            if w.max_latency_ms > 0:
                lat = latency_ms.get((w.user_region, site.name), math.inf)
                if not lat <= w.max_latency_ms + 1e-9:
                    bad(
                        "latency",
                        f"site {site.name} is {lat:.1f} ms from {w.user_region}, limit {w.max_latency_ms:g} ms",
                    )
            if site.backup_minutes < w.backup_minutes:
                bad(
                    "backup",
                    f"site {site.name} has {site.backup_minutes:g} min of backup, needs {w.backup_minutes:g}",
                )
            if w.allowed_gpu_types and gpu.name not in w.allowed_gpu_types:
                bad("gpu_type", f"GPU type {gpu.name} not in allowed {', '.join(w.allowed_gpu_types)}")
            if w.is_fractional and not gpu.shareable:
                bad("gpu_type", f"GPU type {gpu.name} is not shareable (fractional replica)")
            if memory_milli_gib(w.memory_per_gpu_gib) > memory_milli_gib(gpu.memory_gib):
                bad(
                    "gpu_memory",
                    f"needs {w.memory_per_gpu_gib:g} GiB per GPU, {gpu.name} has {gpu.memory_gib:g} GiB",
                )
            node_path.setdefault(n.name, path)
            for j in cr.gpu_indices:
                key = (n.name, j)
                if w.is_fractional:
                    if key in whole:
                        bad("gpu_share", f"GPU {j} is held whole by {whole[key]} and shared")
                    if key not in shared_milli:
                        gpu_w[n.name] += gpu.max_power_w - gpu.idle_power_w  # a shared GPU runs uncapped
                    shared_milli[key] += w.gpu_milli
                    shared_mem[key] += memory_milli_gib(w.memory_gib)
                    if shared_milli[key] > 1000:
                        bad("gpu_share", f"GPU {j} shared by {shared_milli[key]} milli-GPU, more than 1000")
                    if shared_mem[key] > memory_milli_gib(gpu.memory_gib):
                        bad(
                            "gpu_memory",
                            f"GPU {j} holds {shared_mem[key] / 1000:g} GiB of shared replicas, "
                            f"has {gpu.memory_gib:g} GiB",
                        )
                else:
                    if key in whole or key in shared_milli:
                        bad("gpu_count", f"GPU {j} is already used by {whole.get(key, 'a shared replica')}")
                    whole[key] = w.name
                    gpu_w[n.name] += current_cap_w(w, cr, gpu) - gpu.idle_power_w
            cpu[n.name] += w.cpu_milli
            hmem[n.name] += w.host_memory_mib
            if n.cpu_milli > 0 and cpu[n.name] > n.cpu_milli:
                bad("host_resources", f"pinned replicas request {cpu[n.name]} mCPU, node has {n.cpu_milli}")
            if n.host_memory_mib > 0 and hmem[n.name] > n.host_memory_mib:
                bad(
                    "host_resources",
                    f"pinned replicas request {hmem[n.name]} MiB, node has {n.host_memory_mib}",
                )
    # power: the pinned replicas alone, every node they hold on, within every domain and site
    dom_w: dict[tuple[str, str], int] = defaultdict(int)
    site_w: dict[str, int] = defaultdict(int)
    for name, extra in gpu_w.items():
        n = nodes[name]
        draw = n.host_power_w + n.gpu_count * gpus[n.gpu_type].idle_power_w + extra
        dom_w[(n.site, n.power_domain)] += draw
        site_w[n.site] += draw
    for name in gpu_w:
        n = nodes[name]
        d = domains[(n.site, n.power_domain)]
        if dom_w[(n.site, n.power_domain)] > d.usable_power_w:
            out.append(
                FieldError(
                    node_path[name],
                    f"pinned replica on {name} breaks domain_power: pinned replicas in power domain "
                    f"{n.site}/{d.name} draw {dom_w[(n.site, n.power_domain)]} W, usable {d.usable_power_w} W",
                )
            )
            dom_w[(n.site, n.power_domain)] = -(1 << 60)  # report each domain once
        s = sites[n.site]
        if site_w[n.site] > s.usable_power_w:
            out.append(
                FieldError(
                    node_path[name],
                    f"pinned replica on {name} breaks site_power: pinned replicas in site {s.name} draw "
                    f"{site_w[n.site]} W, usable {s.usable_power_w} W",
                )
            )
            site_w[n.site] = -(1 << 60)
    return out


def _blast_errors(wi: int, w: Workload, nodes: Mapping[str, Node]) -> list[FieldError]:
    """Rule 16 for a pinned workload: its current replicas within its caps on every node and power
    domain (it may not move them), each breach at the first replica over the cap."""
    out: list[FieldError] = []
    on_node: dict[str, int] = defaultdict(int)
    in_domain: dict[tuple[str, str], int] = defaultdict(int)
    for k, cr in enumerate(w.current):
        n = nodes.get(cr.node)
        if n is None:
            continue
        on_node[n.name] += 1
        in_domain[(n.site, n.power_domain)] += 1
        path = f"workloads[{wi}].current[{k}]"
        if w.max_per_node and on_node[n.name] == w.max_per_node + 1:
            out.append(
                FieldError(
                    path,
                    f"pinned replica on {n.name} breaks blast_radius: more than max_per_node "
                    f"{w.max_per_node} replicas of {w.name} on the node",
                )
            )
        dom = (n.site, n.power_domain)
        if w.max_per_power_domain and in_domain[dom] == w.max_per_power_domain + 1:
            out.append(
                FieldError(
                    path,
                    f"pinned replica on {n.name} breaks blast_radius: more than max_per_power_domain "
                    f"{w.max_per_power_domain} replicas of {w.name} in power domain {dom[0]}/{dom[1]}",
                )
            )
    return out
