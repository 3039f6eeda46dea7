"""What changes between two plans: the replicas placed, moved, evicted and retuned, and the power.

    diff_plans(before, after, displaced) -> PlanDiff

``displaced`` says which current replicas ``after`` moves and why: ``after.displaced`` when
``after`` was planned with ``current`` taken from ``before`` (a re-plan), else
``placement.core.moves.displaced`` of the instance as ``after`` planned it with ``current``
filled from ``before`` (``placement.replan.with_current``). The diff never decides itself
why a replica moves: the reasons, forced or not and the evictor are main's, from
``core/moves.py``. What it adds is what a person reads as a change set:

1. Replicas are matched per workload and node, the way the moves tier counts them: on each node
   a workload keeps ``k = min(before, after)`` of its replicas, paired on the same GPU indices
   first, then in GPU order. A kept pair whose GPUs or power cap differ is a *retune*
   (``Retune``); it is no move.
2. Its other replicas leave their node or arrive on one. Each leaving replica takes the reason
   of a ``Displaced`` of its workload on its node (the same GPUs first) and is paired with an
   arriving replica of its workload, if any is left: on the displaced record's ``to_node``, else
   in its own power domain, else in its site, else the first; that is a *move* (``Move``: from ->
   to, caps before and after). A leaving replica with no arriving one is an *eviction*.
3. A leaving replica that no ``Displaced`` covers ran before but was not in the instance's
   current placement: its workload is gone from the input (``removed``: no move), its node is
   gone from the fleet (``node_state``, forced), or the workload was rescaled below what ran
   (``replicas``, forced). Arriving replicas left over are *additions* (``Addition``).

So ``PlanDiff.moves`` equals ``len(after.displaced)`` for a re-plan of ``before`` with nothing
removed, and ``PlanDiff.unforced_moves`` is what the disruption budgets (``max_moves``) count.

Power: the IT draw of every site and power domain before and after, from the plans' budgets
(``PowerChange``; only those whose draw changed). ``dropped``: workloads that ran in ``before``
and are not placed in ``after`` although still asked for (listed in ``after.unplaced``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from placement.core.domain import Displaced, Plan, PowerBudget, ReplicaPlacement

REMOVED = "removed"  # the rule of a replica whose workload is gone from the input (no move)


@dataclass(frozen=True)
class ReplicaAt:
    """Where one replica runs: node, its site and power domain, GPUs, share and power cap."""

    node: str
    site: str
    power_domain: str
    gpu_indices: tuple[int, ...]
    gpu_milli: int
    power_cap_w: int

    @classmethod
    def of(cls, p: ReplicaPlacement) -> ReplicaAt:
        return cls(p.node, p.site, p.power_domain, tuple(p.gpu_indices), p.gpu_milli, p.power_cap_w)

    def _key(self) -> tuple[str, tuple[int, ...], int]:
        return (self.node, self.gpu_indices, self.power_cap_w)


@dataclass(frozen=True)
class Why:
    """Why a replica leaves its node: ``Displaced``'s rule, message, forced and evictor, or the
    diff's own ``removed`` / ``node_state`` / ``replicas`` for one outside the current placement."""

    rule: str
    message: str
    forced: bool
    evictor: str = ""

    @classmethod
    def of(cls, d: Displaced) -> Why:
        return cls(d.rule, d.message, d.forced, d.evictor)


@dataclass(frozen=True)
class Addition:
    workload: str
    at: ReplicaAt


@dataclass(frozen=True)
class Eviction:
    workload: str
    at: ReplicaAt
    why: Why


@dataclass(frozen=True)
class Move:
    workload: str
    source: ReplicaAt
    target: ReplicaAt
    why: Why


@dataclass(frozen=True)
class Retune:
    """A replica kept on its node whose GPUs or power cap change."""

    workload: str
    before: ReplicaAt
    after: ReplicaAt


@dataclass(frozen=True)
class PowerChange:
    """IT draw of a site or power domain (kind "site" or "power_domain") before and after, in W."""

    kind: str
    name: str
    site: str
    before_w: int
    after_w: int
    usable_w: int  # the cap after redundancy, in the plan after (or before, if it is gone)

    @property
    def delta_w(self) -> int:
        return self.after_w - self.before_w

    @property
    def after_pct(self) -> float:
        """Draw after as a percentage of the usable cap (0 when the cap is 0)."""
        return 100.0 * self.after_w / self.usable_w if self.usable_w else 0.0


@dataclass(frozen=True)
class PlanDiff:
    added: tuple[Addition, ...]
    evicted: tuple[Eviction, ...]
    moved: tuple[Move, ...]
    retuned: tuple[Retune, ...]
    power: tuple[PowerChange, ...]  # sites, then power domains, whose IT draw changed
    dropped: tuple[str, ...]  # ran before, not placed after, still asked for
    placed_work_before: int
    placed_work_after: int

    def _leaving(self) -> list[Why]:
        return [m.why for m in self.moved] + [e.why for e in self.evicted if e.why.rule != REMOVED]

    @property
    def moves(self) -> int:
        """Replicas that ran before and are not kept on their node (a removed workload's excepted)."""
        return len(self._leaving())

    @property
    def unforced_moves(self) -> int:
        """The moves the input does not force: what the disruption budgets (``max_moves``) count."""
        return sum(1 for w in self._leaving() if not w.forced)

    @property
    def changed(self) -> bool:
        """Any replica added, evicted, moved or retuned."""
        return bool(self.added or self.evicted or self.moved or self.retuned)


