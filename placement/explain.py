"""Why a workload is not placed, rule by rule, with the numbers, answered from data.

Two sources:

* the candidate filter's rejections (``placement.candidates``): which rule ruled out
  which nodes, with requested and available numbers; summarised per rule ("needs 120
  GiB per GPU; largest GPU within 25 ms of eu-west has 80 GiB");
* for a workload whose candidates exist but which the plan left out, the plan's usage
  (``placement.decode.FleetState``): what ran out on its candidates (power headroom,
  free GPUs, host resources, or room for the replicas, spread or site survival it
  needs) and which higher-priority work holds it.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict

from placement.candidates import RULES, Prepared, Rejection, filter_candidates, spread_entity
from placement.decode import FleetState
from placement.domain import Problem, Reason, UnplacedWorkload, Workload
from placement.errors import FieldError, InputError


def _kw(w: float) -> str:
    return f"{w / 1000:.1f} kW"


def _min(x: float) -> str:
    return "unlimited (generator)" if math.isinf(x) else f"{x:g} min"


def _within(w: Workload) -> str:
    if w.max_latency_ms > 0:
        return f" within {w.max_latency_ms:g} ms of {w.user_region}"
    return ""


def filter_reasons(prepared: Prepared, w: int) -> list[Reason]:
    """One reason per rule that ruled out nodes for workload ``w``, plus a workload-level one."""
    wk = prepared.problem.workloads[w]
    by_rule: dict[str, list[Rejection]] = defaultdict(list)
    for r in prepared.rejections_of(w):
        by_rule[r.rule].append(r)
    total = len(prepared.nodes)
    out: list[Reason] = []
    for rule in RULES:
        rs = by_rule.get(rule)
        if rs:
            out.append(Reason(rule, _summary(prepared, wk, rule, rs, total), len(rs)))
    for wr in prepared.workload_rejections:
        if wr.workload == w:
            out.append(Reason(wr.rule, wr.message, 0))
    return out


def _summary(p: Prepared, w: Workload, rule: str, rs: list[Rejection], total: int) -> str:
    nodes = p.nodes
    every = len(rs) == total
    scope = "every node" if every else f"{len(rs)} of {total} nodes"
    if rule == "node_state":
        states = Counter(nodes[r.node].node.state.value for r in rs)
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))
        return f"{scope} not READY ({detail})"
    if rule == "latency":
        lats = {s: lat for (reg, s), lat in p.latency_ms.items() if reg == w.user_region}
        if lats:
            site, lat = min(lats.items(), key=lambda kv: (kv[1], kv[0]))
            nearest = f"nearest: {site} at {lat:.1f} ms"
        else:
            nearest = f"no site reachable from {w.user_region}"
        if every:
            return f"no site within {w.max_latency_ms:g} ms of {w.user_region} ({nearest})"
        far = sorted({nodes[r.node].site.name for r in rs})
        return f"{scope} in sites beyond {w.max_latency_ms:g} ms of {w.user_region}: {', '.join(far)}"
    if rule == "backup":
        best = max(r.available for r in rs)
        where = "best reachable site" if w.max_latency_ms > 0 else "best site"
        return f"needs {_min(w.backup_minutes)} of backup, {where} ruled out has {_min(best)} ({scope})"
    if rule == "gpu_type":
        types = sorted({nodes[r.node].gpu.name for r in rs})
        if w.is_fractional and (not w.allowed_gpu_types or set(types) <= set(w.allowed_gpu_types)):
            return f"fractional replica needs a shareable GPU; {', '.join(types)} are not ({scope})"
        return f"allowed GPU types {', '.join(w.allowed_gpu_types)}; {scope} have {', '.join(types)}"
    if rule == "gpu_memory":
        best = max(r.available for r in rs)
        return (
            f"needs {w.memory_per_gpu_gib:g} GiB per GPU; largest GPU{_within(w)} has {best:g} GiB ({scope})"
        )
    if rule == "gpu_count":
        best = max(r.available for r in rs)
        return f"needs {w.gpus} GPUs on one node; largest node{_within(w)} has {best:g} ({scope})"
    if rule == "host_resources":
        parts = []
        for unit, what in (("mCPU", "CPU"), ("MiB", "host memory")):
            sel = [r for r in rs if r.unit == unit]
            if sel:
                parts.append(
                    f"needs {sel[0].requested:g} {unit} of {what}, most on a node {max(r.available for r in sel):g}"
                )
        return "; ".join(parts) + f" ({scope})"
    if rule == "power_cap":
        r0 = rs[0]
        return (
            f"needs a power cap of at least {r0.requested:.0f} W; {r0.message.split(', ', 1)[-1]} ({scope})"
        )
    if rule in ("domain_power", "site_power"):
        need = min(r.requested for r in rs)
        top = max(rs, key=lambda r: r.available)
        info = nodes[top.node]
        where = (
            f"power domain {info.site.name}/{info.domain.name}"
            if rule == "domain_power"
            else f"site {info.site.name}"
        )
        return (
            f"one replica with its node on needs {_kw(need)}; the largest usable cap is {_kw(top.available)} "
            f"in {where} ({scope})"
        )
    return f"{rs[0].message} ({scope})"


def _holders(st: FleetState) -> dict[int, list[int]]:
    """The workloads of every placement, by node."""
    got: dict[int, list[int]] = {}
    for w, n, _idx, _m, _c in st.placements:
        got.setdefault(n, []).append(w)
    return got


def _higher_priority(p: Prepared, st: FleetState, w: int, by_node: dict[int, list[int]] | None = None) -> str:
    wl = p.problem.workloads
    by_node = by_node if by_node is not None else _holders(st)
    holders: Counter[str] = Counter()
    for n in {c.node for c in p.by_workload.get(w, ())}:
        for w2 in by_node.get(n, ()):
            if wl[w2].priority >= wl[w].priority and w2 != w:
                holders[wl[w2].name] += 1
    if not holders:
        return ""
    names = ", ".join(f"{k} ({v})" for k, v in sorted(holders.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
    return f"; work of equal or higher priority holds it: {names}"


def capacity_reasons(
    p: Prepared, st: FleetState, w: int, by_node: dict[int, list[int]] | None = None
) -> list[Reason]:
    """What ran out for a workload whose candidates exist but which the plan left out
    (``by_node``: the plan's workloads by node, ``_holders``, where the caller has them)."""
    wk = p.problem.workloads[w]
    cands = p.by_workload[w]
    held = _higher_priority(p, st, w, by_node)
    if not any(st.fit(c) is not None for c in cands):
        out: list[Reason] = []
        gpu_short = [c for c in cands if _gpu_short(p, st, c)]
        short = {c.node for c in gpu_short}
        host_short = [c for c in cands if c.node not in short and not st._host_ok(w, c.node)]
        short |= {c.node for c in host_short}
        power_short = []
        for c in cands:
            if c.node in short:
                continue
            info = p.nodes[c.node]
            on = 0 if st.replicas[c.node] else info.on_power_w
            if c.per_gpu:
                need_w = on + info.shared_gpu_delta_w
            else:
                lv = info.gpu.power_levels[c.levels[0]].power_cap_w
                need_w = on + wk.gpus * (lv - info.gpu.idle_power_w)
            if need_w > st.headroom_w(c.node):
                power_short.append((need_w - st.headroom_w(c.node), need_w, c))
            else:
                gpu_short.append(c)  # no shared GPU with room for its memory or milli
        if power_short:
            _deficit, need_w, c = min(power_short, key=lambda t: (t[0], t[2].node))
            bi = p.nodes[c.node]
            dom_room = p.domains[bi.domain_key].usable_power_w - st.domain_w[bi.domain_key]
            site_room = bi.site.usable_power_w - st.site_w[bi.site.name]
            where = (
                f"power domain {bi.site.name}/{bi.domain.name}"
                if dom_room <= site_room
                else f"site {bi.site.name}"
            )
            out.append(
                Reason(
                    "power",
                    f"every candidate power domain lacks headroom: needs {_kw(need_w)}, most headroom "
                    f"{_kw(max(0, min(dom_room, site_room)))} in {where}{held}",
                    len(power_short),
                )
            )
        if gpu_short:
            best_free = max(gpu_short, key=lambda c: st.node_free[c.node])
            need = f"{wk.gpus} free GPUs" if wk.gpus else f"{wk.gpu_milli} milli-GPU on a shareable GPU"
            out.append(
                Reason(
                    "gpu_count",
                    f"no candidate node has {need} (most free: {st.node_free[best_free.node]} GPUs on "
                    f"{p.nodes[best_free.node].node.name}){held}",
                    len(gpu_short),
                )
            )
        if host_short:
            out.append(
                Reason(
                    "host_resources",
                    f"{len(host_short)} candidate nodes lack CPU or host memory{held}",
                    len(host_short),
                )
            )
        return out
    # some room: simulate how many replicas fit, and where
    added = 0
    per_site: Counter[str] = Counter()
    per_ent: Counter[str] = Counter()
    alive = list(cands)
    while added < wk.max_replicas and alive:
        alive.sort(key=lambda c: (per_site[p.nodes[c.node].site.name], c.node))
        chosen = None
        for c in alive:
            chosen = st.fit(c)
            if chosen is not None:
                break
        if chosen is None:
            break
        st.add(w, chosen)
        added += 1
        info = p.nodes[chosen.node]
        per_site[info.site.name] += 1
        if wk.spread is not None:
            per_ent[spread_entity(info, wk.spread.level)] += 1
    st.pop(added)
    if added < wk.min_replicas:
        return [
            Reason(
                "replicas",
                f"room for only {added} of the {wk.min_replicas} replicas it needs on its {len(cands)} candidate "
                f"nodes (GPUs, power or host resources are taken){held}",
                0,
            )
        ]
    if wk.spread is not None and len(per_ent) < wk.spread.min_distinct:
        lvl = wk.spread.level.value.lower().replace("_", " ")
        return [
            Reason(
                "spread",
                f"needs {wk.spread.min_distinct} distinct {lvl}s, only {len(per_ent)} have room left{held}",
                0,
            )
        ]
    survivors = wk.survivors_required
    if survivors > 0 and added - max(per_site.values()) < survivors:
        return [
            Reason(
                "site_survival",
                f"needs {survivors} replicas outside any one site, room outside the fullest site for "
                f"{added - max(per_site.values())}{held}",
                0,
            )
        ]
    return [
        Reason(
            "time_limit",
            f"room remains beside the placed work for {added} replicas (needs {wk.min_replicas}): the "
            "search stopped before placing it; a longer time limit may place it",
            0,
        )
    ]


def _gpu_short(p: Prepared, st: FleetState, c: object) -> bool:
    from placement.candidates import Candidate
    from placement.domain import memory_milli_gib

    assert isinstance(c, Candidate)
    wk = p.problem.workloads[c.workload]
    free = st.node_free[c.node]
    if c.per_gpu == 0:
        return free < wk.gpus
    if free > 0:
        return False
    cap = memory_milli_gib(p.nodes[c.node].gpu.memory_gib)
    return not any(
        sh.milli + wk.gpu_milli <= 1000 and sh.mem_milli_gib + memory_milli_gib(wk.memory_gib) <= cap
        for sh in st.shared[c.node].values()
    )


def unplaced_reasons(
    prepared: Prepared, plan_state: FleetState, deadline: float | None = None
) -> list[UnplacedWorkload]:
    """Every workload without a replica in ``plan_state``, with its reasons (problem order).

    Reasons are worked out most valuable workload first (priority * work) until
    ``deadline`` (monotonic seconds); a workload reached after it gets one ``time_limit``
    reason pointing at ``explain`` (the filter's workload-level reason when it has one).
    """
    placed = {w for w, *_ in plan_state.placements}
    wl = prepared.problem.workloads
    todo = [w for w in range(len(wl)) if w not in placed]
    got: dict[int, list[Reason]] = {}
    wrej = {r.workload: r for r in prepared.workload_rejections}
    by_node = _holders(plan_state)
    for w in sorted(todo, key=lambda w: (-wl[w].priority * wl[w].work_milli, w)):
        if deadline is not None and time.monotonic() > deadline:
            break
        if wl[w].pinned:
            got[w] = [
                Reason("pinned", "pinned with no current replica: nothing to keep, none may be added", 0)
            ]
        elif w in prepared.by_workload:
            got[w] = capacity_reasons(prepared, plan_state, w, by_node)
        else:
            got[w] = filter_reasons(prepared, w)
    out = []
    for w in todo:
        reasons = got.get(w)
        if reasons is None:
            r = wrej.get(w)
            reasons = (
                [Reason(r.rule, r.message, 0)]
                if r is not None
                else [
                    Reason(
                        "time_limit",
                        "not analysed within the time limit; `fleetplace explain` gives the reasons",
                        0,
                    )
                ]
            )
        out.append(UnplacedWorkload(wl[w].name, tuple(reasons)))
    return out


def explain(problem: Problem, workload: str | Workload, site: str | None = None) -> list[Reason]:
    """Why ``workload`` cannot run (on ``site``, if given) on an empty fleet, rule by rule.

    Every rule that rules out nodes gives one reason with the numbers; an empty list
    means the rules allow it (if a plan left it out, the plan's unplaced reasons say
    what ran out).
    """
    name = workload if isinstance(workload, str) else workload.name
    idx = next((i for i, w in enumerate(problem.workloads) if w.name == name), None)
    if idx is None:
        raise InputError([FieldError("workload", f"unknown workload {name!r}")])
    if site is not None and site not in {s.name for s in problem.fleet.sites}:
        raise InputError([FieldError("site", f"unknown site {site!r}")])
    prepared = filter_candidates(problem, [idx], site)
    return filter_reasons(prepared, idx)
