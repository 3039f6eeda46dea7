"""Upper bounds on tier 1 (placed work): linear relaxations over groups of alike nodes.

``relaxation_bound(problem)`` is the coarse one: per (site, GPU type), GPU thousandths capped
by what each rack's power feeds at the lowest cap (``candidate_pairs`` are its candidate
pairs, which the partitioned solve's split reads too). The rest of this docstring is the
finer node-group LP.

``group_lp_bound(problem)`` is an upper bound on the placed work of every valid plan. Its
columns are y[c, g, l] >= 0, GPU thousandths of workload class c on node group g at power
level l, where a group is the READY nodes of one power domain with the same GPU type,
gpu_count and host_power_w, and a class is the workloads alike in everything the
relaxation reads (their candidate groups, priority, shape, power floor), whose rows add up.
Each row is implied by the hard rules (docs/ARCHITECTURE.md):

- candidates (rules 1, 2, 3, 5, 8, 9, per node and replica): a column exists only where one
  replica of the workload fits an empty node of the group alone; anything a valid plan
  does lies in these columns.
- GPUs per group (rule 4): thousandths used on the group <= 1000 * its GPUs.
- per (class, group) packing (rules 3, 4, 5): a node holds at most k replicas of a
  workload (whole GPUs: gpu_count // gpus; shared: per GPU min(1000 // milli, memory)),
  so the class uses at most nodes * k * work_milli there; written only where it binds. A
  class shares work_milli (so gpus or gpu_milli), k on every group and the host requests
  (cpu_milli, host_memory_mib), so its replicas together also fit at most k per node.
- power (rules 6, 7): a node with u GPUs in use draws host + gpu_count * idle +
  u * (cap - idle) >= u * (cap + host / gpu_count), as u <= gpu_count; a shared GPU draws
  max_power_w and carries at most 1000 thousandths, so charging (max_power_w +
  host / gpu_count) / 1000 per thousandth is below its draw. Rows per power domain and per
  site at their usable power.
- replicas (rule 10): a class holds at most the sum of its workloads' work_milli *
  max_replicas. A workload that cannot reach min_replicas on its candidates alone (GPU
  capacity, spread over distinct entities (rule 11), or site-loss survival with one
  candidate site (rule 12)) is never placed and has no columns.
- one site, one power domain (rules 11, 12): with site survival, a workload's replicas on one
  site are at most max_replicas - survivors_required; with a spread over k sites or power
  domains, at most max_replicas - (k - 1) on one (``_entity_caps``). A class sums these
  caps over its workloads (classes keep workloads with and without such rules apart);
  a row per (class, site) or (class, domain), written only where it binds. These rows
  barely move the bound, but they keep the solution from piling a class with site
  survival onto one site, which is what ``placement.construct.guided`` rounds.
- blast radius (rule 16): a workload with ``max_per_node`` holds at most min(that, the node's
  own k) on a node, so a class of such workloads at most the sum of its members' capped k per
  node of a group (the per (class, group) packing row takes the smaller of the two); with
  ``max_per_power_domain`` a power domain holds at most that many of each (the per (class,
  domain) row above sums it over the class's workloads). Classes keep workloads with
  different caps apart; a workload that cannot reach min_replicas within its caps, per node
  and per power domain summed, is never placed and has no columns. Pinned workloads are not
  capped here (they are relaxed as below).
- objective: priority * relative_throughput_pct per thousandth (a shared GPU at the type's
  top level), which is the tier-1 value of every placed replica.

Pinned workloads are relaxed like the others (at most max(max_replicas, current) replicas
anywhere their filter allows), which keeps the bound valid.

The LP has about one column per (class, group, level), levels below the top dropped where
power cannot bind; it is built in lists as one ``LinearProgram`` (an MPModelProto, the same
LP byte for byte whatever the build order) and solved by GLOP. It is slower than
``relaxation_bound``, so callers give it a deadline and take the least of the two bounds.

``group_lp(problem, solution=True)`` also returns the solution's columns above zero, by
class, and the duals of the rows every class shares (``Prices``), for ``placement.construct.guided``.

``integer_bound(got)`` tightens the bound (Lagrangian relaxation, see its docstring): the
rows shared between power domains priced at the LP's duals, every power domain whose power
binds solved as a small integer program in which a powered node pays its host and idle
power whole.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from placement.core.candidates import Prepared, node_most, site_admits
from placement.core.domain import (
    Node,
    NodeState,
    Problem,
    SolveStatus,
    SpreadLevel,
    StopReason,
    Workload,
    memory_milli_gib,
)
from placement.core.energy import allowed_levels
from placement.core.network import latency_table
from placement.exact.backends.linear import LinearProgram, LinearSolver
from placement.exact.backends.linear import solve as solve_linear

log = logging.getLogger(__name__)

_EPS = 1e-9
# about 1.3 KiB of memory a column (proto and GLOP): profile L's 1.17M columns peaked at 1.5 GiB,
# generate(40000)'s 5.4M at 6.5 GiB before its simplex started; past this the LP is not built
MAX_COLUMNS = 2_000_000

GroupKey = tuple[str, str, str, int, int]  # site, power domain, GPU type, gpu_count, host_power_w
SiteType = tuple[str, str]  # (site, GPU type)


def _per_node_replicas(w: Workload, n: Node, gpu_memory_gib: float) -> int:
    """How many replicas of w one empty node n can hold (0: none), by GPUs, memory and host."""
    cap = memory_milli_gib(gpu_memory_gib)  # rule 3 in whole milli-GiB, as the verifier reads it
    if w.is_fractional:
        per_gpu = 1000 // w.gpu_milli
        need = memory_milli_gib(w.memory_gib)
        if need > 0:
            per_gpu = min(per_gpu, cap // need)
        k = per_gpu * n.gpu_count
    else:
        if memory_milli_gib(w.memory_per_gpu_gib) > cap:
            return 0
        k = n.gpu_count // w.gpus
    if n.cpu_milli > 0 and w.cpu_milli > 0:
        k = min(k, n.cpu_milli // w.cpu_milli)
    if n.host_memory_mib > 0 and w.host_memory_mib > 0:
        k = min(k, n.host_memory_mib // w.host_memory_mib)
    return max(k, 0)


@dataclass(frozen=True)
class GroupLP:
    """The LP's optimum: the bound, and where its solution puts each class of workloads.

    ``classes[c]`` lists the workload indices (into ``problem.workloads``) of class c, in
    problem order; ``columns`` holds (class, group key, level index or -1 for a shared GPU,
    GPU thousandths) for every column above zero. ``placement.construct.guided`` reads it as a guide.
    """

    bound: float
    classes: tuple[tuple[int, ...], ...]
    columns: tuple[tuple[int, GroupKey, int, float], ...]
    prices: Prices | None = None
    domain_rows: _DomainRows | None = field(default=None, compare=False, repr=False)  # integer_bound reads it


@dataclass(frozen=True)
class Prices:
    """The LP's dual values (placed work per unit) of the rows every class shares: a GPU
    thousandth per group key, a watt per power domain and per site (0 where the row is slack
    or not written). What a replica costs at these prices is what it takes from the others."""

    gpu_milli: dict[GroupKey, float]
    domain_w: dict[tuple[str, str], float]
    site_w: dict[str, float]


def columns_estimate(prepared: Prepared) -> int:
    """About the columns ``group_lp`` would count for its cap, from the filter's candidates: the
    same classes except for the per-node replica caps (which only split them further) and the
    workloads the LP drops, so far below ``MAX_COLUMNS`` where the LP fits and far above where it
    does not (profile L 1.6 million, XL 17 million, in 0.2 and 3 s against the LP's 30 s to say so)."""
    wl = prepared.problem.workloads
    key_of = {}
    for g in prepared.groups:
        n = g.rep.node
        key_of[g.index] = (n.site, n.power_domain, n.gpu_type, n.gpu_count, n.host_power_w)
    classes: dict[tuple[Any, ...], int] = {}
    for w, opts in prepared.options.items():
        wk = wl[w]
        keys = frozenset(key_of[f.group] for o in opts for f in o.fits)
        sig = (
            keys,
            wk.priority,
            wk.is_fractional,
            wk.min_power_cap_pct,
            wk.work_milli,
            (wk.cpu_milli, wk.host_memory_mib),
            _spread_kind(wk),
            (wk.max_per_node, wk.max_per_power_domain),
        )
        classes[sig] = len(keys) * (1 if wk.is_fractional else 3)
    return sum(classes.values())


def group_lp_bound(problem: Problem, deadline: float | None = None) -> float | None:
    """An upper bound on tier 1 (see the module docstring), or None (no solver, LP not optimal, deadline)."""
    got = group_lp(problem, deadline)
    return got.bound if got is not None else None


@dataclass(frozen=True)
class Residual:
    """What is left of a fleet after part of a plan: the LP then guides the rest (not a bound).

    ``free_gpus`` per group key, ``used_w`` per power domain and site, and the workloads
    still to place (indices into ``problem.workloads``).
    """

    free_gpus: dict[GroupKey, int]
    domain_used_w: dict[tuple[str, str], int]
    site_used_w: dict[str, int]
    workloads: frozenset[int]


def group_lp(
    problem: Problem, deadline: float | None = None, solution: bool = False, residual: Residual | None = None
) -> GroupLP | None:
    """The LP of the module docstring, solved; its columns only when ``solution`` (reading them costs time).

    With ``residual`` the LP is over what is left (``Residual``): its value guides, it bounds nothing.
    """
    t_start = time.monotonic()
    fleet = problem.fleet
    gpus = {g.name: g for g in fleet.gpu_types}
    sites = {s.name: s for s in fleet.sites}
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    latency = latency_table(fleet) if fleet.regions else {}

    members: dict[GroupKey, list[Node]] = defaultdict(list)
    for n in fleet.nodes:
        if n.state is NodeState.READY and n.gpu_count > 0:
            members[(n.site, n.power_domain, n.gpu_type, n.gpu_count, n.host_power_w)].append(n)
    keys = sorted(members)
    # nodes of a group differ only in cpu/host memory; the filter is read per distinct host shape
    shape_counts = [Counter((n.cpu_milli, n.host_memory_mib) for n in members[k]) for k in keys]

    lp = LinearProgram(maximize=True)
    inf = math.inf
    n_gpus = {k: k[3] * len(members[k]) for k in keys}
    dom_w = {d: dom.usable_power_w for d, dom in domains.items()}
    site_w = {s: site.usable_power_w for s, site in sites.items()}
    if residual is not None:
        n_gpus = {k: residual.free_gpus.get(k, 0) for k in keys}
        dom_w = {d: max(0, w - residual.domain_used_w.get(d, 0)) for d, w in dom_w.items()}
        site_w = {s: max(0, w - residual.site_used_w.get(s, 0)) for s, w in site_w.items()}
    gpu_rows = [lp.row(-inf, 1000.0 * n_gpus[k]) for k in keys]
    dom_rows = {d: lp.row(-inf, float(w)) for d, w in dom_w.items()}
    site_rows = {s: lp.row(-inf, float(w)) for s, w in site_w.items()}
    # a power row that even every READY GPU at full power cannot reach is redundant: no coefficients
    top_w: dict[tuple[str, str], float] = defaultdict(float)
    for k in keys:
        top_w[(k[0], k[1])] += n_gpus[k] * (k[4] / k[3] + gpus[k[2]].max_power_w)
    dom_binds = {d: top_w[d] > dom_w[d] for d in domains}
    site_top_w: dict[str, float] = defaultdict(float)
    for d in domains:
        site_top_w[d[0]] += min(top_w[d], dom_w[d])
    site_binds = {s: site_top_w[s] > site_w[s] for s in sites}

    # per workload: candidate groups with their per-node replica cap (summed over the group's nodes)
    by_site_type: dict[tuple[str, str], list[int]] = defaultdict(list)
    for gi, k in enumerate(keys):
        by_site_type[(k[0], k[2])].append(gi)
    types_at: dict[str, list[str]] = defaultdict(list)
    for site_name, t in sorted(by_site_type):
        types_at[site_name].append(t)
    per_node_cache: dict[tuple[Any, ...], int] = {}
    classes: dict[tuple[Any, ...], int] = defaultdict(int)
    class_members: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    entity_caps: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])  # per site, per domain
    # blast radius: per class and group, the sum of its members' replicas per node within max_per_node
    blast_room: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    dropped = 0
    for wi, w in enumerate(problem.workloads):
        if residual is not None and wi not in residual.workloads:
            continue
        if deadline is not None and time.monotonic() > deadline:
            return None
        allowed = set(w.allowed_gpu_types)
        shape_w = (w.gpus, w.gpu_milli, w.memory_gib, w.cpu_milli, w.host_memory_mib)
        cands: list[tuple[int, int]] = []  # (group index, replicas the group can hold)
        blast = w.capped and not w.pinned
        most_n = node_most(w)
        capped: list[int] = []  # per entry of cands, within max_per_node (blast only)
        for site_name, types in types_at.items():
            if not site_admits(w, sites[site_name], latency):
                continue
            for t in types:
                g = gpus[t]
                if (allowed and t not in allowed) or (w.is_fractional and not g.shareable):
                    continue
                for gi in by_site_type[(site_name, t)]:
                    k = keys[gi]
                    cap = 0
                    within = 0
                    for (cpu, mem), count in shape_counts[gi].items():
                        ck = (shape_w, t, k[3], cpu, mem)
                        per = per_node_cache.get(ck)
                        if per is None:
                            node = Node(
                                "", site_name, k[1], t, k[3], k[4], cpu_milli=cpu, host_memory_mib=mem
                            )
                            per = per_node_cache[ck] = _per_node_replicas(w, node, g.memory_gib)
                        cap += per * count
                        within += min(per, most_n) * count
                    if cap > 0 and n_gpus[k] > 0:
                        cands.append((gi, cap))
                        capped.append(within)
        room = _blast_room(w, cands, capped, keys) if blast else None
        if not cands or (not w.pinned and not _can_reach_min(w, cands, keys, members, room)):
            dropped += 1
            continue
        key = (
            tuple(cands),
            w.priority,
            w.is_fractional,
            w.min_power_cap_pct,
            w.work_milli,
            (w.cpu_milli, w.host_memory_mib),  # alike host requests: the packing row holds for the class sum
            _spread_kind(w),
            (w.max_per_node, w.max_per_power_domain) if blast else (0, 0),
        )
        most = max(w.max_replicas, len(w.current) if w.pinned else 0)
        classes[key] += w.work_milli * most
        class_members[key].append(wi)
        if blast:
            for (gi, _cap), within in zip(cands, capped, strict=True):
                blast_room[key][gi] += within
        site_cap, dom_cap = (most, most) if w.pinned else _entity_caps(w)
        entity_caps[key][0] += w.work_milli * site_cap
        entity_caps[key][1] += w.work_milli * dom_cap

    est = sum(len(k[0]) * (1 if k[2] else 3) for k in classes)
    if est > MAX_COLUMNS:
        log.info("group LP: about %d columns, over %d: not built (memory)", est, MAX_COLUMNS)
        return None
    n_vars = 0
    # per column, for the integer-domain bound: group index, level, work_milli, GPUs a replica (0: shared)
    meta = (array("i"), array("i"), array("i"), array("i"))
    pack_rows: list[tuple[int, int]] = []  # (row, group index)
    order = sorted(classes.items(), key=lambda kv: repr(kv[0]))
    columns: list[tuple[int, GroupKey, int]] = []  # per column: class, group key, level
    # the loop below writes about a million columns at L: its appends are bound once, and a
    # column's level options are worked out once per (GPU type, power floor, power binding)
    cols_of, coefs_of, col_obj, col_ub_of = lp.cols, lp.coefs, lp.obj, lp.col_ub
    m_gi, m_li, m_work, m_gpus = (a.append for a in meta)
    options_of: dict[tuple[str, int, bool, bool], list[tuple[int, int, float]]] = {}
    for ci, (ckey, demand) in enumerate(order):
        cands, priority, fractional, floor_pct, work_milli, _shape, _kind, caps = ckey
        class_within = blast_room.get(ckey) if caps != (0, 0) else None
        if deadline is not None and time.monotonic() > deadline:
            return None
        row = lp.row(0.0, float(demand))
        row_cols, row_coefs = cols_of[row].append, coefs_of[row].append
        site_cap, dom_cap = entity_caps[ckey]
        site_cap_rows: dict[str, int] = {}
        dom_cap_rows: dict[tuple[str, str], int] = {}
        probe = Workload(name="", min_power_cap_pct=floor_pct)
        replica_gpus = 0 if fractional else work_milli // 1000
        for gi, cap in cands:
            site_name, dom, t, count, host_w = keys[gi]
            g = gpus[t]
            host_share_w = host_w / count
            binds = dom_binds[(site_name, dom)] or site_binds[site_name]
            okey = (t, floor_pct, fractional, binds)
            options = options_of.get(okey)
            if options is None:
                if fractional:
                    options = [(-1, g.power_levels[-1].relative_throughput_pct, float(g.max_power_w))]
                else:
                    options = [
                        (i, g.power_levels[i].relative_throughput_pct, float(g.power_levels[i].power_cap_w))
                        for i in allowed_levels(probe, g)
                    ]
                    if not binds:
                        options = options[-1:]  # power is free here: lower levels are dominated
                options_of[okey] = options
            limit = float(cap * work_milli)
            if class_within is not None:  # the members' replicas per node within their max_per_node
                limit = min(limit, float(class_within[gi] * work_milli))
            pack_row = None
            col_ub = inf
            if limit < 1000.0 * n_gpus[keys[gi]] and limit < demand:
                if len(options) == 1:
                    col_ub = limit  # a row over one column is its bound
                else:
                    pack_row = lp.row(-inf, limit)
                    pack_rows.append((pack_row, gi))
            gpu_row = gpu_rows[gi]
            dom_row = dom_rows[(site_name, dom)] if dom_binds[(site_name, dom)] else None
            site_row = site_rows[site_name] if site_binds[site_name] else None
            for li, thr, cap_w in options:
                x = len(col_obj)
                col_obj.append(float(priority * thr))
                col_ub_of.append(col_ub)
                m_gi(gi)
                m_li(li)
                m_work(work_milli)
                m_gpus(replica_gpus)
                n_vars += 1
                if solution:
                    columns.append((ci, keys[gi], li))
                row_cols(x)
                row_coefs(1.0)
                lp.add(gpu_row, x, 1.0)
                if pack_row is not None:
                    lp.add(pack_row, x, 1.0)
                if site_cap < demand:
                    srow = site_cap_rows.get(site_name)
                    if srow is None:
                        srow = site_cap_rows[site_name] = lp.row(-inf, float(site_cap))
                    lp.add(srow, x, 1.0)
                if dom_cap < demand:
                    drow = dom_cap_rows.get((site_name, dom))
                    if drow is None:
                        drow = dom_cap_rows[(site_name, dom)] = lp.row(-inf, float(dom_cap))
                    lp.add(drow, x, 1.0)
                draw = (cap_w + host_share_w) / 1000.0
                if dom_row is not None:
                    lp.add(dom_row, x, draw)
                if site_row is not None:
                    lp.add(site_row, x, draw)
    log.info(
        "group LP: %d groups, %d classes, %d columns, %d workloads never placeable",
        len(keys),
        len(classes),
        n_vars,
        dropped,
    )
    if n_vars == 0:
        return GroupLP(0.0, (), ())
    t_build = time.monotonic()
    got = _solve_lp(lp, deadline)
    log.info("group LP: built in %.2f s, solved in %.2f s", t_build - t_start, time.monotonic() - t_build)
    if got is None:
        return None
    value, values, duals = got
    bound = math.floor(value * (1 + 1e-6) + 1.0)  # above the LP optimum despite solver tolerances
    domain_rows = None
    if residual is None:
        sizes = {k: (k[3], len(members[k])) for k in keys}
        domain_rows = _DomainRows(lp, duals, meta, pack_rows, keys, sizes, gpus, domains, gpu_rows, dom_rows)
    if not solution:
        return GroupLP(bound, (), (), None, domain_rows)
    cols = [(*columns[j], v) for j, v in enumerate(values) if v > _EPS]
    prices = Prices(
        {k: duals[gpu_rows[gi]] for gi, k in enumerate(keys)},
        {d: duals[r] for d, r in dom_rows.items()},
        {s: duals[r] for s, r in site_rows.items()},
    )
    return GroupLP(bound, tuple(tuple(class_members[k]) for k, _ in order), tuple(cols), prices, domain_rows)