def _watts(kw: float) -> int:
    return round(kw * 1000)


def _power(before: tuple[PowerBudget, ...], after: tuple[PowerBudget, ...]) -> list[PowerChange]:
    old = {b.name: b for b in before}
    new = {b.name: b for b in after}
    out = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        ref = b if b is not None else a
        if ref is None:  # not reached: the name came from one of them
            continue
        change = PowerChange(
            kind=ref.kind,
            name=name,
            site=ref.site,
            before_w=_watts(a.it_kw) if a is not None else 0,
            after_w=_watts(b.it_kw) if b is not None else 0,
            usable_w=_watts(ref.usable_kw),
        )
        if change.delta_w:
            out.append(change)
    return out


def _pair_kept(old: list[ReplicaAt], new: list[ReplicaAt]) -> tuple[list[tuple[ReplicaAt, ReplicaAt]], list[ReplicaAt], list[ReplicaAt]]:  # fmt: skip
    """Kept pairs on one node (same GPUs first), then what leaves and what arrives."""
    k = min(len(old), len(new))
    pairs: list[tuple[ReplicaAt, ReplicaAt]] = []
    old_left, new_left = list(old), list(new)
    for n in list(new_left):
        if len(pairs) == k:
            break
        match = next((o for o in old_left if o.gpu_indices == n.gpu_indices), None)
        if match is not None:
            pairs.append((match, n))
            old_left.remove(match)
            new_left.remove(n)
    while len(pairs) < k:
        pairs.append((old_left.pop(0), new_left.pop(0)))
    return pairs, old_left, new_left


def _take(pool: list[Displaced], at: ReplicaAt) -> Displaced | None:
    """The displaced record for a replica leaving ``at``: the same GPUs first, else any on its node."""
    d = next((d for d in pool if d.gpu_indices == at.gpu_indices), pool[0] if pool else None)
    if d is not None:
        pool.remove(d)
    return d


def diff_plans(before: Plan, after: Plan, displaced: Iterable[Displaced] | None = None) -> PlanDiff:
    """The changes from ``before`` to ``after`` (see the module docstring); ``displaced`` defaults
    to ``after.displaced``. Pure: reads the plans and the displaced records only."""
    pools: dict[tuple[str, str], list[Displaced]] = defaultdict(list)
    for x in after.displaced if displaced is None else displaced:
        pools[(x.workload, x.node)].append(x)
    old: dict[str, dict[str, list[ReplicaAt]]] = defaultdict(lambda: defaultdict(list))
    new: dict[str, dict[str, list[ReplicaAt]]] = defaultdict(lambda: defaultdict(list))
    for p in before.placements:
        old[p.workload][p.node].append(ReplicaAt.of(p))
    for p in after.placements:
        new[p.workload][p.node].append(ReplicaAt.of(p))
    asked = {p.workload for p in after.placements} | {u.workload for u in after.unplaced}
    fleet = {n.node for n in after.budgets.nodes}
    added: list[Addition] = []
    evicted: list[Eviction] = []
    moved: list[Move] = []
    retuned: list[Retune] = []
    for w in sorted(old.keys() | new.keys()):
        leaving: list[ReplicaAt] = []
        arriving: list[ReplicaAt] = []
        for node in sorted(old[w].keys() | new[w].keys()):
            pairs, out, into = _pair_kept(
                sorted(old[w][node], key=ReplicaAt._key), sorted(new[w][node], key=ReplicaAt._key)
            )
            retuned.extend(Retune(w, a, b) for a, b in pairs if a != b)
            leaving.extend(out)
            arriving.extend(into)
        n_after = sum(len(v) for v in new[w].values())
        for src in leaving:
            where = f"{w} on {src.node} GPUs {list(src.gpu_indices)}"
            d = _take(pools[(w, src.node)], src)
            if d is not None:
                why = Why.of(d)
            elif w not in asked:
                why = Why(REMOVED, f"{where}: the workload is removed from the input", False)
            elif src.node not in fleet:
                why = Why("node_state", f"{where}: node {src.node} is gone from the fleet", True)
            else:
                why = Why("replicas", f"{where}: rescaled, {n_after} replicas run after", True)
            if not arriving:
                evicted.append(Eviction(w, src, why))
                continue
            to = d.to_node if d is not None else ""
            target = next(
                (a for a in arriving if a.node == to),
                next(
                    (a for a in arriving if a.power_domain == src.power_domain and a.site == src.site),
                    next((a for a in arriving if a.site == src.site), arriving[0]),
                ),
            )
            arriving.remove(target)
            moved.append(Move(w, src, target, why))
        added.extend(Addition(w, a) for a in arriving)
    power = _power(before.budgets.sites, after.budgets.sites)
    power += _power(before.budgets.power_domains, after.budgets.power_domains)
    unplaced_after = {u.workload for u in after.unplaced}
    dropped = tuple(sorted(w for w in old if w in unplaced_after and not any(new.get(w, {}).values())))
    return PlanDiff(
        added=tuple(added),
        evicted=tuple(evicted),
        moved=tuple(moved),
        retuned=tuple(retuned),
        power=tuple(power),
        dropped=dropped,
        placed_work_before=before.objective.placed_work,
        placed_work_after=after.objective.placed_work,
    )
