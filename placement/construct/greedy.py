"""The fast greedy: first-fit decreasing over groups of alike nodes, all or nothing per workload.

Workloads go in decreasing priority (value per GPU thousandth), bigger replicas first. Each replica goes to the first
node, in cell and group order, where ``FleetState`` says it fits (best power level
first); a workload that cannot reach its minimum, its spread or its site survival is
taken back whole. Nothing here loops over (workload, node) pairs: cells and groups with
no free GPU or no power headroom are skipped by counters that ``FleetState`` keeps, so a
workload that does not fit costs about one check per cell.

Spread and site survival: with site survival or site-level spread, replicas go round
robin over the sites (the site with the fewest replicas of the workload first); with
power-domain or node spread, the first ``min_distinct`` replicas each take a new entity.

Pinned workloads (``Workload.pinned``) are placed first, exactly as they run today.
The greedy stops at ``deadline`` (monotonic seconds) or when ``stop`` is set: what it
placed so far is a valid partial plan, since every workload is all or nothing.
"""

from __future__ import annotations

import functools
import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from placement.core.candidates import CellOption, GroupFit, Prepared, spread_entity
from placement.core.domain import SpreadLevel, Workload, current_cap_w, memory_milli_gib
from placement.core.energy import replica_work
from placement.core.state import FULL_MILLI, Fit, FleetState, level_at, rules_hold

log = logging.getLogger(__name__)

_CHECK_EVERY = 32  # workloads between deadline checks


def greedy(
    prepared: Prepared,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    passes: int = 0,
    deterministic: bool = False,
) -> FleetState:
    """First-fit decreasing by value density; all or nothing per workload.

    The first order (priority, then replica size) always runs (up to ``deadline``); the
    other ``ORDERS`` run after it while the time for one more pass (the first pass's,
    with a margin) remains, and the pass with the most placed work is kept (the first
    on ties). Without a deadline every order runs; ``passes`` > 0 runs at most that many.
    ``deterministic``: no order is skipped for want of time (``passes`` orders run;
    ``deadline`` only cuts a run past the safety net).
    """
    wl = prepared.problem.workloads
    best: FleetState | None = None
    best_work = -1
    pass_s = 0.0
    for k, key in enumerate(ORDERS):
        t0 = time.monotonic()
        if k > 0 and (
            (passes and k >= passes)
            or (not deterministic and deadline is not None and t0 + 1.2 * pass_s > deadline)
            or (stop is not None and stop.is_set())
        ):
            break
        order = sorted(prepared.options, key=functools.partial(_keyed, key, wl))
        st = _one_pass(prepared, order, deadline, stop)
        work = placed_work(st)
        if work > best_work:
            best, best_work = st, work
        if k == 0:
            pass_s = time.monotonic() - t0
    assert best is not None
    raise_levels(best)
    return best


def _keyed(
    key: Callable[[Workload, int], tuple[object, ...]], wl: Sequence[Workload], w: int
) -> tuple[object, ...]:
    return key(wl[w], w)


def _one_pass(
    prepared: Prepared, order: list[int], deadline: float | None, stop: threading.Event | None
) -> FleetState:
    st = FleetState(prepared)
    place_pinned(st)
    dead = _Dead()
    for i, w in enumerate(order):
        if i % _CHECK_EVERY == 0 and (
            (deadline is not None and time.monotonic() > deadline) or (stop is not None and stop.is_set())
        ):
            log.info("greedy stopped after %d of %d workloads", i, len(order))
            break
        place_workload(st, w, dead)
    return st


def placed_work(st: FleetState) -> int:
    """Tier 1 of the plan in ``st`` (the same sum as ``placement.core.objective.evaluate``)."""
    p = st.p
    wl = p.problem.workloads
    total = 0
    for w, n, _idx, milli, cap in st.placements:
        levels = p.nodes[n].gpu.power_levels
        if wl[w].is_fractional or milli != FULL_MILLI:
            pct = levels[-1].relative_throughput_pct if levels else 0
        else:
            pct = levels[level_at(p.nodes[n].gpu, cap)].relative_throughput_pct
        total += replica_work(wl[w], pct)
    return total