INTEGER_MS_PER_DOMAIN = 200  # HiGHS per power domain; past it the MIP's own bound is taken


@dataclass(frozen=True)
class _DomainRows:
    """What ``integer_bound`` needs of a solved group LP: its rows, duals and columns."""

    lp: LinearProgram
    duals: list[float]
    meta: tuple[array[int], array[int], array[int], array[int]]
    pack_rows: list[tuple[int, int]]
    keys: list[GroupKey]
    sizes: dict[GroupKey, tuple[int, int]]  # GPUs a node, READY nodes
    gpus: dict[str, Any]
    domains: dict[tuple[str, str], Any]
    gpu_rows: list[int]
    dom_rows: dict[tuple[str, str], int]


def integer_bound(
    got: GroupLP, deadline: float | None = None, per_domain_ms: int | None = INTEGER_MS_PER_DOMAIN
) -> float | None:
    """A bound on tier 1 at most ``got.bound``: the LP's rows shared between power domains
    priced at its duals, each power domain whose power binds solved as an integer program.

    Lagrangian relaxation (valid for any prices >= 0): placed work <= sum over domains of
    the most a domain earns at reduced values + sum of price * right-hand side of the priced
    rows (class demand, class caps per site and domain, site power). A domain whose power row
    the LP leaves slack is bounded by its own rows' duals (weak duality of the domain's LP,
    so at the LP's optimum these sum to the LP bound); one whose power binds is solved with
    whole replicas, whole powered nodes (host and idle power paid per node, not per GPU in
    use) and a shared GPU per 1,000 thousandths: what the LP spreads over a rack's last
    watts in fractions of a node is what a plan cannot have. Whole-GPU columns alike in group,
    level and GPUs per replica keep only the best up to what the group holds (their per-node
    packing rows dropped: a relaxation). None without HiGHS, past ``deadline``, or for an LP
    over a ``Residual``.

    ``per_domain_ms`` limits each domain's MIP (its best bound is taken where it stops, so the
    result depends on the machine's speed); None solves each to optimality, which gives the
    same bound on any machine.
    """
    d_rows = got.domain_rows
    if d_rows is None:  # nothing placeable (a bound of 0), or an LP over a residual (no bound)
        return got.bound if not got.classes and got.bound == 0 else None
    lp, duals, keys = d_rows.lp, d_rows.duals, d_rows.keys
    m_group = d_rows.meta[0]
    row_dom: dict[int, tuple[str, str]] = {}  # the rows inside one domain
    for gi, k in enumerate(keys):
        row_dom[d_rows.gpu_rows[gi]] = (k[0], k[1])
    for d, r in d_rows.dom_rows.items():
        row_dom[r] = d
    for r, gi in d_rows.pack_rows:
        row_dom[r] = (keys[gi][0], keys[gi][1])
    reduced = array("d", lp.obj)  # value less the priced rows' duals
    const = sum(_price_row(lp, r, duals[r], reduced) for r in range(len(lp.lb)) if r not in row_dom)
    rest = array("d", reduced)  # less the domain rows' duals too: the domain LP's reduced costs
    cert: dict[tuple[str, str], float] = defaultdict(float)
    for r, d in row_dom.items():
        cert[d] += _price_row(lp, r, duals[r], rest)
    by_dom: dict[tuple[str, str], list[int]] = defaultdict(list)
    for x, v in enumerate(reduced):
        if v > _EPS:
            k = keys[m_group[x]]
            by_dom[(k[0], k[1])].append(x)
    total = const
    solved = 0
    for d, xs in by_dom.items():
        if deadline is not None and time.monotonic() > deadline:
            return None
        finite = True  # the domain's LP has a finite dual bound: its duals, plus what columns exceed them
        for x in xs:
            if rest[x] > _EPS:
                if lp.col_ub[x] == math.inf:
                    finite = False
                    break
                cert[d] += rest[x] * lp.col_ub[x]
        if finite and not (d in d_rows.dom_rows and duals[d_rows.dom_rows[d]] > _EPS):
            total += cert[d]
            continue
        got_d = _domain_mip(d_rows, d, xs, reduced, per_domain_ms)
        if got_d is None:  # no answer from the MIP: the domain's LP bound, where there is one
            if not finite:
                return None
            got_d = cert[d]
        total += min(got_d, cert[d]) if finite else got_d
        solved += 1
    log.info("integer bound: %d of %d power domains solved as integer programs", solved, len(by_dom))
    return min(got.bound, math.floor(total * (1 + 1e-6) + 1.0))


