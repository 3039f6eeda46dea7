"""Partitioned solve: groups of whole sites solved independently and combined into one verified plan.

    split -> sub-problems -> solve each (process pool or Ray) -> combine -> budgets, objective,
    unplaced reasons -> verify -> Plan

Groups
------
``partition(problem, groups)`` splits the sites into ``groups`` groups of whole sites
(a power domain lies inside one site, so it never straddles groups), balanced on two
loads at once: READY GPUs and usable site power, each as a share of the fleet. Regions
start as single units; while the longest-processing-time packing of the units is more
than ``BALANCE_TOLERANCE`` above the ideal share in either load, the heaviest unit of
several sites is split in two (its sites packed in two halves). So a region's sites stay
together unless balance needs them apart.

Workloads
---------
A workload's *candidate sites* come from a relaxation of the candidate filter, at site
level: a site is a candidate when it has a READY node of an allowed GPU type with the
memory per GPU, the GPU count (whole replicas) or a shareable GPU (fractional ones), and
passes the latency and backup rules. Power, host resources and power-cap floors are not
checked, so the candidate set is a superset of the engine's: every node the engine
would allow lies in a candidate site.

* candidates in one group: the workload goes there;
* candidates in several groups (*spanning*): largest work first (``priority *
  work_milli * max_replicas``), it goes to the group with the most free candidate
  capacity at that point (GPU thousandths, scaled down by the power caps of racks and
  sites, minus what the workloads already assigned claim at ``max_replicas``, which may
  go below zero when demand exceeds the capacity); a group
  holding most of its current replicas is preferred when its free capacity covers the
  workload. Groups that cannot satisfy its spread (distinct candidate sites, power domains
  or nodes) or site-loss survival (two candidate sites) alone are skipped; when none can,
  but the whole fleet could, it is left unplaced with the rule ``partitioning``;
* no candidate site at all, or rules the whole fleet cannot satisfy either: left out of
  every group and explained on the whole problem by the candidate filter;
* pinned: in the group of its current nodes; a pinned workload whose current nodes lie in
  several groups is split into one pinned piece per group (its replicas stay exactly
  where they are, so nothing is lost); other current replicas are kept in the
  sub-problem only where their node lies in the workload's group (the rest count as moves).

Each sub-problem holds its group's sites, power domains and nodes, every GPU type and
user region, and one link per (region, site) with the whole fleet's shortest-path
latency, so the latency rule reads exactly the same numbers as on the whole fleet.

The bound
---------
The sum of the parts' tier-1 bounds is not a bound of the whole problem: a plan of the
whole may place a spanning workload across groups, or in a group other than the one
partitioning chose. ``SolveInfo.bound`` of the combined plan is the minimum of:

1. ``sum_g B_g + W_span``. Take an optimal plan P* of the whole problem and delete
   every spanning workload from it (all of its replicas). Each remaining workload has all
   its candidate nodes, hence all its replicas, inside its own group, and deleting whole
   workloads keeps every hard rule (power only drops; all-or-nothing, spread and survival
   are per workload). So the rest of P*, cut at group borders, is a feasible plan of each
   sub-problem (whose other workloads it leaves out; pinned pieces are in P* as they are).
   Hence ``OPT_whole <= sum_g OPT_g + W_span <= sum_g B_g + W_span``, where ``B_g`` is the
   part's proven tier-1 bound (or the most its workloads can earn when a part proves none)
   and ``W_span`` the most the spanning workloads can earn (``priority * work_milli *
   max_replicas *`` the best throughput of any level). This also bounds what partitioning
   can cost: ``OPT_whole - sum_g OPT_g <= W_span``.
2. the (site, GPU type) linear relaxation of the whole problem
   (``placement.bounds.bound.relaxation_bound``), whose candidate (site, type) pairs are the ones
   the split reads (``placement.bounds.bound.candidate_pairs``).
3. ``whole_bound``, when the caller has one (the single-process solve's proven bound).

So ``gap = (bound - placed_work) / bound`` covers the solver's gap in each part *and* what
partitioning cost; ``PartitionStats.partition_cost_bound`` is ``W_span``.

Time: the parts get what is left of the time limit after splitting (and starting Ray),
minus a margin for combining and verifying (10% + 0.5 s). The parts run on an executor of
``placement.run.executors``: a process pool of ``processes`` (default 2) or Ray tasks, one
CPU each. When there are more parts than slots (processes, or the Ray cluster's CPUs) they
run in waves, and with ``fit_time_limit`` (the default) each part gets its wave's share, so
that the whole stays within the limit; ``fit_time_limit=False`` gives every part the whole
remaining time. ``PartStats.node`` and ``.pid`` say where each part ran.

Re-plans
--------
Where workloads run (``current``), the combined plan lists its moves (``Plan.displaced``, the
move curve) against the whole problem's current placement and carries its migration sequence,
checked by the transient verifier, as the single-process solve's does. Under a disruption
budget (``options.budgeted`` or a workload's ``max_unavailable``) the problem is solved whole
(``PartitionStats.executor == "whole"``, with a note): the moves, the budgets and upward-only
preemption span the groups, and a running workload split over groups would spend the budget
in parts that cannot see one another; the re-plan's own methods (``keep_current``, ``earn``)
grow linearly with the fleet.

``W_span`` can be loose (when most workloads have candidate sites in several groups); the
combined gap always holds: ``OPT_whole <= bound``, so ``OPT_whole - placed_work <= gap * bound``.
Measurements: docs/experiments/2026-11-29-partitioned-and-ray.md.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from placement.bounds.bound import SiteIndex, SiteType, candidate_pairs, relaxation_bound, site_index
from placement.core.budgets import compute_budgets
from placement.core.domain import (
    Fleet,
    Link,
    Plan,
    Problem,
    Reason,
    ReplicaPlacement,
    SolveInfo,
    SolveStatus,
    SpreadLevel,
    StopReason,
    UnplacedWorkload,
    Workload,
)
from placement.core.moves import displaced, move_curve
from placement.core.network import latency_table
from placement.core.objective import evaluate
from placement.exact.backends.linear import versions
from placement.run.executors import RAY_CONNECT_TIMEOUT_S, PartResult, run_local, run_ray

log = logging.getLogger(__name__)

BALANCE_TOLERANCE = 0.1  # a group may carry up to 10% more than 1/groups of GPUs or power
MARGIN_FRACTION = 0.1
MARGIN_S = 0.5
PARTITIONING = "partitioning"
_EPS = 1e-6


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Partition:
    """The groups, their sub-problems and what partitioning did with each workload."""

    sites: tuple[tuple[str, ...], ...]  # site names per group
    problems: tuple[Problem, ...]
    group_of: dict[str, int]  # workload name -> group (pinned pieces: the group of their first node)
    spanning: tuple[str, ...]  # workloads whose candidate sites lie in more than one group
    spanning_work: int  # W_span: the most tier-1 work the spanning workloads can earn
    left_out: tuple[str, ...]  # in no group: "partitioning" or no candidate anywhere
    reasons: dict[str, tuple[Reason, ...]]  # reasons for the left-out workloads


@dataclass(frozen=True)
class PartStats:
    group: int
    sites: int
    nodes: int
    gpus: int
    workloads: int
    status: str
    placed_work: int
    bound: float | None
    wall_s: float
    node: str = ""  # where it ran: the Ray node id, or "local"
    pid: int = 0  # the process that solved it (0: not solved)


@dataclass(frozen=True)
class PartitionStats:
    groups: int
    executor: str
    parts: tuple[PartStats, ...]
    spanning_workloads: int
    left_out_partitioning: int
    partition_cost_bound: int  # W_span: OPT_whole - sum of the parts' optima is at most this
    bound_parts: float  # sum_g B_g + W_span
    bound_relaxation: float | None
    split_s: float
    solve_s: float
    combine_s: float
    wall_s: float = 0.0
    waves: int = 1  # rounds of parts, when there are more parts than slots
    part_time_limit_s: float = 0.0  # each part's time limit
    notes: tuple[str, ...] = field(default_factory=tuple)


def _count_at_least(sorted_counts: list[int], k: int) -> int:
    return len(sorted_counts) - bisect.bisect_left(sorted_counts, k)


def _can_hold(w: Workload, pairs: Sequence[SiteType], ix: SiteIndex) -> bool:
    """Can these candidate pairs alone satisfy the workload's spread and site-loss survival (relaxed)?"""
    if not pairs:
        return False
    sites = {s for s, _ in pairs}
    if w.survivors_required > 0 and len(sites) < 2:
        return False
    if w.spread is None:
        return True
    need = max(1, w.gpus)
    if w.spread.level is SpreadLevel.SITE:
        distinct = len(sites)
    elif w.spread.level is SpreadLevel.POWER_DOMAIN:
        distinct = sum(_count_at_least(ix.domain_max[p], need) for p in pairs)
    else:
        distinct = sum(_count_at_least(ix.counts[p], need) for p in pairs)
    return distinct >= w.spread.min_distinct