def order_key(wk: Workload, w: int) -> tuple[object, ...]:
    """Value density first: priority is the work per GPU thousandth (at a given throughput), then
    bigger replicas (on profile L it places more than ordering by priority times work)."""
    return (-wk.priority, -wk.work_milli, w)


def _order_total(wk: Workload, w: int) -> tuple[object, ...]:
    return (-wk.priority, -wk.work_milli * wk.max_replicas, w)


def _order_min(wk: Workload, w: int) -> tuple[object, ...]:
    return (-wk.priority, -wk.min_replicas * wk.work_milli, -wk.work_milli, w)


def _order_constrained(wk: Workload, w: int) -> tuple[object, ...]:
    return (-wk.priority, wk.spread is None and wk.survivors_required == 0, -wk.work_milli, w)


ORDERS: tuple[Callable[[Workload, int], tuple[object, ...]], ...] = (
    order_key,
    _order_total,
    _order_min,
    _order_constrained,
)


def place_pinned(st: FleetState) -> None:
    """Pinned workloads' current replicas on their current GPUs at their recorded caps (checked by
    placement.core.pinned)."""
    p = st.p
    for w in p.pinned:
        wk = p.problem.workloads[w]
        for cr in wk.current:
            n = p.node_index[cr.node]
            st.add_at(w, n, tuple(cr.gpu_indices), current_cap_w(wk, cr, p.nodes[n].gpu))


Shape = tuple[int, int, int, int, int]  # (kind, size, need, cpu, host memory): larger is harder


class _Dead:
    """Groups and cells where a replica of some shape did not fit, valid until usage shrinks.

    Usage only grows while the greedy runs, except when a failed workload is taken back
    (``FleetState.releases`` counts those per site). A replica at least as hard in every respect
    (same kind; more GPUs or milli, a higher least draw, more memory and host resources)
    does not fit where an easier one did not.
    """

    def __init__(self) -> None:
        self.marks: dict[tuple[str, int, int], tuple[int, Shape]] = {}

    def is_dead(self, where: str, i: int, shape: Shape, version: int) -> bool:
        got = self.marks.get((where, i, shape[0]))
        if got is None or got[0] != version:
            return False
        old = got[1]
        return shape[1] >= old[1] and shape[2] >= old[2] and shape[3] >= old[3] and shape[4] >= old[4]

    def mark(self, where: str, i: int, shape: Shape, version: int) -> None:
        key = (where, i, shape[0])
        got = self.marks.get(key)
        if got is not None and got[0] == version:
            old = got[1]
            if all(a <= b for a, b in zip(old[1:], shape[1:], strict=True)):
                return  # the old mark already covers this shape
        self.marks[key] = (version, shape)


def _shape(p: Prepared, w: int, opt: CellOption) -> Shape:
    wk = p.problem.workloads[w]
    if wk.is_fractional:
        return (0, wk.gpu_milli, memory_milli_gib(wk.memory_gib), wk.cpu_milli, wk.host_memory_mib)
    gpu = p.groups[opt.fits[0].group].rep.gpu
    least = min(gpu.power_levels[f.levels[0]].power_cap_w for f in opt.fits)
    return (1, wk.gpus, wk.gpus * (least - gpu.idle_power_w), wk.cpu_milli, wk.host_memory_mib)


def _group_room(st: FleetState, fit: GroupFit, gpus: int, fractional: bool) -> bool:
    g = fit.group
    if fractional:
        return st.group_free[g] > 0 or st.group_shared[g] > 0
    return st.group_free[g] >= gpus