def _price_row(lp: LinearProgram, r: int, dual: float, values: array[float]) -> float:
    """Take row ``r`` at price ``max(0, dual)`` out of the columns' ``values``; returns price x
    right-hand side (0 for a row without coefficients)."""
    pi = max(0.0, dual)
    if pi == 0.0 or not lp.cols[r]:
        return 0.0
    for c, a in zip(lp.cols[r], lp.coefs[r], strict=True):
        values[c] -= pi * a
    return pi * lp.ub[r]


def _domain_mip(
    d_rows: _DomainRows,
    d: tuple[str, str],
    xs: list[int],
    reduced: array[float],
    limit_ms: int | None,
) -> float | None:
    """The most domain ``d`` earns at ``reduced`` values as an integer program (its MIP bound)."""
    lp, keys = d_rows.lp, d_rows.keys
    m_group, m_level, m_work, m_gpus = d_rows.meta
    mip = LinearProgram(maximize=True)
    inf = math.inf
    power = mip.row(-inf, float(d_rows.domains[d].usable_power_w))
    gpu_ct: dict[int, int] = {}
    shared_ct: dict[int, int] = {}
    for gi in sorted({m_group[x] for x in xs}):
        k = keys[gi]
        g = d_rows.gpus[k[2]]
        per_node, nodes = d_rows.sizes[k]
        on = mip.int_col(nodes)  # nodes powered: host and every GPU's idle power each
        mip.add(power, on, float(k[4] + per_node * g.idle_power_w))
        shared = mip.int_col(per_node * nodes)  # shared GPUs in use
        mip.add(power, shared, float(g.max_power_w - g.idle_power_w))
        gpu_ct[gi] = mip.row(-inf, 0.0)
        mip.add(gpu_ct[gi], on, -float(per_node))
        mip.add(gpu_ct[gi], shared, 1.0)
        shared_ct[gi] = mip.row(-inf, 0.0)
        mip.add(shared_ct[gi], shared, -1000.0)
    alike: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    shared_xs: list[int] = []
    for x in xs:
        if m_gpus[x] > 0:
            alike[(m_group[x], m_level[x], m_gpus[x])].append(x)
        else:
            shared_xs.append(x)
    for (gi, li, gp), group_xs in alike.items():
        k = keys[gi]
        g = d_rows.gpus[k[2]]
        room = d_rows.sizes[k][0] * d_rows.sizes[k][1] // gp
        draw = float(gp * (g.power_levels[li].power_cap_w - g.idle_power_w))
        group_xs.sort(key=lambda x: -reduced[x])
        for x in group_xs:
            ub = lp.col_ub[x]
            most = math.floor(ub / m_work[x] + 1e-9) if ub < math.inf else room
            v = mip.int_col(min(most, room), obj=reduced[x] * m_work[x])
            mip.add(gpu_ct[gi], v, float(gp))
            mip.add(power, v, draw)
            room -= most
            if room <= 0:
                break
    packs: dict[int, int] = {}
    pack_of: dict[int, list[int]] = defaultdict(list)
    for r, gi in d_rows.pack_rows:
        if (keys[gi][0], keys[gi][1]) == d:
            for c in lp.cols[r]:
                pack_of[c].append(r)
    for x in shared_xs:
        ub = lp.col_ub[x]
        v = mip.col(obj=reduced[x], ub=ub)
        mip.add(shared_ct[m_group[x]], v, 1.0)
        for r in pack_of.get(x, ()):
            ct = packs.get(r)
            if ct is None:
                ct = packs[r] = mip.row(-inf, lp.ub[r])
            mip.add(ct, v, 1.0)
    got = solve_linear(mip, LinearSolver.HIGHS, time_limit_s=None if limit_ms is None else limit_ms / 1000.0)
    if not got.has_solution:
        return None
    return got.bound