def _max_pct(problem: Problem) -> int:
    return max(
        (lv.relative_throughput_pct for g in problem.fleet.gpu_types for lv in g.power_levels), default=0
    )


def max_work(w: Workload, pct: int) -> int:
    """The most tier-1 work a workload can earn: all of its max replicas at ``pct``."""
    return w.priority * w.work_milli * pct * w.max_replicas


# --------------------------------------------------------------------------- the groups


def _pack(units: list[list[str]], weight: dict[str, tuple[float, float]], k: int) -> list[list[str]]:
    """Longest processing time first on two loads: each unit to the group whose worse load stays lowest."""
    loads = [(0.0, 0.0)] * k
    groups: list[list[str]] = [[] for _ in range(k)]

    def unit_w(u: list[str]) -> tuple[float, float]:
        return (sum(weight[s][0] for s in u), sum(weight[s][1] for s in u))

    for u in sorted(units, key=lambda u: (-max(unit_w(u)), u)):
        a, b = unit_w(u)
        best = min(range(k), key=lambda g: (max(loads[g][0] + a, loads[g][1] + b), g))
        loads[best] = (loads[best][0] + a, loads[best][1] + b)
        groups[best].extend(u)
    return groups


def _imbalance(groups: list[list[str]], weight: dict[str, tuple[float, float]], k: int) -> float:
    worst = 0.0
    for g in groups:
        worst = max(worst, sum(weight[s][0] for s in g), sum(weight[s][1] for s in g))
    return worst * k  # 1.0 is perfect balance