class Guide(Protocol):
    """Where a workload may go, from outside (``placement.construct.guided``): options, levels, and bookkeeping."""

    def order(self, w: int, opts: list[CellOption]) -> list[CellOption]: ...

    def levels(self, w: int, group: int, levels: tuple[int, ...]) -> tuple[int, ...] | None: ...

    def take(self, w: int, group: int, level: int) -> None: ...

    def release(self, w: int) -> None: ...


def place_workload(
    st: FleetState,
    w: int,
    dead: _Dead | None = None,
    guide: Guide | None = None,
    existing: Sequence[int] = (),
) -> bool:
    """Place as many replicas of ``w`` as fit (up to max_replicas); take them back if the workload fails.

    With a ``guide``, only the cells, groups and levels it allows are tried, and the guide
    is told of every replica placed (and of a take-back). ``existing``: the nodes of the
    replicas the workload already holds in ``st`` (placed, every rule met); more are added
    up to max_replicas and none is taken back (adding replicas keeps its minimum, spread
    and survival met).
    """
    p = st.p
    wk = p.problem.workloads[w]
    frac = wk.is_fractional
    gpus = wk.gpus
    # a capped workload's misses may be its own blast radius (rule 16), not the group's room: its
    # marks stay its own, or workloads of its shape would skip groups that have room for them
    dead = dead if dead is not None and not wk.capped else _Dead()
    prefer: dict[int, list[tuple[int, ...]]] = {}
    for cr in wk.current:
        n = p.node_index.get(cr.node)
        if n is not None:
            prefer.setdefault(n, []).append(tuple(cr.gpu_indices))
    opts = list(p.options[w])
    if prefer:
        pref_groups = {st.group_of[n] for n in prefer}
        opts.sort(key=lambda o: not any(f.group in pref_groups for f in o.fits))
    if guide is not None:
        opts = guide.order(w, opts)
    shapes = {o.cell: _shape(p, w, o) for o in opts}
    level = wk.spread.level if wk.spread is not None else None
    survive = wk.survivors_required > 0
    by_site = survive or level is SpreadLevel.SITE
    need_new = 0
    if wk.spread is not None and level in (SpreadLevel.POWER_DOMAIN, SpreadLevel.NODE):
        need_new = wk.spread.min_distinct
    per_site: Counter[str] = Counter()
    ents: set[str] = set()

    def entity(n: int) -> str:
        assert level is not None
        return spread_entity(p.nodes[n], level)

    def try_group(opt: CellOption, fit: GroupFit, avoid: bool) -> Fit | None:
        if not _group_room(st, fit, gpus, frac):
            return None
        levels = fit.levels
        if guide is not None:
            allowed = guide.levels(w, fit.group, fit.levels)
            if allowed is None:
                return None
            levels = allowed
        shape = shapes[opt.cell]
        group = p.groups[fit.group]
        version = st.releases[group.rep.site.name]
        if dead.is_dead("g", fit.group, shape, version):
            return None
        # the least one more replica can add to the draw: below the headroom, nothing fits
        rep = group.rep
        if frac:
            least = 0 if st.group_shared[fit.group] else rep.shared_gpu_delta_w
        else:
            least = gpus * (rep.gpu.power_levels[levels[0]].power_cap_w - rep.gpu.idle_power_w)
        if least > 0 and (st.site_headroom_w(rep.site.name) < least or st.headroom_w(group.nodes[0]) < least):
            return None
        if avoid and level is SpreadLevel.POWER_DOMAIN and entity(group.nodes[0]) in ents:
            return None
        nodes = group.nodes
        if prefer:
            nodes = tuple(sorted(nodes, key=lambda n: n not in prefer))
        for n in nodes:
            if avoid and level is SpreadLevel.NODE and entity(n) in ents:
                continue
            pref = prefer[n][0] if prefer.get(n) else ()
            got = st.fit_at(w, n, levels, opt.per_gpu, pref)
            if got is not None:
                if pref and got.gpu_indices == pref:
                    prefer[n].pop(0)
                return got
        if not avoid and levels is fit.levels:
            dead.mark("g", fit.group, shape, version)
        return None

    def try_cell(opt: CellOption, avoid: bool) -> Fit | None:
        """The first group of the cell that takes one more replica; marks the cell dead when none does."""
        if frac:
            if st.cell_free[opt.cell] == 0 and st.cell_shared[opt.cell] == 0:
                return None
        elif st.cell_free[opt.cell] < gpus:
            return None
        shape = shapes[opt.cell]
        version = st.releases[p.cells[opt.cell][0]]
        if dead.is_dead("c", opt.cell, shape, version):
            return None
        for fit in opt.fits:
            got = try_group(opt, fit, avoid)
            if got is not None:
                return got
        if not avoid and guide is None:
            dead.mark("c", opt.cell, shape, version)
        return None

    site_lists: dict[str, list[CellOption]] = {}
    for o in opts:
        site_lists.setdefault(p.cells[o.cell][0], []).append(o)
    site_order = {s: i for i, s in enumerate(site_lists)}
    live = dict.fromkeys(site_lists, 0)
    pos = 0
    placed = len(existing)
    held = list(existing)  # the nodes of the workload's replicas
    for n in existing:
        per_site[p.nodes[n].site.name] += 1
        if level is not None:
            ents.add(entity(n))
    while placed < wk.max_replicas:
        avoid = len(ents) < need_new
        chosen: Fit | None = None
        if by_site:
            for s in sorted(live, key=lambda s: (per_site[s], site_order[s])):
                for o in site_lists[s]:
                    chosen = try_cell(o, avoid)
                    if chosen is not None:
                        break
                if chosen is not None:
                    break
                if not avoid:
                    del live[s]  # usage only grows: a site that failed will not fit later either
        else:
            i = pos
            while i < len(opts) and chosen is None:
                chosen = try_cell(opts[i], avoid)
                if chosen is None:
                    i += 1
            if not avoid:
                pos = i
        if chosen is None:  # (while avoiding used entities: no new entity left, the spread fails)
            break
        st.add(w, chosen)
        if guide is not None:
            guide.take(w, st.group_of[chosen.node], chosen.level)
        placed += 1
        held.append(chosen.node)
        per_site[p.nodes[chosen.node].site.name] += 1
        if level is not None:
            ents.add(entity(chosen.node))
    ok = placed > 0 and st.workload_short(w, held) is None
    if not ok:
        st.pop(placed - len(existing))
        if guide is not None:
            guide.release(w)
    return ok