def _solve_lp(lp: LinearProgram, deadline: float | None) -> tuple[float, list[float], list[float]] | None:
    """(optimum, column values, row duals (0 for a row without coefficients)) of ``lp`` by GLOP,
    or None (deadline, not optimal)."""
    limit_s = None if deadline is None else deadline - time.monotonic()
    got = solve_linear(lp, LinearSolver.GLOP, time_limit_s=limit_s)
    if got.status is not SolveStatus.OPTIMAL:  # at its deadline (expected under short limits), or failed
        level = logging.INFO if got.stop_reason is StopReason.TIME_LIMIT else logging.WARNING
        log.log(level, "group LP: %s (%s); no bound", got.status.value, got.stop_reason.value)
        return None
    if got.objective is None or got.values is None or got.duals is None:
        return None
    return got.objective, got.values, got.duals


# ------------------------------------------------ the site-level relaxation of the filter


@dataclass
class SiteIndex:
    """What the site-level relaxation of the filter needs, per site and GPU type (also what
    ``placement.run.partition`` splits a fleet by)."""

    ready_gpus: dict[str, int]
    by_type: dict[SiteType, list[Node]]  # READY nodes
    counts: dict[SiteType, list[int]]  # sorted gpu counts of READY nodes
    domain_max: dict[SiteType, list[int]]  # sorted, per power domain: its largest READY node of the type
    capacity_milli: dict[SiteType, float]  # GPU thousandths, scaled by rack and site power caps
    types_at: dict[str, list[str]]