def site_groups(problem: Problem, groups: int) -> list[list[str]]:
    """Whole sites in ``groups`` groups (fewer when there are fewer sites), balanced on GPUs and power."""
    fleet = problem.fleet
    ix = site_index(problem)
    k = max(1, min(groups, len(fleet.sites)))
    if k < groups:
        log.warning("only %d sites: %d groups instead of %d", len(fleet.sites), k, groups)
    total_gpus = sum(ix.ready_gpus.values()) or 1
    total_w = sum(s.usable_power_w for s in fleet.sites) or 1
    weight = {
        s.name: (ix.ready_gpus.get(s.name, 0) / total_gpus, s.usable_power_w / total_w) for s in fleet.sites
    }
    by_region: dict[str, list[str]] = defaultdict(list)
    for s in fleet.sites:
        by_region[s.region].append(s.name)
    units = [sorted(v) for _, v in sorted(by_region.items())]
    while True:
        packed = _pack(units, weight, k) if len(units) >= k else None
        if packed is not None and (all(packed) and _imbalance(packed, weight, k) <= 1.0 + BALANCE_TOLERANCE):
            break
        splittable = [u for u in units if len(u) > 1]
        if not splittable:
            packed = _pack(units, weight, k)
            break
        heaviest = max(splittable, key=lambda u: (max(sum(weight[s][i] for s in u) for i in (0, 1)), u))
        units.remove(heaviest)
        units.extend(_pack([[s] for s in heaviest], weight, 2))
    return [sorted(g) for g in packed if g]


# ------------------------------------------------------------------------ the partition


def _sub_fleet(fleet: Fleet, sites: set[str], latency: dict[tuple[str, str], float]) -> Fleet:
    links = tuple(Link(region, site, ms) for (region, site), ms in sorted(latency.items()) if site in sites)
    return Fleet(
        gpu_types=fleet.gpu_types,
        sites=tuple(s for s in fleet.sites if s.name in sites),
        power_domains=tuple(d for d in fleet.power_domains if d.site in sites),
        nodes=tuple(n for n in fleet.nodes if n.site in sites),
        regions=fleet.regions,
        links=links,
    )