def raise_levels(st: FleetState) -> int:
    """Spend the power a finished plan leaves on higher power levels for its whole-GPU replicas.

    One level up at a time, the most placed work per added watt first, wherever the power
    domain and the site still have the watts; every step only adds placed work (tier 1), so
    the plan stays valid and gets no worse on it. A plan built level by level (a replica takes
    the best level that fits when it is placed) leaves watts behind wherever later replicas
    failed; the LP-guided plan also caps replicas at the LP's levels. Returns the steps taken.
    """
    p = st.p
    wl = p.problem.workloads
    heap: list[tuple[float, int, int, int]] = []

    def push(i: int) -> None:
        w, n, _idx, milli, cap = st.placements[i]
        wk = wl[w]
        if milli != FULL_MILLI or wk.is_fractional:
            return
        levels = p.nodes[n].gpu.power_levels
        cur = level_at(p.nodes[n].gpu, cap)
        # the allowed levels are those from the workload's floor up: the next one is allowed too
        if cur + 1 >= len(levels):
            return
        gain = levels[cur + 1].relative_throughput_pct - levels[cur].relative_throughput_pct
        if gain <= 0:
            return
        dw = wk.gpus * (levels[cur + 1].power_cap_w - cap)
        heapq.heappush(heap, (-wk.priority * wk.work_milli * gain / dw, i, cur + 1, dw))

    for i in range(len(st.placements)):
        push(i)
    steps = 0
    while heap:
        _, i, level, _dw = heapq.heappop(heap)
        if st.level_fits(i, level):  # headroom only shrinks: a step that fails is dropped
            st.set_level(i, level)
            steps += 1
            push(i)
    return steps


