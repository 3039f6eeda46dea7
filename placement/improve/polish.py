"""Polish a finished plan: fill, move capped replicas, swap tiers, and repack power domains.

``polish`` is what the solve does to the best plan the portfolio found: ``greedy.fill``
(unplaced workloads into what is left), ``greedy.relocate`` (replicas capped for want of
watts to racks where they run higher), ``greedy.swap_tiers``, then, where asked, rounds of
``consolidate``, ``repack_domains`` and ``swap_sets``. Every change goes through the rule
kernel (``FleetState``).

``consolidate``: where a rack's or site's watts bind, a node powered for one or two replicas
pays its host and all its GPUs' idle power for them. Its replicas move to free GPUs of other
powered nodes of the site (at their level or higher, every rule kept) and the node is off;
the repack then spends those watts.

The first repack of every domain costs most of a round, so later rounds repack only the
sites where ``consolidate`` powered nodes off. Each domain's program is solved by CP-SAT (one
worker, no presolve, at most ``MS_PER_DOMAIN``), which returns its best solution when its
limit is reached (HiGHS through ``pywraplp`` returns none then).

``repack_domains``: where racks' watts bind, a rounded plan leaves each rack's last watts
in pieces: a node powered for one replica, a replica at a level the watts left cannot
repeat, free GPUs that no replica of the lowest tier was put on. It takes one power domain
at a time and solves again what the lowest tier holds there, every other domain fixed:

* the lowest tier's whole-GPU replicas in the domain are taken out and chosen again (which
  workloads, on which nodes, at which levels), with that tier's workloads below their
  ``max_replicas`` and those placed nowhere that the domain can hold alone;
* every other replica stays on its GPUs; a whole-GPU one may change its power level;
* GPUs and host resources per node, the domain's and the site's watts (a node powered pays
  its host and idle power), replica counts (``min_replicas`` to ``max_replicas``, all or
  nothing for a workload placed nowhere else) and node spread are rows of a small integer
  program (CP-SAT through ``placement.exact.backends.linear``, at most ``MS_PER_DOMAIN`` each, its
  best solution taken when time runs out).

The lowest tier's workloads alike in value (GPUs, groups, levels, host resources, rules)
are interchangeable, so only the few whose room covers the domain's GPUs get variables.
A domain's new content is kept only where it earns more placed work and the
``FleetState`` confirms every rule (watts, spread, site survival, replica counts); else the
domain is put back as it was. Domains with free GPUs go first, the least watts to spare
first.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from placement.construct.greedy import (
    Key,
    fill,
    levels_by_group,
    moved_fit,
    positions,
    put,
    raise_levels,
    rebuild,
    relocate,
    swap_tiers,
    take,
)
from placement.core.candidates import CellOption, Prepared
from placement.core.domain import NodeState, SpreadLevel, Workload
from placement.core.energy import replica_work
from placement.core.state import FULL_MILLI, Fit, FleetState, level_at, rules_hold
from placement.exact.backends.linear import LinearProgram, LinearSolver
from placement.exact.backends.linear import solve as solve_linear

log = logging.getLogger(__name__)

MS_PER_DOMAIN = 60  # CP-SAT per domain (30-150 ms gave the same plans within 0.02%)
# CP-SAT runs with one worker and without its presolve (with it: 0.016% less placed at L in 19 s)
SWAP_SETS_S = 1.0  # kept for swap_sets after repacking (0.3-0.4 s a round at L)
SWAP_SETS_ROUNDS = 3
PASSES = 6  # rounds of consolidate, repack and swap sets while they gain and time is left
CONSOLIDATE_SLACK_W = 5_000  # a node is powered off where its rack or site has less than this to spare
KEEP_ALIKE = 4  # workloads alike in value kept per domain (at most; fewer where their room covers it)

DomainKey = tuple[str, str]


def polish(
    st: FleetState,
    deadline: float | None,
    repack: bool,
    rounds: int | None = None,
    repack_det_s: float | None = None,
) -> tuple[int, int, int]:
    """Improve ``st`` in place until ``deadline``: fill, relocate, swap tiers, then (where
    ``repack``) power off lightly used nodes and repack the power domains, and swap sets;
    returns (workloads added, replicas moved or swapped and nodes powered off, placed work
    the repacking gained).

    With ``rounds`` (the deterministic mode, ``placement.run.effort``) at most that many rounds run,
    each repacking every domain with ``repack_det_s`` of CP-SAT's deterministic time a domain, and
    nothing depends on the clock: ``deadline`` only cuts a run that outlives the safety net."""
    deterministic = rounds is not None
    added = fill(st, deadline)
    moved = relocate(st, deadline)
    if moved:
        raise_levels(st)
        added += fill(st, deadline)
    moved += swap_tiers(st, deadline)
    gained = 0
    full_s = 0.0  # how long the last repack of every domain took
    for k in range(rounds if rounds is not None else PASSES if repack else 1):
        got = 0
        if repack:
            # lightly used nodes powered off give their rack's and site's watts to the repack; every
            # domain is repacked first, then (at L, where that takes most of the time box) only the
            # sites the consolidation freed watts in
            emptied = consolidate(st, deadline)
            moved += len(emptied)
            t0 = time.monotonic()
            left = deadline - t0 if deadline is not None else math.inf
            every = deterministic or k == 0 or not emptied or full_s < left / 2
            until = deadline - SWAP_SETS_S if deadline is not None and not deterministic else deadline
            got = repack_domains(st, until, None if every else set(emptied), repack_det_s)
            if every:
                full_s = time.monotonic() - t0
            gained += got
        for _ in range(SWAP_SETS_ROUNDS):  # a swap's partners may make another one possible
            swapped = swap_sets(st, deadline)
            moved += swapped
            got += swapped
            if not swapped:
                break
        if not got or (
            not deterministic and deadline is not None and time.monotonic() > deadline - SWAP_SETS_S
        ):
            break
    return added, moved, gained


def consolidate(st: FleetState, deadline: float | None = None) -> list[str]:
    """Power off lightly used nodes where watts bind: every replica of such a node moves to free
    GPUs of other powered nodes of its site, each at its level or a higher one (its filter's
    groups and levels, host resources, rack and site watts, spread and site survival kept); the
    node's host and idle power go back to its rack and site for ``repack_domains`` to spend.
    Nodes with the fewest GPUs in use go first; a node whose replicas cannot all move stays as
    it was. Returns the site of each node powered off.
    """
    p = st.p
    wl = p.problem.workloads
    powered: dict[str, list[int]] = defaultdict(list)  # READY nodes by site
    for n, info in enumerate(p.nodes):
        if info.node.state is NodeState.READY:
            powered[info.site.name].append(n)
    pos = positions(st)
    on_node: dict[int, list[Key]] = defaultdict(list)
    nodes_of: dict[int, list[int]] = defaultdict(list)
    for w, n, idx in pos:
        on_node[n].append((w, n, idx))
        nodes_of[w].append(n)

    def tight(n: int) -> bool:
        return st.headroom_w(n) < CONSOLIDATE_SLACK_W

    todo = sorted(
        (p.nodes[n].node.gpu_count - st.node_free[n], n)
        for n, keys in on_node.items()
        if keys and tight(n) and all(not wl[w].is_fractional and not wl[w].pinned for w, _n, _idx in keys)
    )
    levels_of = levels_by_group(p)

    emptied: list[str] = []
    for k, (_used, n) in enumerate(todo):
        if deadline is not None and k % 32 == 0 and time.monotonic() > deadline:
            break
        if not on_node[n] or not tight(n):
            continue
        site = p.nodes[n].site.name
        rows = [take(st, pos, key) for key in list(on_node[n])]
        moved: list[Key] = []
        for w, _n, _idx, _milli, cap in rows:
            wk = wl[w]
            pct = p.nodes[n].gpu.power_levels[level_at(p.nodes[n].gpu, cap)].relative_throughput_pct
            target: Fit | None = None
            for m in powered[site]:
                if m == n or st.replicas[m] == 0 or st.node_free[m] < wk.gpus:
                    continue
                allowed = levels_of(w).get(st.group_of[m])
                if not allowed:
                    continue
                levels = p.nodes[m].gpu.power_levels
                better = tuple(li for li in allowed if levels[li].relative_throughput_pct >= pct)
                target = moved_fit(st, w, n, m, better, nodes_of[w]) if better else None
                if target is not None:
                    break
            if target is None:
                break
            nodes_of[w][nodes_of[w].index(n)] = target.node
            moved.append(put(st, pos, w, target))
        if len(moved) < len(rows):  # put the node back as it was
            for key in reversed(moved):
                take(st, pos, key)
                nodes_of[key[0]][nodes_of[key[0]].index(key[1])] = n
            for w, _n, idx, _milli, cap in rows:
                st.add_at(w, n, idx, cap)
                pos[(w, n, idx)] = len(st.placements) - 1
            continue
        on_node[n] = []
        for key in moved:
            on_node[key[1]].append(key)
        emptied.append(site)
    if emptied:
        log.info("consolidate: %d lightly used nodes powered off", len(emptied))
    return emptied


Row = tuple[int, int, tuple[int, ...], int, int]  # workload, node, GPUs, thousandths, cap


def swap_sets(st: FleetState, deadline: float | None = None, scan: int = 400) -> int:
    """Give a higher tier's capped replica the GPUs of lower tiers' replicas at a higher cap.

    ``greedy.swap_tiers`` trades one replica for one of as many GPUs; here the partner is a
    set: lower-tier replicas on one node, at one cap, whose GPUs add up to the capped
    replica's (an 8-GPU replica and eight 1-GPU ones, say). The capped replica takes their
    GPUs at their cap, they take its GPUs at its cap: every GPU keeps its cap, so no node,
    rack or site draws more, and the plan earns the difference. Only where each workload may
    run there at that cap (its groups and levels), host resources hold and spread and site
    survival hold; the most lost work first, up to ``scan`` nodes looked at for each, each
    replica in one swap at most. Returns the swaps made.
    """
    p = st.p
    wl = p.problem.workloads
    levels_of = levels_by_group(p)

    def work(w: int, n: int, cap: int) -> int:
        return _work(st, w, n, cap)

    rows: list[Row] = list(st.placements)
    on_node: dict[int, list[int]] = defaultdict(list)
    capped: list[tuple[int, int]] = []  # (work lost, placement)
    for i, (w, n, _idx, milli, cap) in enumerate(rows):
        wk = wl[w]
        if wk.is_fractional or milli != FULL_MILLI or wk.pinned:
            continue
        on_node[n].append(i)
        top = p.nodes[n].gpu.power_levels[-1].power_cap_w  # (the group's own levels may stop below it)
        if cap < top:
            capped.append((work(w, n, top) - work(w, n, cap), i))
    if not capped:
        return 0
    capped.sort(reverse=True)
    nodes = sorted(on_node, key=lambda n: -max(rows[i][4] for i in on_node[n]))
    caps_on: dict[int, dict[int, list[tuple[int, int]]]] = {}  # node -> cap -> (priority, GPUs)
    for n in nodes:
        caps_on[n] = defaultdict(list)
        for i in on_node[n]:
            caps_on[n][rows[i][4]].append((wl[rows[i][0]].priority, len(rows[i][2])))
    pct: dict[tuple[str, int], int] = {}

    def pct_at(n: int, cap: int) -> int:
        gpu = p.nodes[n].gpu
        got = pct.get((gpu.name, cap))
        if got is None:
            got = pct[(gpu.name, cap)] = gpu.power_levels[level_at(gpu, cap)].relative_throughput_pct
        return got

    promising: dict[tuple[int, int, int], list[int]] = {}

    def promising_nodes(prio: int, gpus: int, now: int) -> list[int]:
        """Nodes running lower-tier replicas of ``gpus`` GPUs in all at one cap earning more than
        ``now`` (as the plan was: a swap's nodes may have less by now)."""
        got = promising.get((prio, gpus, now))
        if got is None:
            got = promising[(prio, gpus, now)] = [
                b
                for b in nodes
                if any(
                    pct_at(b, cap) > now and sum(g for pr, g in lst if pr < prio) >= gpus
                    for cap, lst in caps_on[b].items()
                )
            ]
        return got

    nodes_of: dict[int, list[int]] = defaultdict(list)
    for w, n, *_rest in rows:
        nodes_of[w].append(n)
    used: set[int] = set()
    host: dict[int, tuple[int, int]] = {}
    swaps = 0
    for k, (_lost, i) in enumerate(capped):
        if deadline is not None and k % 16 == 0 and time.monotonic() > deadline:
            break
        if i in used:
            continue
        w, a, idx_a, _milli, cap_a = rows[i]
        mine = levels_of(w)
        now = pct_at(a, cap_a)
        looked = 0
        for b in promising_nodes(wl[w].priority, len(idx_a), now):
            if looked >= scan:
                break
            if b == a or st.group_of[b] not in mine:
                continue
            looked += 1
            if _swap_set(st, rows, i, b, on_node[b], mine, levels_of, work, nodes_of, used, host):
                swaps += 1
                break
    if swaps:
        rebuild(st, rows)
        log.info("swap sets: %d capped replicas took lower tiers' GPUs at a higher cap", swaps)
    return swaps


def _swap_set(
    st: FleetState,
    rows: list[Row],
    i: int,
    b: int,
    there: list[int],
    mine: dict[int, tuple[int, ...]],
    levels_of: Any,
    work: Any,
    nodes_of: dict[int, list[int]],
    used: set[int],
    host: dict[int, tuple[int, int]],
) -> bool:
    """Swap placement ``i`` with a set of lower-tier placements on node ``b`` (in ``rows``)."""
    p = st.p
    wl = p.problem.workloads
    w, a, idx_a, _milli, cap_a = rows[i]
    wk = wl[w]
    g = len(idx_a)
    la = level_at(p.nodes[a].gpu, cap_a)
    by_cap: dict[int, list[int]] = defaultdict(list)
    for j in there:
        wj = wl[rows[j][0]]
        if j not in used and wj.priority < wk.priority and rows[j][4] > 0:
            by_cap[rows[j][4]].append(j)
    gpu_b = p.nodes[b].gpu
    for cap_b, js in sorted(by_cap.items(), reverse=True):
        lb = level_at(gpu_b, cap_b)
        if lb not in mine.get(st.group_of[b], ()):
            continue
        if work(w, b, cap_b) <= work(w, a, cap_a):
            break
        # the fewest, biggest first, whose GPUs add up to g and who may run on a at cap_a
        take: list[int] = []
        left = g
        for j in sorted(js, key=lambda j: -len(rows[j][2])):
            size = len(rows[j][2])
            if size <= left and la in levels_of(rows[j][0]).get(st.group_of[a], ()):
                take.append(j)
                left -= size
                if left == 0:
                    break
        if left:
            continue
        gain = work(w, b, cap_b) - work(w, a, cap_a)
        gain += sum(work(rows[j][0], a, cap_a) - work(rows[j][0], b, cap_b) for j in take)
        if gain <= 0:
            continue
        at_a = st.host_after(a, [wk], [wl[rows[j][0]] for j in take], host)
        at_b = st.host_after(b, [wl[rows[j][0]] for j in take], [wk], host)
        if at_a is None or at_b is None:
            continue
        moved = {w: _moved(nodes_of[w], {a: 1}, {b: 1})}
        for j in take:
            other = rows[j][0]
            moved[other] = _moved(moved.get(other, nodes_of[other]), {b: 1}, {a: 1})
        if not all(rules_hold(st.p, wl[x], ns) for x, ns in moved.items()):
            continue
        nodes_of.update(moved)
        host[a], host[b] = at_a, at_b
        # the replica takes the set's GPUs at their cap, the set takes its GPUs at its cap
        idx_b = tuple(sorted(x for j in take for x in rows[j][2]))
        rows[i] = (w, b, idx_b, FULL_MILLI, cap_b)
        at = 0
        for j in take:
            size = len(rows[j][2])
            rows[j] = (rows[j][0], a, idx_a[at : at + size], FULL_MILLI, cap_a)
            at += size
        used.add(i)
        used.update(take)
        return True
    return False


def _moved(nodes: list[int], out: dict[int, int], into: dict[int, int]) -> list[int]:
    """``nodes`` with one entry of each key of ``out`` replaced by the keys of ``into``."""
    got = list(nodes)
    for n in out:
        got.remove(n)
    got.extend(into)
    return got


@dataclass(frozen=True)
class _Option:
    w: int
    group: int
    levels: tuple[int, ...]


class _Index:
    """Placements per domain, replicas per workload and per (workload, node), kept up to date
    through ``remove`` and ``add`` (``FleetState.remove`` moves the last placement)."""

    def __init__(self, st: FleetState) -> None:
        self.st = st
        self.of_domain: dict[DomainKey, set[int]] = defaultdict(set)
        self.count: Counter[int] = Counter()
        self.nodes: dict[int, Counter[int]] = defaultdict(Counter)
        for i, (w, n, *_rest) in enumerate(st.placements):
            self.of_domain[st.p.nodes[n].domain_key].add(i)
            self.count[w] += 1
            self.nodes[w][n] += 1

    def remove(self, i: int) -> None:
        st = self.st
        last = len(st.placements) - 1
        w, n, *_rest = st.placements[i]
        self.of_domain[st.p.nodes[n].domain_key].discard(i)
        if i != last:
            moved = st.p.nodes[st.placements[last][1]].domain_key
            self.of_domain[moved].discard(last)
            self.of_domain[moved].add(i)
        st.remove(i)
        self.count[w] -= 1
        self.nodes[w][n] -= 1

    def add(self, w: int, n: int, gpus: tuple[int, ...], cap_w: int) -> None:
        st = self.st
        st.add_at(w, n, gpus, cap_w)
        self.of_domain[st.p.nodes[n].domain_key].add(len(st.placements) - 1)
        self.count[w] += 1
        self.nodes[w][n] += 1


class _Lookup:
    """The filter's options, read as needed: the lowest tier's options on a domain's groups, and
    the levels of (workload, group). Reading every (workload, group) pair up front took 30 s at
    XL (7,800 workloads on 7,200 groups), before the first domain."""

    def __init__(self, p: Prepared, lowest: int) -> None:
        self.p = p
        wl = p.problem.workloads
        self.by_cell: dict[int, list[tuple[int, CellOption]]] = defaultdict(list)  # the lowest tier's
        for w, opts in p.options.items():
            if wl[w].priority == lowest and not wl[w].is_fractional and not wl[w].pinned:
                for o in opts:
                    self.by_cell[o.cell].append((w, o))
        self.by_group: dict[int, dict[int, list[_Option]]] = {}  # cell -> group -> options
        self.cells_of: dict[int, dict[int, CellOption]] = {}  # workload -> cell -> option

    def options(self, groups: list[int]) -> list[_Option]:
        got: list[_Option] = []
        for g in groups:
            cell = self.p.groups[g].cell
            at = self.by_group.get(cell)
            if at is None:
                at = self.by_group[cell] = defaultdict(list)
                for w, o in self.by_cell.get(cell, ()):
                    for f in o.fits:
                        at[f.group].append(_Option(w, f.group, f.levels))
            got.extend(at.get(g, ()))
        return got

    def get(self, key: tuple[int, int], default: tuple[int, ...] = ()) -> tuple[int, ...]:
        """The levels workload ``key[0]`` may run at on group ``key[1]`` (``default`` where none)."""
        w, group = key
        cells = self.cells_of.get(w)
        if cells is None:
            cells = self.cells_of[w] = {o.cell: o for o in self.p.options.get(w, ())}
        o = cells.get(self.p.groups[group].cell)
        for f in o.fits if o is not None else ():
            if f.group == group:
                return f.levels
        return default


def repack_domains(
    st: FleetState,
    deadline: float | None = None,
    sites: set[str] | None = None,
    det_s: float | None = None,
) -> int:
    """Repack ``st``'s power domains (those of ``sites`` only, where given) in place (see the
    module docstring); returns the placed work gained. Each domain's program gets
    ``MS_PER_DOMAIN`` of wall time, or with ``det_s`` that much of CP-SAT's deterministic time
    (and the wall time to ``deadline`` as the safety net)."""
    p = st.p
    wl = p.problem.workloads
    if not p.options:
        return 0
    lowest = min(wl[w].priority for w in p.options)
    lookup = _Lookup(p, lowest)
    groups_of: dict[DomainKey, list[int]] = defaultdict(list)
    nodes_of: dict[DomainKey, list[int]] = defaultdict(list)
    for g in p.groups:
        groups_of[g.rep.domain_key].append(g.index)
        nodes_of[g.rep.domain_key].extend(g.nodes)
    index = _Index(st)
    todo = sorted(
        (
            d
            for d in nodes_of
            if (sites is None or d[0] in sites) and any(st.node_free[n] for n in nodes_of[d])
        ),
        key=lambda d: p.domains[d].usable_power_w - st.domain_w[d],
    )
    gained = 0
    for k, d in enumerate(todo):
        if deadline is not None and time.monotonic() > deadline:
            log.info("repack: time up after %d of %d domains", k, len(todo))
            break
        options = lookup.options(groups_of[d])
        if options:
            limit = _domain_limit(deadline, det_s)
            gained += _repack_one(st, d, lowest, options, nodes_of[d], lookup, index, limit)
    log.info("repack: %d domains, placed work +%d", len(todo), gained)
    return gained


def _domain_limit(deadline: float | None, det_s: float | None) -> tuple[int, float | None]:
    """One domain's limits: (wall milliseconds, CP-SAT's deterministic seconds or None)."""
    if det_s is None:
        return MS_PER_DOMAIN, None
    left_ms = 3_600_000 if deadline is None else max(1, int(1000 * (deadline - time.monotonic())))
    return left_ms, det_s


def _pruned(
    st: FleetState, options: list[_Option], in_d: Counter[int], count: Counter[int], nodes: list[int]
) -> list[_Option]:
    """The options worth variables: all of the workloads the domain holds; of the others, those
    alike in value (GPUs, groups and levels, host resources, rules) the fewest whose room
    covers the domain's GPUs (at most ``KEEP_ALIKE``), the least needed first."""
    wl = st.p.problem.workloads
    free = sum(st.node_free[n] for n in nodes) + sum(wl[w].gpus * c for w, c in in_d.items())
    by_w: dict[int, list[_Option]] = defaultdict(list)
    for o in options:
        by_w[o.w].append(o)
    keep: list[_Option] = []
    alike: dict[tuple[object, ...], list[tuple[int, int, int]]] = defaultdict(list)
    for w, opts in by_w.items():
        wk = wl[w]
        if w in in_d:
            keep.extend(opts)
            continue
        placed = count[w]
        if placed == 0 and _needs_other_domains(wk):
            continue
        room = wk.max_replicas - placed
        need = wk.min_replicas if placed == 0 else 0
        if room <= 0 or need * wk.gpus > free:
            continue
        sig = (
            wk.gpus,
            tuple(sorted((o.group, o.levels) for o in opts)),
            wk.cpu_milli,
            wk.host_memory_mib,
            placed == 0 and wk.spread is not None,
        )
        alike[sig].append((need, -room, w))
    for ws in alike.values():
        ws.sort()
        covered = 0
        for k, (_need, neg_room, w) in enumerate(ws):
            if k >= KEEP_ALIKE or covered * wl[w].gpus >= free:
                break
            covered -= neg_room
            keep.extend(by_w[w])
    return keep


def _needs_other_domains(wk: Workload) -> bool:
    """A workload placed nowhere that one power domain cannot hold alone."""
    return wk.survivors_required > 0 or (wk.spread is not None and wk.spread.level is not SpreadLevel.NODE)


def _work(st: FleetState, w: int, n: int, cap_w: int) -> int:
    gpu = st.p.nodes[n].gpu
    return replica_work(
        st.p.problem.workloads[w], gpu.power_levels[level_at(gpu, cap_w)].relative_throughput_pct
    )


def _repack_one(
    st: FleetState,
    d: DomainKey,
    lowest: int,
    options: list[_Option],
    nodes: list[int],
    levels: _Lookup,
    index: _Index,
    limit: tuple[int, float | None] = (MS_PER_DOMAIN, None),
) -> int:
    """Repack domain ``d`` (see the module docstring); returns the placed work gained (0: unchanged).
    ``limit``: the program's wall milliseconds and deterministic seconds (``_domain_limit``); it is
    solved by CP-SAT (one worker, no presolve) through ``placement.exact.backends.linear``."""
    p = st.p
    wl = p.problem.workloads
    site = p.nodes[nodes[0]].site.name
    free_rows: list[tuple[int, int, int, tuple[int, ...], int]] = []  # lowest tier: chosen again
    fixed: list[tuple[int, int, int, tuple[int, ...], int]] = []  # other whole-GPU: a level each
    for i in index.of_domain[d]:
        w, n, idx, milli, cap = st.placements[i]
        wk = wl[w]
        if wk.is_fractional or milli != FULL_MILLI or wk.pinned:
            continue
        (free_rows if wk.priority == lowest else fixed).append((i, w, n, idx, cap))
    in_d: Counter[int] = Counter(r[1] for r in free_rows)
    before = sum(_work(st, w, n, cap) for _i, w, n, _idx, cap in (*free_rows, *fixed))
    out_gpus: Counter[int] = Counter()  # GPUs, host resources and watts above idle that go back
    out_cpu: Counter[int] = Counter()
    out_mem: Counter[int] = Counter()
    out_w: Counter[int] = Counter()
    for _i, w, n, idx, _cap in free_rows:
        out_gpus[n] += len(idx)
        out_cpu[n] += wl[w].cpu_milli
        out_mem[n] += wl[w].host_memory_mib
    left: Counter[int] = Counter(r[2] for r in free_rows)
    for _i, _w, n, idx, cap in (*free_rows, *fixed):
        out_w[n] += len(idx) * (cap - p.nodes[n].gpu.idle_power_w)

    prog = LinearProgram(maximize=True)
    inf = math.inf
    room_w = min(st.domain_usable_w[d], st.site_usable_w[site] - st.site_w[site] + st.domain_w[d])
    const_w = 0  # the draw the program does not choose
    power = prog.row(-inf, inf)
    gpu_ct: dict[int, int] = {}
    cpu_ct: dict[int, int] = {}
    mem_ct: dict[int, int] = {}
    for n in nodes:
        info = p.nodes[n]
        node = info.node
        free_n = st.node_free[n] + out_gpus[n]
        const_w += st.gpu_w[n] - out_w[n]
        if st.replicas[n] > left[n]:  # stays powered
            const_w += info.on_power_w
            gpu_ct[n] = prog.row(-inf, float(free_n))
        else:
            on = prog.int_col(1)
            prog.add(power, on, float(info.on_power_w))
            gpu_ct[n] = prog.row(-inf, 0.0)
            prog.add(gpu_ct[n], on, -float(free_n))
        if node.cpu_milli > 0:
            cpu_ct[n] = prog.row(-inf, float(node.cpu_milli - st.cpu[n] + out_cpu[n]))
        if node.host_memory_mib > 0:
            mem_ct[n] = prog.row(-inf, float(node.host_memory_mib - st.hmem[n] + out_mem[n]))
    prog.set_bounds(power, ub=float(room_w - const_w))

    def column(most: int, w: int, n: int, li: int, count_rows: bool) -> int:
        g = p.nodes[n].gpu
        wk = wl[w]
        v = prog.int_col(most, obj=float(replica_work(wk, g.power_levels[li].relative_throughput_pct)))
        prog.add(power, v, float(wk.gpus * (g.power_levels[li].power_cap_w - g.idle_power_w)))
        if count_rows:
            prog.add(gpu_ct[n], v, float(wk.gpus))
            if n in cpu_ct and wk.cpu_milli:
                prog.add(cpu_ct[n], v, float(wk.cpu_milli))
            if n in mem_ct and wk.host_memory_mib:
                prog.add(mem_ct[n], v, float(wk.host_memory_mib))
        return v

    level_vars: list[tuple[tuple[int, int, tuple[int, ...]], list[tuple[int, int]]]] = []
    for _i, w, n, idx, cap in fixed:
        one = prog.row(1.0, 1.0)
        choice: list[tuple[int, int]] = []
        for li in levels.get((w, st.group_of[n]), ()) or (level_at(p.nodes[n].gpu, cap),):
            v = column(1, w, n, li, count_rows=False)
            prog.add(one, v, 1.0)
            choice.append((li, v))
        level_vars.append(((w, n, idx), choice))
    xs: dict[int, list[tuple[int, int, int]]] = defaultdict(list)  # workload -> (node, level, column)
    node_set = set(nodes)
    for o in _pruned(st, options, in_d, index.count, nodes):
        gpus = wl[o.w].gpus
        for n in p.groups[o.group].nodes:
            most = (st.node_free[n] + out_gpus[n]) // gpus if n in node_set else 0
            for li in o.levels if most > 0 else ():
                xs[o.w].append((n, li, column(most, o.w, n, li, count_rows=True)))
    if any(w not in xs for w in in_d):  # a workload held here has no option left: leave the domain
        return 0
    for w, vs in xs.items():
        wk = wl[w]
        elsewhere = index.count[w] - in_d[w]
        total = prog.row(-inf, float(wk.max_replicas - elsewhere))
        for _n, _li, v in vs:
            prog.add(total, v, 1.0)
        if elsewhere > 0:
            prog.set_bounds(total, lb=float(max(0, wk.min_replicas - elsewhere)))
            continue
        # placed nowhere else: none, or min_replicas to max_replicas here (u: placed or not)
        u = prog.int_col(1)
        prog.set_bounds(total, ub=0.0)
        prog.add(total, u, -float(wk.max_replicas))
        least = prog.row(0.0, inf)
        for _n, _li, v in vs:
            prog.add(least, v, 1.0)
        prog.add(least, u, -float(wk.min_replicas))
        if wk.spread is not None:  # node spread: no node holds them all (its_node <= total - u)
            per_node: dict[int, list[int]] = defaultdict(list)
            for n, _li, v in vs:
                per_node[n].append(v)
            for mine in per_node.values():
                ct = prog.row(-inf, 0.0)
                mine_set = set(mine)
                for _n, _li, v in vs:
                    if v not in mine_set:
                        prog.add(ct, v, -1.0)
                prog.add(ct, u, 1.0)
    wall_ms, det_s = limit
    got = solve_linear(
        prog, LinearSolver.CP_SAT, time_limit_s=wall_ms / 1000.0, work_s=det_s, workers=1, presolve=False
    )
    if not got.has_solution or got.objective is None or got.values is None:
        return 0
    after = round(got.objective)
    if after <= before:
        return 0
    value = got.values
    chosen = [(w, n, li) for w, vs in xs.items() for n, li, v in vs for _ in range(round(value[v]))]
    relevel = [(key, next(li for li, v in choice if value[v] > 0.5)) for key, choice in level_vars]
    old_free = [(w, n, idx, cap) for _i, w, n, idx, cap in free_rows]
    old_levels = [((w, n, idx), level_at(p.nodes[n].gpu, cap)) for _i, w, n, idx, cap in fixed]
    _apply(st, d, index, [r[0] for r in free_rows], relevel, chosen)
    touched = set(in_d) | {w for w, _n, _li in chosen}
    if st.within_power(nodes[0]) and all(
        st.workload_short(w, list(index.nodes[w].elements())) is None for w in touched
    ):
        return after - before
    # a rule the program does not see failed: put the domain back as it was
    mine = [i for i in index.of_domain[d] if _is_free(wl[st.placements[i][0]], lowest)]
    _apply(st, d, index, mine, old_levels, [])
    for w, n, idx, cap in old_free:
        index.add(w, n, idx, cap)
    log.info("repack: domain %s put back (a rule failed)", d)
    return 0


def _is_free(wk: Workload, lowest: int) -> bool:
    return wk.priority == lowest and not wk.is_fractional and not wk.pinned


def _apply(
    st: FleetState,
    d: DomainKey,
    index: _Index,
    out: Iterable[int],
    relevel: list[tuple[tuple[int, int, tuple[int, ...]], int]],
    add: list[tuple[int, int, int]],
) -> None:
    """Take placements ``out`` away, put the replicas keyed (workload, node, GPUs) at their new
    levels, add replicas (workload, node, level) on the first free GPUs."""
    for i in sorted(out, reverse=True):  # from the end: the last placement moved into i is kept
        index.remove(i)
    where = {st.placements[i][:3]: i for i in index.of_domain[d]}
    for key, li in relevel:
        st.set_level(where[key], li)
    wl = st.p.problem.workloads
    for w, n, li in add:
        gpus = tuple(st.free_gpus(n)[: wl[w].gpus])
        index.add(w, n, gpus, st.p.nodes[n].gpu.power_levels[li].power_cap_w)