def split(problem: Problem, groups: int) -> Partition:
    """The groups, their sub-problems and the bookkeeping the bound needs (see the module docstring)."""
    fleet = problem.fleet
    group_sites = site_groups(problem, groups)
    k = len(group_sites)
    site_group = {s: g for g, ss in enumerate(group_sites) for s in ss}
    node_site = {n.name: n.site for n in fleet.nodes}
    latency = latency_table(fleet) if fleet.regions else {}
    ix = site_index(problem)
    pairs_of = candidate_pairs(problem, ix, latency)
    pct = _max_pct(problem)
    free = dict(ix.capacity_milli)

    def claim(w: Workload, pairs: Sequence[SiteType]) -> None:
        """Take the workload's demand at max replicas from its pairs, in proportion to their capacity."""
        demand = float(w.work_milli * w.max_replicas)
        total = sum(ix.capacity_milli[p] for p in pairs)
        for p in pairs:
            free[p] -= demand * (ix.capacity_milli[p] / total if total > 0 else 1.0 / len(pairs))

    members: list[list[Workload]] = [[] for _ in range(k)]
    group_of: dict[str, int] = {}
    spanning: list[str] = []
    span_work = 0
    left_out: list[str] = []
    reasons: dict[str, tuple[Reason, ...]] = {}
    to_explain: list[int] = []
    pending: list[int] = []

    for wi, w in enumerate(problem.workloads):
        pairs = pairs_of[wi]
        cand_groups = sorted({site_group[s] for s, _ in pairs})
        if len(cand_groups) > 1:
            spanning.append(w.name)
            span_work += max_work(w, pct)
        by_group: dict[int, list[Any]] = defaultdict(list)
        if w.pinned:
            for cr in w.current:
                if cr.node in node_site:  # an unknown node is for the validator to report
                    by_group[site_group[node_site[cr.node]]].append(cr)
        if by_group:
            if len(by_group) == 1:
                g = next(iter(by_group))
                members[g].append(w)
            else:
                for g, crs in sorted(by_group.items()):
                    piece = replace(
                        w,
                        current=tuple(crs),
                        min_replicas=len(crs),
                        max_replicas=len(crs),
                        spread=None,
                        survive_site_loss_pct=0,
                    )
                    members[g].append(piece)
                g = min(by_group)
            group_of[w.name] = g
            claim(w, pairs)
            continue
        if not pairs or not _can_hold(w, pairs, ix):
            to_explain.append(wi)
            continue
        if len(cand_groups) == 1:
            g = cand_groups[0]
            members[g].append(_in_group(w, group_sites[g], node_site))
            group_of[w.name] = g
            claim(w, pairs)
        else:
            pending.append(wi)

    pending.sort(key=lambda wi: (-max_work(problem.workloads[wi], 1), problem.workloads[wi].name))
    for wi in pending:
        w = problem.workloads[wi]
        pairs = pairs_of[wi]
        options = []
        for g in range(k):
            mine = [p for p in pairs if site_group[p[0]] == g]
            if mine and _can_hold(w, mine, ix):
                options.append((g, mine, sum(free[p] for p in mine)))
        if not options:
            left_out.append(w.name)
            reasons[w.name] = (
                Reason(
                    PARTITIONING,
                    f"{w.name}'s candidate sites lie in {len({site_group[s] for s, _ in pairs})} of "
                    f"{k} site groups and its "
                    + ("spread" if w.spread is not None else "")
                    + (" and " if w.spread is not None and w.survivors_required > 0 else "")
                    + ("site-loss survival" if w.survivors_required > 0 else "")
                    + " needs sites in more than one group; no group can hold it alone",
                    0,
                ),
            )
            continue
        demand = w.work_milli * w.max_replicas
        here = Counter(site_group[node_site[cr.node]] for cr in w.current if cr.node in node_site)
        chosen = max(options, key=lambda o: (o[2], -o[0]))
        if here:
            home = here.most_common(1)[0][0]
            for o in options:
                if o[0] == home and o[2] >= demand:
                    chosen = o
        g = chosen[0]
        members[g].append(_in_group(w, group_sites[g], node_site))
        group_of[w.name] = g
        claim(w, chosen[1])

    if to_explain:
        reasons.update(_explain_whole(problem, to_explain))
        left_out.extend(problem.workloads[wi].name for wi in to_explain)

    problems = []
    for g, sites in enumerate(group_sites):
        fleet_g = _sub_fleet(fleet, set(sites), latency)
        problems.append(Problem(fleet=fleet_g, workloads=tuple(members[g]), options=problem.options))
    log.info(
        "partition: %d groups of %s sites, %s workloads; %d spanning, %d left out",
        k,
        [len(s) for s in group_sites],
        [len(m) for m in members],
        len(spanning),
        len(left_out),
    )
    return Partition(
        sites=tuple(tuple(s) for s in group_sites),
        problems=tuple(problems),
        group_of=group_of,
        spanning=tuple(spanning),
        spanning_work=span_work,
        left_out=tuple(left_out),
        reasons=reasons,
    )