def site_index(problem: Problem) -> SiteIndex:
    fleet = problem.fleet
    gpus = {g.name: g for g in fleet.gpu_types}
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    by_type: dict[SiteType, list[Node]] = defaultdict(list)
    ready_gpus: dict[str, int] = defaultdict(int)
    nameplate_dom: dict[tuple[str, str], int] = defaultdict(int)
    nameplate_site: dict[str, int] = defaultdict(int)
    for n in fleet.nodes:
        if n.state is not NodeState.READY:
            continue
        by_type[(n.site, n.gpu_type)].append(n)
        ready_gpus[n.site] += n.gpu_count
        np_w = n.host_power_w + n.gpu_count * gpus[n.gpu_type].max_power_w
        nameplate_dom[(n.site, n.power_domain)] += np_w
        nameplate_site[n.site] += np_w
    site_factor = {
        s.name: min(1.0, s.usable_power_w / nameplate_site[s.name]) if nameplate_site[s.name] else 0.0
        for s in fleet.sites
    }
    dom_factor = {k: min(1.0, domains[k].usable_power_w / w) if w else 0.0 for k, w in nameplate_dom.items()}
    capacity: dict[SiteType, float] = defaultdict(float)
    counts: dict[SiteType, list[int]] = {}
    domain_max: dict[SiteType, list[int]] = {}
    types_at: dict[str, list[str]] = defaultdict(list)
    for key, nodes in by_type.items():
        site = key[0]
        types_at[site].append(key[1])
        per_dom: dict[str, int] = defaultdict(int)
        for n in nodes:
            capacity[key] += 1000.0 * n.gpu_count * dom_factor[(site, n.power_domain)] * site_factor[site]
            per_dom[n.power_domain] = max(per_dom[n.power_domain], n.gpu_count)
        counts[key] = sorted(n.gpu_count for n in nodes)
        domain_max[key] = sorted(per_dom.values())
    return SiteIndex(dict(ready_gpus), dict(by_type), counts, domain_max, dict(capacity), dict(types_at))