def relocate(st: FleetState, deadline: float | None = None) -> int:
    """Move whole-GPU replicas that run below their top level to nodes where they run higher.

    Where a rack's watts ran out, a replica took a low level (or a higher tier's replica the
    lowest); a rack elsewhere may have free GPUs and watts to spare. The most work lost
    first; a move must keep the workload's spread and site survival and go to a node its
    filter allows (its own groups); the watts it leaves go to others afterwards
    (``raise_levels``). Returns the replicas moved.
    """
    p = st.p
    wl = p.problem.workloads
    todo: list[tuple[int, int, int, int, tuple[int, ...]]] = []  # -lost, throughput, w, n, GPUs
    for w, n, idx, milli, cap in st.placements:
        wk = wl[w]
        if milli != FULL_MILLI or wk.is_fractional or wk.pinned:
            continue
        levels = p.nodes[n].gpu.power_levels
        pct = levels[level_at(p.nodes[n].gpu, cap)].relative_throughput_pct
        lost = wk.priority * wk.work_milli * (levels[-1].relative_throughput_pct - pct)
        if lost > 0:
            todo.append((-lost, pct, w, n, idx))
    todo.sort()
    pos = positions(st)
    nodes_of: dict[int, list[int]] = {}
    for w, n, *_ in st.placements:
        nodes_of.setdefault(w, []).append(n)
    moved = 0
    roomy = _roomy_groups(st)
    for k, (_lost, pct, w, n, idx) in enumerate(todo):
        if deadline is not None and k % _CHECK_EVERY == 0 and time.monotonic() > deadline:
            break
        wk = wl[w]
        target: Fit | None = None
        for o in p.options[w]:
            for f in o.fits:
                g = f.group
                if g not in roomy or st.group_free[g] < wk.gpus:
                    continue
                rep = p.groups[g].rep
                better = tuple(
                    lv for lv in f.levels if rep.gpu.power_levels[lv].relative_throughput_pct > pct
                )
                if not better:
                    continue
                least = wk.gpus * (rep.gpu.power_levels[better[0]].power_cap_w - rep.gpu.idle_power_w)
                if st.headroom_w(p.groups[g].nodes[0]) < least:
                    continue
                for m in p.groups[g].nodes:
                    if m == n or st.node_free[m] < wk.gpus:
                        continue
                    target = moved_fit(st, w, n, m, better, nodes_of[w])
                    if target is not None:
                        nodes_of[w][nodes_of[w].index(n)] = m
                        break
                if target is not None:
                    break
            if target is not None:
                break
        if target is None:
            continue
        take(st, pos, (w, n, idx))
        put(st, pos, w, target)
        moved += 1
        roomy = _roomy_groups(st)
    return moved


Key = tuple[int, int, tuple[int, ...]]  # one placement: workload, node, GPUs
Placed = tuple[int, int, tuple[int, ...], int, int]  # workload, node, GPUs, thousandths, cap


def positions(st: FleetState) -> dict[Key, int]:
    """Where each placement of ``st`` is in ``st.placements``, kept by ``take`` and ``put``."""
    return {(w, n, idx): i for i, (w, n, idx, _m, _c) in enumerate(st.placements)}


def take(st: FleetState, pos: dict[Key, int], key: Key) -> Placed:
    """Remove placement ``key`` from ``st`` and return it, ``pos`` kept right
    (``FleetState.remove`` moves the last placement into the freed slot)."""
    i = pos.pop(key)
    row = st.placements[i]
    last = st.placements[-1]
    st.remove(i)
    if i < len(st.placements):
        pos[(last[0], last[1], last[2])] = i
    return row