def _in_group(w: Workload, sites: Sequence[str], node_site: dict[str, str]) -> Workload:
    """The workload with only the current replicas whose node lies in the group."""
    if not w.current:
        return w
    keep = set(sites)
    current = tuple(cr for cr in w.current if node_site.get(cr.node) in keep)
    return w if len(current) == len(w.current) else replace(w, current=current)


def _explain_whole(problem: Problem, indices: list[int]) -> dict[str, tuple[Reason, ...]]:
    """Filter reasons on the whole fleet for workloads placed in no group."""
    from placement.core.candidates import filter_candidates
    from placement.core.explain import filter_reasons

    prepared = filter_candidates(problem, indices)
    out = {}
    for wi in indices:
        rs = filter_reasons(prepared, wi)
        if not rs:  # the relaxation said no, the filter found room: say what happened
            rs = [Reason(PARTITIONING, "no site group can hold it alone", 0)]
        out[problem.workloads[wi].name] = tuple(rs)
    return out


WHOLE_NOTE = (
    "a re-plan under disruption budgets is solved whole: its moves, budgets and upward-only "
    "preemption span the site groups"
)


def budgeted_replan(problem: Problem) -> bool:
    """Workloads run and a disruption budget covers some (``options.budgeted`` or a workload's
    ``max_unavailable``): the parts could not share the budget, so the solve is whole."""
    return any(w.running for w in problem.workloads) and (
        problem.options.budgeted or any(w.max_unavailable is not None for w in problem.workloads)
    )


def partition(problem: Problem, groups: int) -> list[Problem]:
    """Split the fleet into ``groups`` groups of whole sites, one sub-problem per group."""
    return list(split(problem, groups).problems)


# ---------------------------------------------------------------------------- solving


def solve_partitioned(
    problem: Problem,
    groups: int,
    executor: str = "local",
    address: str | None = None,
    time_limit_s: float | None = None,
    *,
    processes: int = 2,
    whole_bound: float | None = None,
    fit_time_limit: bool = True,
    connect_timeout_s: float = RAY_CONNECT_TIMEOUT_S,
) -> Plan:
    """Solve the sub-problems of ``partition(problem, groups)`` independently; one verified plan."""
    return solve_partitioned_stats(
        problem,
        groups,
        executor,
        address,
        time_limit_s,
        processes=processes,
        whole_bound=whole_bound,
        fit_time_limit=fit_time_limit,
        connect_timeout_s=connect_timeout_s,
    )[0]