def candidate_pairs(
    problem: Problem, ix: SiteIndex, latency: dict[tuple[str, str], float]
) -> list[list[SiteType]]:
    """Per workload, the (site, type) pairs the site-level relaxation of the filter allows."""
    gpus = {g.name: g for g in problem.fleet.gpu_types}
    sites = {s.name: s for s in problem.fleet.sites}
    out: list[list[SiteType]] = []
    for w in problem.workloads:
        pairs: list[SiteType] = []
        allowed = set(w.allowed_gpu_types)
        for site_name, types in ix.types_at.items():
            if not site_admits(w, sites[site_name], latency):
                continue
            for t in types:
                g = gpus[t]
                if allowed and t not in allowed:
                    continue
                if w.is_fractional and not g.shareable:
                    continue
                if memory_milli_gib(w.memory_per_gpu_gib) > memory_milli_gib(g.memory_gib):
                    continue
                if not w.is_fractional and ix.counts[(site_name, t)][-1] < w.gpus:
                    continue
                pairs.append((site_name, t))
        out.append(sorted(pairs))
    return out


def relaxation_bound(problem: Problem) -> float | None:
    """An upper bound on tier 1 from a linear relaxation at (site, GPU type) level, or None.

    Per (site, GPU type) the GPU thousandths of READY nodes, per (site, GPU type) the usable
    power of the power domains holding that type, per site its usable power, per workload its
    work at ``max_replicas``, on the candidate (site, type) pairs (``candidate_pairs``) and the
    power levels the workload accepts. The GPU thousandths of a (site, type) are also capped,
    power domain by power domain, by what the domain's usable power feeds at the type's lowest
    cap (a rack with GPUs but no power left cannot lend its GPUs to a rack with power but no
    GPUs left); each GPU thousandth at a level draws at least ``(cap + host / gpu_count) /
    1000`` W (a powered node's host draw spread over its GPUs, the smallest over the type's
    nodes in the site; a shared GPU runs uncapped). Integrality, min replicas, spread and
    survival are dropped, so every valid plan is a feasible point and the LP optimum (plus a
    small tolerance) bounds tier 1. Under a second at 40,000 GPUs; ``group_lp`` is tighter.
    """
    fleet = problem.fleet
    ix = site_index(problem)
    latency = latency_table(fleet) if fleet.regions else {}
    pairs_of = candidate_pairs(problem, ix, latency)
    gpus = {g.name: g for g in fleet.gpu_types}
    domains = {(d.site, d.name): d for d in fleet.power_domains}
    lp = LinearProgram(maximize=True)
    inf = math.inf
    # host draw per GPU, the least over the type's READY nodes in the site
    host_per_gpu = {p: min(n.host_power_w / n.gpu_count for n in nodes) for p, nodes in ix.by_type.items()}
    type_power_w: dict[SiteType, int] = {}
    for p, nodes in ix.by_type.items():
        doms = {(n.site, n.power_domain) for n in nodes}
        type_power_w[p] = sum(domains[d].usable_power_w for d in doms)
    # GPU thousandths a (site, type) can run: per power domain, its GPUs of the type, and no more
    # than its usable power feeds at the type's lowest draw per GPU (lowest cap + least host share)
    powered_milli: dict[SiteType, float] = {}
    for p, nodes in ix.by_type.items():
        g = gpus[p[1]]
        per_dom: dict[tuple[str, str], list[Node]] = defaultdict(list)
        for n in nodes:
            per_dom[(n.site, n.power_domain)].append(n)
        total = 0.0
        for d, dn in per_dom.items():
            least_w = g.power_levels[0].power_cap_w + min(n.host_power_w / n.gpu_count for n in dn)
            total += min(1000.0 * sum(n.gpu_count for n in dn), 1000.0 * domains[d].usable_power_w / least_w)
        powered_milli[p] = total
    gpu_rows: dict[SiteType, int] = {}
    pow_rows: dict[SiteType, int] = {}
    site_rows: dict[str, int] = {}
    for p in ix.by_type:
        gpu_rows[p] = lp.row(-inf, powered_milli[p])
        pow_rows[p] = lp.row(-inf, float(type_power_w[p]))
    for s in fleet.sites:
        site_rows[s.name] = lp.row(-inf, float(s.usable_power_w))
    # workloads alike in what the relaxation reads share their columns: one row holds their work
    classes: dict[tuple[tuple[SiteType, ...], int, bool, int], int] = defaultdict(int)
    for wi, w in enumerate(problem.workloads):
        if pairs_of[wi]:
            key = (tuple(pairs_of[wi]), w.priority, w.is_fractional, w.min_power_cap_pct)
            classes[key] += w.work_milli * w.max_replicas
    for (pairs, priority, fractional, floor_pct), work in sorted(classes.items(), key=lambda kv: repr(kv[0])):
        row = lp.row(0.0, float(work))
        probe = Workload(name="", min_power_cap_pct=floor_pct)
        for p in pairs:
            g = gpus[p[1]]
            if fractional:
                options = [(g.power_levels[-1].relative_throughput_pct, float(g.max_power_w))]
            else:
                options = [
                    (g.power_levels[i].relative_throughput_pct, float(g.power_levels[i].power_cap_w))
                    for i in allowed_levels(probe, g)
                ]
            for thr, cap_w in options:
                x = lp.col(obj=float(priority * thr))
                lp.add(row, x, 1.0)
                lp.add(gpu_rows[p], x, 1.0)
                draw = (cap_w + host_per_gpu[p]) / 1000.0
                lp.add(pow_rows[p], x, draw)
                lp.add(site_rows[p[0]], x, draw)
    if lp.num_cols == 0:
        return 0.0
    got = solve_linear(lp, LinearSolver.GLOP)
    if got.status is not SolveStatus.OPTIMAL or got.objective is None:
        log.warning("relaxation bound: %s; no bound", got.status.value)
        return None
    return math.floor(got.objective * (1 + 1e-6) + 1.0)  # above the LP optimum despite solver tolerances