def put(st: FleetState, pos: dict[Key, int], w: int, fit: Fit) -> Key:
    """Add a replica of ``w`` at ``fit`` to ``st``, ``pos`` kept right; returns its key."""
    st.add(w, fit)
    key = (w, fit.node, fit.gpu_indices)
    pos[key] = len(st.placements) - 1
    return key


def moved_fit(
    st: FleetState, w: int, n: int, m: int, levels: tuple[int, ...], nodes: list[int]
) -> Fit | None:
    """Where one replica of whole-GPU workload ``w`` fits on node ``m`` at one of ``levels`` (the
    best that fits) in place of one on node ``n``, with its spread and site survival kept (its
    replicas on ``nodes``), or None."""
    got = st.fit_at(w, m, levels, 0)
    if got is None:
        return None
    after = list(nodes)
    after[after.index(n)] = m
    return got if rules_hold(st.p, st.p.problem.workloads[w], after) else None


def _roomy_groups(st: FleetState) -> set[int]:
    """The groups with a free GPU and watts for one more GPU at their type's lowest level."""
    got: set[int] = set()
    for g in st.p.groups:
        if st.group_free[g.index] > 0:
            gpu = g.rep.gpu
            if st.headroom_w(g.nodes[0]) >= gpu.power_levels[0].power_cap_w - gpu.idle_power_w:
                got.add(g.index)
    return got


def levels_by_group(p: Prepared) -> Callable[[int], dict[int, tuple[int, ...]]]:
    """workload -> {group: the levels its filter allows there}, read from ``p.options`` once a workload."""
    got: dict[int, dict[int, tuple[int, ...]]] = {}

    def levels_of(w: int) -> dict[int, tuple[int, ...]]:
        levels = got.get(w)
        if levels is None:
            levels = got[w] = {f.group: f.levels for o in p.options.get(w, ()) for f in o.fits}
        return levels

    return levels_of


def swap_tiers(st: FleetState, deadline: float | None = None, scan: int = 200) -> int:
    """Trade places between a higher tier's capped replica and a lower tier's replica at a higher level.

    Two whole-GPU replicas of as many GPUs (of one GPU type or two) swap workloads: each GPU
    keeps its cap, so every node, rack and site draws what it drew, and the plan earns
    (priority difference) x (throughput difference) x work more. Only where each workload
    may run on the other's node at that cap (its own groups and levels), the nodes' host
    resources hold and both workloads keep their spread and site survival; the most lost
    work first, each replica in one swap at most, up to ``scan`` partners looked at for
    each. Returns the swaps made.
    """
    p = st.p
    wl = p.problem.workloads
    levels_of = levels_by_group(p)
    rows: list[tuple[int, int, int, int, int, int]] = []  # pct, priority, w, n, level, index
    for i, (w, n, _idx, milli, cap) in enumerate(st.placements):
        wk = wl[w]
        if milli == FULL_MILLI and not wk.is_fractional and not wk.pinned:
            li = level_at(p.nodes[n].gpu, cap)
            rows.append((p.nodes[n].gpu.power_levels[li].relative_throughput_pct, wk.priority, w, n, li, i))
    partners: dict[int, list[tuple[int, int, int, int, int, int]]] = {}  # by GPUs a replica
    for r in rows:
        partners.setdefault(wl[r[2]].gpus, []).append(r)
    near: dict[tuple[int, str], list[tuple[int, int, int, int, int, int]]] = {}  # by GPUs and site
    for r in rows:
        near.setdefault((wl[r[2]].gpus, p.nodes[r[3]].site.name), []).append(r)
    for lst in (*partners.values(), *near.values()):
        lst.sort(key=lambda r: (-r[0], r[1]))  # the highest level, the lowest tier first
    todo = sorted(rows, key=lambda r: -(r[1] * wl[r[2]].work_milli * (100 - r[0])))
    nodes_of: dict[int, list[int]] = {}
    for w, n, *_ in st.placements:
        nodes_of.setdefault(w, []).append(n)
    used: set[int] = set()
    swaps: list[tuple[int, int]] = []
    host: dict[int, tuple[int, int]] = {}  # node -> (CPU, memory) the swaps so far added
    for k, (pct, prio, w, n, li, i) in enumerate(todo):
        if deadline is not None and k % _CHECK_EVERY == 0 and time.monotonic() > deadline:
            break
        if i in used:
            continue
        gpus = wl[w].gpus
        pools = (near[(gpus, p.nodes[n].site.name)], partners[gpus])
        _swap_one(st, pools, (pct, prio, w, n, li, i), scan, levels_of, nodes_of, used, host, swaps)
    if swaps:
        old = list(st.placements)
        for i, i2 in swaps:
            w, n, idx, milli, cap = old[i]
            w2, n2, idx2, milli2, cap2 = old[i2]
            old[i] = (w2, n, idx, milli, cap)
            old[i2] = (w, n2, idx2, milli2, cap2)
        rebuild(st, old)
    return len(swaps)