def solve_partitioned_stats(
    problem: Problem,
    groups: int,
    executor: str = "local",
    address: str | None = None,
    time_limit_s: float | None = None,
    *,
    processes: int = 2,
    whole_bound: float | None = None,
    relaxation: bool = True,
    fit_time_limit: bool = True,
    connect_timeout_s: float = RAY_CONNECT_TIMEOUT_S,
) -> tuple[Plan, PartitionStats]:
    """``solve_partitioned`` with the figures a benchmark reports (``PartitionStats``).

    With ``executor="ray"`` and an ``address``, a cluster that cannot be reached or joined within
    ``connect_timeout_s`` raises ``RayUnavailable`` (a ``ConnectionError``) before any part runs.
    """
    from placement.core.verify import check
    from placement.run.solve import code_revision, migrated, solve

    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', not {executor!r}")
    t0 = time.monotonic()
    if budgeted_replan(problem):
        limit = problem.options.time_limit_s if time_limit_s is None else time_limit_s
        log.info("a re-plan under disruption budgets: solved whole, its moves span the site groups")
        plan = solve(replace(problem, options=replace(problem.options, time_limit_s=limit)))
        whole = PartitionStats(
            groups=1,
            executor="whole",
            parts=(),
            spanning_workloads=0,
            left_out_partitioning=0,
            partition_cost_bound=0,
            bound_parts=plan.info.bound if plan.info.bound is not None else math.inf,
            bound_relaxation=None,
            split_s=0.0,
            solve_s=time.monotonic() - t0,
            combine_s=0.0,
            wall_s=time.monotonic() - t0,
            notes=(WHOLE_NOTE,),
        )
        return plan, whole
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    limit = problem.options.time_limit_s if time_limit_s is None else time_limit_s
    deadline = t0 + limit - MARGIN_FRACTION * limit - MARGIN_S  # the rest combines and verifies
    part = split(problem, groups)
    split_s = time.monotonic() - t0
    todo = [i for i, p in enumerate(part.problems) if p.workloads]
    parallel = executor == "ray" or (processes > 1 and len(todo) > 1)  # then one core per part
    subs = list(part.problems)
    plan_of_time: dict[str, float] = {"waves": 1, "limit": 0.0}

    def prepare(slots: int) -> list[Problem]:
        """The parts with their time limits, once the executor knows how many run at once."""
        waves = math.ceil(len(todo) / max(1, slots)) if fit_time_limit else 1
        part_limit = max(0.1, (deadline - time.monotonic()) / max(1, waves))
        if waves > 1:
            log.info("%d parts on %d slots: %d waves of %.1f s", len(todo), slots, waves, part_limit)
        options = replace(
            problem.options, time_limit_s=part_limit, workers=1 if parallel else problem.options.workers
        )
        subs[:] = [replace(p, options=options) for p in part.problems]
        plan_of_time.update(waves=waves, limit=part_limit)
        return [subs[i] for i in todo]

    t1 = time.monotonic()
    relax: list[float | None] = []

    def meanwhile() -> None:  # the driver is idle while the parts run: compute the LP bound
        relax.append(relaxation_bound(problem) if relaxation else None)

    if executor == "ray":
        results = run_ray(prepare, address, meanwhile, connect_timeout_s)
    else:
        results = run_local(prepare, len(todo), processes, meanwhile)
    solve_s = time.monotonic() - t1
    t2 = time.monotonic()
    by_group: dict[int, Plan | BaseException] = {
        g: r.plan if isinstance(r, PartResult) else r for g, r in zip(todo, results, strict=True)
    }
    where = {g: (r.node, r.pid) for g, r in zip(todo, results, strict=True) if isinstance(r, PartResult)}
    plan, stats_parts, bound_parts, notes = _combine(problem, part, subs, by_group)
    stats_parts = [
        replace(st, node=where[st.group][0], pid=where[st.group][1]) if st.group in where else st
        for st in stats_parts
    ]
    bound_relax = relax[0] if relax else None
    bounds = [bound_parts] + [b for b in (bound_relax, whole_bound) if b is not None]
    bound = float(min(bounds))
    if bound < plan.objective.placed_work:
        log.warning(
            "bound %.0f below the placed work %d; using the placed work", bound, plan.objective.placed_work
        )
        bound = float(plan.objective.placed_work)
    pw = plan.objective.placed_work
    gap = max(0.0, (bound - pw) / bound) if bound > 0 else 0.0
    statuses = [r.info.status if isinstance(r, Plan) else None for r in by_group.values()]
    # OPTIMAL only when the parts are and nothing spans groups: then the whole problem is their sum
    optimal = all(s is SolveStatus.OPTIMAL for s in statuses) and not part.spanning and not part.left_out
    stops = {r.info.stop_reason for r in by_group.values() if isinstance(r, Plan)}
    stop = (
        StopReason.INTERRUPTED
        if StopReason.INTERRUPTED in stops
        else StopReason.TIME_LIMIT
        if StopReason.TIME_LIMIT in stops
        else StopReason.NONE
    )
    solved = [r for r in by_group.values() if isinstance(r, Plan)]
    models = ",".join(sorted({r.info.backend for r in solved if r.info.backend}))  # where a model ran
    solvers = tuple(dict.fromkeys(s for r in solved for s in r.info.solvers))
    info = SolveInfo(
        status=SolveStatus.OPTIMAL if optimal else SolveStatus.FEASIBLE,
        stop_reason=stop,
        bound=bound,
        gap=gap,
        backend=f"{models}+partition[{executor}]",
        solver_version=versions(solvers),
        seed=problem.options.seed,
        wall_s=time.monotonic() - t0,
        code_revision=code_revision(),
        started_at=started_at,
        method=f"partition[{executor}]({', '.join(dict.fromkeys(r.info.method for r in solved))})",
        solvers=solvers,
    )
    plan = migrated(problem, replace(plan, info=info))  # a re-plan's steps, checked
    check(problem, plan)
    combine_s = time.monotonic() - t2
    stats = PartitionStats(
        groups=len(subs),
        executor=executor,
        parts=tuple(stats_parts),
        spanning_workloads=len(part.spanning),
        left_out_partitioning=sum(
            1 for n in part.left_out if any(r.rule == PARTITIONING for r in part.reasons.get(n, ()))
        ),
        partition_cost_bound=part.spanning_work,
        bound_parts=bound_parts,
        bound_relaxation=bound_relax,
        split_s=split_s,
        solve_s=solve_s,
        combine_s=combine_s,
        wall_s=time.monotonic() - t0,
        waves=int(plan_of_time["waves"]),
        part_time_limit_s=plan_of_time["limit"],
        notes=tuple(notes),
    )
    log.info(
        "partitioned solve: %d groups on %s, placed work %d, bound %.0f (gap %.4f), %.2f s",
        len(subs),
        executor,
        pw,
        bound,
        gap,
        stats.wall_s,
    )
    return replace(plan, info=replace(info, wall_s=stats.wall_s)), stats