def _spread_kind(w: Workload) -> tuple[bool, str]:
    """What ``_entity_caps`` reads of a workload: site survival, and the level of a spread over 2+."""
    level = w.spread.level.value if w.spread is not None and w.spread.min_distinct > 1 else ""
    return (w.survivors_required > 0, level)


def _entity_caps(w: Workload) -> tuple[int, int]:
    """Replicas of ``w`` that one site and one power domain hold at most in any valid plan.

    Site survival (rule 12): placed - (replicas on the largest site) >= survivors_required, so a
    site holds at most max_replicas - survivors_required. Spread over k distinct sites or
    power domains (rule 11): the k - 1 others hold one each at least, so one holds at most
    max_replicas - (k - 1).
    """
    most = w.max_replicas
    site = dom = most
    if w.max_per_power_domain:  # rule 16
        dom = min(dom, w.max_per_power_domain)
    if w.survivors_required > 0:
        site = most - w.survivors_required
    if w.spread is not None and w.spread.min_distinct > 1:
        spare = most - (w.spread.min_distinct - 1)
        if w.spread.level is SpreadLevel.SITE:
            site = min(site, spare)
        elif w.spread.level is SpreadLevel.POWER_DOMAIN:
            dom = min(dom, spare)
    return max(site, 0), max(dom, 0)