def _swap_one(
    st: FleetState,
    pools: tuple[list[tuple[int, int, int, int, int, int]], ...],
    row: tuple[int, int, int, int, int, int],
    scan: int,
    levels_of: Callable[[int], dict[int, tuple[int, ...]]],
    nodes_of: dict[int, list[int]],
    used: set[int],
    host: dict[int, tuple[int, int]],
    swaps: list[tuple[int, int]],
) -> bool:
    """The first partner of ``row`` in ``pools`` (the same site's first), recorded in ``swaps``."""
    wl = st.p.problem.workloads
    pct, prio, w, n, li, i = row
    wk = wl[w]
    for pool in pools:
        looked = 0
        for pct2, prio2, w2, n2, li2, i2 in pool:
            if pct2 <= pct or looked >= scan:
                break
            if prio2 >= prio or i2 in used or w2 == w:
                continue
            looked += 1
            if li2 not in levels_of(w).get(st.group_of[n2], ()) or li not in levels_of(w2).get(
                st.group_of[n], ()
            ):
                continue
            wk2 = wl[w2]
            at_n = st.host_after(n, [wk], [wk2], host)
            at_n2 = st.host_after(n2, [wk2], [wk], host)
            if n != n2 and (at_n is None or at_n2 is None):
                continue
            mine, theirs = list(nodes_of[w]), list(nodes_of[w2])
            mine[mine.index(n)] = n2
            theirs[theirs.index(n2)] = n
            if not (rules_hold(st.p, wk, mine) and rules_hold(st.p, wk2, theirs)):
                continue
            nodes_of[w], nodes_of[w2] = mine, theirs
            if n != n2 and at_n is not None and at_n2 is not None:
                host[n], host[n2] = at_n, at_n2
            used.update((i, i2))
            swaps.append((i, i2))
            return True
    return False


def rebuild(st: FleetState, rows: list[tuple[int, int, tuple[int, ...], int, int]]) -> None:
    """Replace every placement of ``st`` with ``rows`` (same GPUs and caps, other workloads)."""
    st.pop(len(st.placements))
    for w, n, idx, _milli, cap in rows:
        st.add_at(w, n, idx, cap)


def fill(st: FleetState, deadline: float | None = None) -> int:
    """Add unplaced workloads to a finished plan (``st``), greedy order; returns how many were added.

    A heuristic's plan may leave room that the greedy's rules (best level first, cell
    order, round robin for spread) still use; every addition is checked by ``FleetState``
    and is all or nothing, so the plan stays valid.
    """
    p = st.p
    wl = p.problem.workloads
    placed = {w for w, *_ in st.placements}
    order = sorted((w for w in p.options if w not in placed), key=lambda w: order_key(wl[w], w))
    dead = _Dead()
    added = 0
    for i, w in enumerate(order):
        if deadline is not None and i % _CHECK_EVERY == 0 and time.monotonic() > deadline:
            break
        if place_workload(st, w, dead):
            added += 1
    return added