def _combine(
    problem: Problem,
    part: Partition,
    subs: list[Problem],
    results: dict[int, Plan | BaseException],
) -> tuple[Plan, list[PartStats], float, list[str]]:
    pct = _max_pct(problem)
    order = {w.name: i for i, w in enumerate(problem.workloads)}
    copies = Counter(w.name for s in subs for w in s.workloads)
    pinned_split = {name for name, n in copies.items() if n > 1}
    placed: list[tuple[int, int, int, ReplicaPlacement]] = []
    unplaced: dict[str, list[Reason]] = defaultdict(list)
    stats: list[PartStats] = []
    bound_sum = float(part.spanning_work)
    notes: list[str] = []
    for g, sub in enumerate(subs):
        res = results.get(g)
        trivial = float(sum(max_work(w, pct) for w in sub.workloads))
        if isinstance(res, Plan):
            for p in res.placements:
                placed.append((order[p.workload], g, p.replica, p))
            for u in res.unplaced:
                unplaced[u.workload].extend(u.reasons)
            b = res.info.bound if res.info.bound is not None else trivial
            bound_sum += b
            status, pw, wall = res.info.status.value, res.objective.placed_work, res.info.wall_s
        else:
            bound_sum += trivial
            status, pw, wall, b = ("EMPTY" if res is None else "ERROR"), 0, 0.0, trivial
            if res is not None:
                notes.append(f"group {g} failed: {res!r}")
                for w in sub.workloads:
                    unplaced[w.name].append(
                        Reason(PARTITIONING, f"the solve of site group {g} failed: {res!r}", 0)
                    )
        stats.append(
            PartStats(
                group=g,
                sites=len(sub.fleet.sites),
                nodes=len(sub.fleet.nodes),
                gpus=sum(n.gpu_count for n in sub.fleet.nodes),
                workloads=len(sub.workloads),
                status=status,
                placed_work=pw,
                bound=b,
                wall_s=wall,
            )
        )
    # a pinned workload split over groups is placed only when every piece is
    broken = {n for n in pinned_split if n in unplaced}
    placed.sort(key=lambda t: (t[0], t[1], t[2]))
    next_replica: Counter[str] = Counter()
    placements: list[ReplicaPlacement] = []
    for _, _, _, p in placed:
        if p.workload in broken:
            continue
        placements.append(replace(p, replica=next_replica[p.workload]))
        next_replica[p.workload] += 1
    for name, rs in part.reasons.items():
        unplaced[name].extend(rs)
    out_unplaced = tuple(
        UnplacedWorkload(w.name, tuple(_dedup(unplaced.get(w.name, ()))))
        for w in problem.workloads
        if w.name not in next_replica
    )
    pl = tuple(placements)
    moves = displaced(problem, pl)
    plan = Plan(
        placements=pl,
        budgets=compute_budgets(problem, pl),
        unplaced=out_unplaced,
        objective=evaluate(problem, pl),
        info=SolveInfo(status=SolveStatus.FEASIBLE),
        displaced=moves,
        move_curve=move_curve(problem, moves),
    )
    return plan, stats, bound_sum, notes


def _dedup(reasons: Iterable[Reason]) -> list[Reason]:
    seen: set[Reason] = set()
    out = []
    for r in reasons:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out