def _blast_room(w: Workload, cands: list[tuple[int, int]], capped: list[int], keys: list[GroupKey]) -> int:
    """The most replicas of ``w`` its candidate groups hold within its blast-radius caps (rule 16):
    ``capped`` (per group, within ``max_per_node``) summed per power domain, each domain at most
    ``max_per_power_domain``."""
    per_domain: dict[tuple[str, str], int] = defaultdict(int)
    for (gi, _cap), within in zip(cands, capped, strict=True):
        per_domain[(keys[gi][0], keys[gi][1])] += within
    if w.max_per_power_domain:
        return sum(min(r, w.max_per_power_domain) for r in per_domain.values())
    return sum(per_domain.values())


def _can_reach_min(
    w: Workload,
    cands: list[tuple[int, int]],
    keys: list[GroupKey],
    members: dict[GroupKey, list[Node]],
    room: int | None = None,
) -> bool:
    """False when min_replicas cannot be met on the candidates alone (``room``: the most they hold
    within the blast-radius caps, where given): then the workload is never placed."""
    need = max(w.min_replicas, 1)
    if sum(cap for _gi, cap in cands) < need or (room is not None and room < need):
        return False
    cand_sites = {keys[gi][0] for gi, _ in cands}
    if w.survivors_required > 0 and len(cand_sites) < 2:
        return False
    if w.spread is not None and w.spread.min_distinct > 1:
        if w.spread.level is SpreadLevel.SITE:
            distinct = len(cand_sites)
        elif w.spread.level is SpreadLevel.POWER_DOMAIN:
            distinct = len({(keys[gi][0], keys[gi][1]) for gi, _ in cands})
        else:
            distinct = sum(len(members[keys[gi]]) for gi, _ in cands)
        if distinct < w.spread.min_distinct:
            return False
    return True
