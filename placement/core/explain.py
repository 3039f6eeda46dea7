"""Why a workload is not placed, rule by rule, with the numbers, answered from data.

Two sources:

* the candidate filter's rejections (``placement.core.candidates``): which rule ruled out
  which nodes on an empty fleet, with requested and available numbers; summarised per
  rule ("needs 120 GiB per GPU; largest GPU within 25 ms of eu-west has 80 GiB");
* for a workload whose candidates exist but which a plan left out, the plan as it stands
  (``placement.core.state.FleetState``). Each candidate node that cannot take one more
  replica is charged to the first of these rules that binds there, as the rule kernel
  (``FleetState.assess``) finds it:

      gpu_count       whole-GPU replica: fewer free GPUs than it needs
      gpu_share       fractional: no free GPU, no shared GPU with its milli-GPU left
      gpu_memory      fractional: the shared GPUs with the milli left lack its memory
      host_resources  CPU or host memory left on the node
      domain_power    the power domain's headroom < the replica's draw (below)
      site_power      the power domain has it, the site's headroom does not

  The replica's draw is that of its GPUs at its lowest allowed power level above idle
  (a shared GPU: uncapped), plus the node's on-power when the node is off (rule 7), so a
  node with free GPUs but no watts is a power reason, never a GPU one. Headroom is
  usable minus IT draw, the plan's own budgets (``placement.core.budgets``) to the watt.

  One reason per rule, the rule nearest to fitting first (site_power, domain_power,
  host_resources, gpu_memory, gpu_share, gpu_count), each saying on how many candidate
  nodes it binds and carrying the numbers of the closest of them: ``requested`` (what one
  replica needs), ``available`` (what is left), ``unit`` and ``where`` (the node, power
  domain "site/domain" or site that ``available`` belongs to). Where some candidates do
  have room, the reason is what the room falls short of (replicas, spread, site
  survival: ``state.workload_short``), found by placing replicas one by one at their
  lowest allowed power level; where the workload's blast-radius caps (rule 16) refused
  candidate nodes with room in that search and too few replicas fit, the reason is
  ``blast_radius``, with the caps and the numbers.

  Nodes of one node group in the same use get one answer (``Alike``), and workloads alike
  in what the rules read and in their candidate cells are worked out once (``PlanView``),
  so explaining a plan costs about one rule check per (workload shape, group, use), not
  per (workload, node).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable

from placement.core.candidates import (
    RULES,
    Candidate,
    Prepared,
    Rejection,
    WorkloadRejection,
    filter_candidates,
    spread_entity,
)
from placement.core.domain import (
    Plan,
    Problem,
    Reason,
    UnplacedWorkload,
    Workload,
    memory_milli_gib,
)
from placement.core.errors import FieldError, InputError
from placement.core.state import Fit, FleetState, Short
from placement.core.verify import verify

# plan reasons, nearest to fitting first
PLAN_RULES = ("site_power", "domain_power", "host_resources", "gpu_memory", "gpu_share", "gpu_count")


def _kw(w: float) -> str:
    """Watts as kW, exact to the watt (3412 -> "3.412 kW", 8000 -> "8 kW")."""
    text = f"{w / 1000:,.3f}".rstrip("0").rstrip(".")
    return f"{text} kW"


def _min(x: float) -> str:
    return "unlimited (generator)" if math.isinf(x) else f"{x:g} min"


def _within(w: Workload) -> str:
    if w.max_latency_ms > 0:
        return f" within {w.max_latency_ms:g} ms of {w.user_region}"
    return ""


def _names(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (f", +{len(names) - most} more" if len(names) > most else "")


def _domain_name(p: Prepared, n: int) -> str:
    info = p.nodes[n]
    return f"{info.site.name}/{info.domain.name}"


# ----------------------------------------------------------------- the filter's reasons


def filter_reasons(prepared: Prepared, w: int) -> list[Reason]:
    """One reason per rule that ruled out nodes for workload ``w``, plus a workload-level one."""
    wk = prepared.problem.workloads[w]
    by_rule: dict[str, list[Rejection]] = defaultdict(list)
    for r in prepared.rejections_of(w):
        by_rule[r.rule].append(r)
    total = sum(
        1 for info in prepared.nodes if prepared.site_only is None or info.site.name == prepared.site_only
    )
    out: list[Reason] = []
    for rule in RULES:
        rs = by_rule.get(rule)
        if rs:
            out.extend(_summary(prepared, wk, rule, rs, total))
    for wr in prepared.workload_rejections:
        if wr.workload == w:
            out.append(_workload_reason(wr))
    return out


def _workload_reason(wr: WorkloadRejection) -> Reason:
    return Reason(wr.rule, wr.message, 0, wr.requested, wr.available, wr.unit)


def _caps(w: Workload) -> str:
    """A workload's blast-radius caps in words ("2 per node and 4 per power domain")."""
    parts = [f"{w.max_per_node} per node"] if w.max_per_node else []
    if w.max_per_power_domain:
        parts.append(f"{w.max_per_power_domain} per power domain")
    return " and ".join(parts)


def _summary(p: Prepared, w: Workload, rule: str, rs: list[Rejection], total: int) -> list[Reason]:
    nodes = p.nodes
    every = len(rs) == total
    scope = "every node" if every else f"{len(rs)} of {total} nodes"
    count = len(rs)
    if rule == "node_state":
        states = Counter(nodes[r.node].node.state.value for r in rs)
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(states.items()))
        return [Reason(rule, f"{scope} not READY ({detail})", count)]
    if rule == "latency":
        lats = {s: lat for (reg, s), lat in p.latency_ms.items() if reg == w.user_region}
        near = min(rs, key=lambda r: (r.available, r.node))
        near_site = nodes[near.node].site.name
        if every:
            if lats:
                site, lat = min(lats.items(), key=lambda kv: (kv[1], kv[0]))
                nearest = f"nearest: {site} at {lat:.1f} ms"
            else:
                nearest = f"no site reachable from {w.user_region}"
            msg = f"no site within {w.max_latency_ms:g} ms of {w.user_region} ({nearest})"
        else:
            far = sorted({nodes[r.node].site.name for r in rs})
            msg = f"{scope} in sites beyond {w.max_latency_ms:g} ms of {w.user_region}: {', '.join(far)}"
        return [Reason(rule, msg, count, w.max_latency_ms, near.available, "ms", near_site)]
    if rule == "backup":
        best = max(rs, key=lambda r: (r.available, -r.node))
        where = "best reachable site" if w.max_latency_ms > 0 else "best site"
        msg = f"needs {_min(w.backup_minutes)} of backup, {where} ruled out has {_min(best.available)} ({scope})"
        return [Reason(rule, msg, count, w.backup_minutes, best.available, "min", nodes[best.node].site.name)]
    if rule == "gpu_type":
        types = sorted({nodes[r.node].gpu.name for r in rs})
        if w.is_fractional and (not w.allowed_gpu_types or set(types) <= set(w.allowed_gpu_types)):
            msg = f"fractional replica needs a shareable GPU; {', '.join(types)} are not ({scope})"
        else:
            msg = f"allowed GPU types {', '.join(w.allowed_gpu_types)}; {scope} have {', '.join(types)}"
        return [Reason(rule, msg, count)]
    if rule == "gpu_memory":
        best = max(rs, key=lambda r: (r.available, -r.node))
        msg = (
            f"needs {w.memory_per_gpu_gib:g} GiB per GPU; largest GPU{_within(w)} has {best.available:g} GiB "
            f"({scope})"
        )
        return [
            Reason(rule, msg, count, w.memory_per_gpu_gib, best.available, "GiB", nodes[best.node].gpu.name)
        ]
    if rule == "gpu_count":
        best = max(rs, key=lambda r: (r.available, -r.node))
        name = nodes[best.node].node.name
        msg = f"needs {w.gpus} GPUs on one node; largest node{_within(w)} has {best.available:g} ({name}; {scope})"
        return [Reason(rule, msg, count, w.gpus, best.available, "GPUs", name)]
    if rule == "host_resources":
        out = []
        for unit, what in (("mCPU", "CPU"), ("MiB", "host memory")):
            sel = [r for r in rs if r.unit == unit]
            if sel:
                best = max(sel, key=lambda r: (r.available, -r.node))
                name = nodes[best.node].node.name
                sub = "every node" if len(sel) == total else f"{len(sel)} of {total} nodes"
                msg = (
                    f"needs {best.requested:g} {unit} of {what}, the most a node has is {best.available:g} "
                    f"({name}; {sub})"
                )
                out.append(Reason(rule, msg, len(sel), best.requested, best.available, unit, name))
        return out
    if rule == "power_cap":
        r0 = rs[0]
        msg = f"needs a power cap of at least {r0.requested:.0f} W; {r0.message.split(', ', 1)[-1]} ({scope})"
        return [Reason(rule, msg, count, r0.requested, r0.available, "W", nodes[r0.node].gpu.name)]
    if rule in ("domain_power", "site_power"):
        close = min(rs, key=lambda r: (r.requested - r.available, r.node))
        info = nodes[close.node]
        if rule == "domain_power":
            where, what = _domain_name(p, close.node), "power domain"
        else:
            where, what = info.site.name, "site"
        msg = (
            f"one replica with its node on needs {_kw(close.requested)} (on {info.node.name}, the closest), "
            f"the usable cap is {_kw(close.available)} in {what} {where} ({scope})"
        )
        return [Reason(rule, msg, count, close.requested, close.available, "W", where)]
    return [Reason(rule, f"{rs[0].message} ({scope})", count)]


# ------------------------------------------------------------------- the plan's reasons


def _where(p: Prepared, s: Short) -> str:
    """The entity ``s.available`` belongs to: the node, its power domain or its site."""
    if s.rule == "domain_power":
        return _domain_name(p, s.node)
    if s.rule == "site_power":
        return p.nodes[s.node].site.name
    return p.nodes[s.node].node.name


class Holders:
    """Replicas of the plan by node, power domain and site, per workload (who holds what)."""

    def __init__(self, st: FleetState) -> None:
        self.by_node: dict[int, Counter[int]] = defaultdict(Counter)
        self.by_domain: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
        self.by_site: dict[str, Counter[int]] = defaultdict(Counter)
        self._texts: dict[tuple[int, tuple[int, ...]], tuple[tuple[Counter[int], ...], str]] = {}
        for w, n, _idx, _m, _c in st.placements:
            info = st.p.nodes[n]
            self.by_node[n][w] += 1
            self.by_domain[info.domain_key][w] += 1
            self.by_site[info.site.name][w] += 1

    def text(self, p: Prepared, w: int, counters: Iterable[Counter[int]]) -> str:
        """The suffix naming the work of equal or higher priority in ``counters`` (top 3), or "".

        ``w`` is unplaced, so holds none of it: the answer depends on its priority and the
        counters only, and is kept for counters seen before (the same objects)."""
        wl = p.problem.workloads
        counters = tuple(counters)
        key = (wl[w].priority, tuple(map(id, counters)))
        got = self._texts.get(key)
        if got is None:  # (the counters are kept with the text: their ids stay theirs)
            got = self._texts[key] = (counters, self._text(p, w, counters))
        return got[1]

    def _text(self, p: Prepared, w: int, counters: Iterable[Counter[int]]) -> str:
        wl = p.problem.workloads
        got: Counter[str] = Counter()
        for c in counters:
            for w2, k in c.items():
                if w2 != w and wl[w2].priority >= wl[w].priority:
                    got[wl[w2].name] += k
        if not got:
            return ""
        top = sorted(got.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        return "; work of equal or higher priority holds it: " + ", ".join(f"{k} ({v})" for k, v in top)


class Alike:
    """Candidate nodes of one node group whose usage is the same (free GPUs, shared GPUs' use, host
    resources, powered or not): ``FleetState.assess`` gives them one answer, so it is asked once."""

    __slots__ = ("_held", "answers", "nodes")

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes  # ascending
        self._held: Counter[int] | None = None
        # assess's answer on nodes[0] by what it reads of a workload (``PlanView.shape``) and levels
        self.answers: dict[tuple[object, ...], Fit | Short] = {}

    def held(self, holders: Holders) -> Counter[int]:
        """The replicas these nodes hold, per workload."""
        if self._held is None:
            self._held = Counter()
            for n in self.nodes:
                self._held.update(holders.by_node.get(n, {}))
        return self._held


def alike_nodes(st: FleetState) -> dict[int, list[Alike]]:
    """Per node group, its nodes split by usage (``Alike``); valid while ``st`` is as it was."""
    out: dict[int, list[Alike]] = {}
    for g in st.p.groups:
        by_use: dict[tuple[object, ...], list[int]] = {}
        for n in g.nodes:
            shared = tuple(sorted((sh.milli, sh.mem_milli_gib) for sh in st.shared[n].values()))
            key = (st.node_free[n], shared, st.cpu[n], st.hmem[n], st.replicas[n] > 0)
            by_use.setdefault(key, []).append(n)
        out[g.index] = [Alike(nodes) for nodes in by_use.values()]
    return out


# the candidate nodes of a workload as the plan leaves them: those that cannot take one more replica
# (one per Alike: its first node, what binds there, the Alike), those that can (Alike, levels,
# per_gpu), and how many candidates there are
Found = tuple[list[tuple[Candidate, Short, Alike]], list[tuple[Alike, tuple[int, ...], int]], int]


class PlanView:
    """A plan (``FleetState``) as the explanations read it: who holds what (``holders``), the
    alike nodes of each group (``alike``), and answers kept for workloads that read the same.

    Workloads alike in what the rules read (``shape``) and in their candidate groups get the
    same answers from the plan, so they are worked out once. Valid while the plan is as it was.
    """

    def __init__(self, st: FleetState) -> None:
        self.st = st
        self.holders = Holders(st)
        self.alike = alike_nodes(st)
        nodes = st.p.nodes
        self._cpu = any(info.node.cpu_milli > 0 for info in nodes)
        self._mem = any(info.node.host_memory_mib > 0 for info in nodes)
        self._found: dict[tuple[object, ...], Found] = {}
        self._reasons: dict[tuple[object, ...], list[Reason]] = {}

    def shape(self, wk: Workload) -> tuple[int, ...]:
        """What ``FleetState.assess`` reads of a workload: GPUs or share and its memory, host resources."""
        return (
            wk.gpus,
            wk.gpu_milli,
            memory_milli_gib(wk.memory_gib) if wk.is_fractional else 0,
            wk.cpu_milli if self._cpu else 0,
            wk.host_memory_mib if self._mem else 0,
        )

    def found(self, w: int) -> tuple[tuple[object, ...], Found]:
        """``Found`` for workload ``w``, with the key it is kept under."""
        p, st = self.st.p, self.st
        wk = p.problem.workloads[w]
        shape = self.shape(wk)
        # the filter's groups and levels of a cell follow from the shape and the power floor
        key = (shape, wk.min_power_cap_pct, tuple((o.cell, o.per_gpu) for o in p.options[w]))
        got = self._found.get(key)
        if got is None:
            shorts: list[tuple[Candidate, Short, Alike]] = []
            room: list[tuple[Alike, tuple[int, ...], int]] = []
            total = 0
            for opt in p.options[w]:
                for f in opt.fits:
                    for a in self.alike[f.group]:
                        total += len(a.nodes)
                        akey = (shape, f.levels)
                        ans = a.answers.get(akey)
                        if ans is None:
                            ans = a.answers[akey] = st.assess(w, a.nodes[0], f.levels)
                        if isinstance(ans, Short):
                            shorts.append((Candidate(w, a.nodes[0], f.levels, (), opt.per_gpu, 0), ans, a))
                        else:
                            room.append((a, f.levels, opt.per_gpu))
            got = self._found[key] = (shorts, room, total)
        return key, got

    def shortage_reasons(self, w: int) -> tuple[list[Reason], list[Candidate]]:
        """``shortage_reasons`` of ``w`` and its candidate nodes with room."""
        key, (shorts, room, total) = self.found(w)
        rkey = (key, self.st.p.problem.workloads[w].priority)
        reasons = self._reasons.get(rkey)
        if reasons is None:
            reasons = self._reasons[rkey] = shortage_reasons(
                self.st.p, self.st, w, shorts, total, self.holders
            )
        return reasons, [
            Candidate(w, n, levels, (), per_gpu, 0) for a, levels, per_gpu in room for n in a.nodes
        ]


def _replica_w(p: Prepared, st: FleetState, c: Candidate) -> tuple[int, str]:
    """IT watts one more replica of ``c.workload`` adds on ``c.node`` at its lowest allowed level, and how."""
    info = p.nodes[c.node]
    wk = p.problem.workloads[c.workload]
    on = 0 if st.replicas[c.node] else info.on_power_w
    if c.per_gpu:
        delta = info.shared_gpu_delta_w
        what = f"one shared GPU uncapped at {info.gpu.max_power_w} W, {_kw(delta)} above idle"
    else:
        cap = info.gpu.power_levels[c.levels[0]].power_cap_w
        delta = wk.gpus * (cap - info.gpu.idle_power_w)
        what = f"{wk.gpus} GPUs at the lowest allowed cap of {cap} W, {_kw(delta)} above idle"
    if on:
        what += f", plus {_kw(on)} to power the node on"
    return on + delta, what


def shortage_reasons(
    p: Prepared,
    st: FleetState,
    w: int,
    shorts: list[tuple[Candidate, Short, Alike]],
    total: int,
    holders: Holders,
) -> list[Reason]:
    """One reason per rule of ``shorts``: candidate nodes that cannot take one more replica of
    ``w``, as ``Alike`` nodes, each with the first of them and what ``FleetState.assess``
    found there (the same on all of them)."""
    wk = p.problem.workloads[w]
    cand_at = {s.node: c for c, s, _a in shorts}
    by_rule: dict[tuple[str, str], list[tuple[Short, Alike]]] = defaultdict(list)
    for _c, s, a in shorts:
        by_rule[(s.rule, s.unit)].append((s, a))
    out: list[Reason] = []
    for rule in PLAN_RULES:
        for (r, unit), found in sorted(by_rule.items()):
            if r != rule:
                continue
            group = [sa[0] for sa in found]
            k = sum(len(a.nodes) for _s, a in found)
            scope = f"every candidate node ({total})" if k == total else f"{k} of the {total} candidate nodes"
            if rule in ("domain_power", "site_power"):
                s = min(group, key=lambda s: (s.requested - s.available, s.node))
                where = _where(p, s)
                name = p.nodes[s.node].node.name
                _need, detail = _replica_w(p, st, cand_at[s.node])
                if rule == "domain_power":
                    keys = {p.nodes[x.node].domain_key for x in group}
                    held = holders.text(p, w, (holders.by_domain[d] for d in keys))
                    msg = (
                        f"on {scope}, the power domain lacks the headroom for one more replica; closest: "
                        f"{name} needs {_kw(s.requested)} ({detail}), power domain {where} has "
                        f"{_kw(s.available)} of headroom{held}"
                    )
                else:
                    info = p.nodes[s.node]
                    dom_room = st.domain_usable_w[info.domain_key] - st.domain_w[info.domain_key]
                    sites = {p.nodes[x.node].site.name for x in group}
                    held = holders.text(p, w, (holders.by_site[x] for x in sites))
                    msg = (
                        f"on {scope}, the power domain has the watts but the site's cap binds; closest: "
                        f"{name} needs {_kw(s.requested)} ({detail}; its power domain "
                        f"{_domain_name(p, s.node)} has {_kw(dom_room)} of headroom), site {where} has "
                        f"{_kw(s.available)} of headroom{held}"
                    )
            else:
                s = max(group, key=lambda s: (s.available, -s.node))
                where = _where(p, s)
                held = holders.text(p, w, (a.held(holders) for _s, a in found))
                if rule == "gpu_count" and s.available == 0:
                    msg = f"on {scope}, every GPU is taken"
                elif rule == "gpu_count":
                    msg = f"on {scope}, fewer than {wk.gpus} GPUs are free (the most: {s.available}, on {where})"
                elif rule == "gpu_share":
                    most = (
                        f"the most left on a shared GPU: {s.available} milli on {where}"
                        if s.available
                        else "every GPU there is taken, whole or shared to 1000 milli"
                    )
                    msg = f"on {scope}, no GPU is free and no shared GPU has {wk.gpu_milli} milli-GPU left ({most})"
                elif rule == "gpu_memory":
                    msg = (
                        f"on {scope}, no GPU is free and the shared GPUs with {wk.gpu_milli} milli-GPU left lack "
                        f"memory: needs {s.requested:g} GiB, the most left is {s.available:g} GiB (on {where})"
                    )
                else:
                    what = "CPU" if unit == "mCPU" else "host memory"
                    msg = (
                        f"on {scope}, the node lacks {what}: needs {s.requested} {unit}, the most left is "
                        f"{s.available} {unit} (on {where})"
                    )
                msg += held
            out.append(Reason(rule, msg, k, s.requested, s.available, s.unit, where))
    return out


def capacity_reasons(p: Prepared, st: FleetState, w: int, view: PlanView | None = None) -> list[Reason]:
    """What keeps a workload whose candidates exist out of the plan ``st`` as it stands.

    ``view``: ``st`` as the explanations read it (``PlanView(st)``); given, it is reused.
    """
    wk = p.problem.workloads[w]
    view = view if view is not None else PlanView(st)
    short_reasons, room = view.shortage_reasons(w)
    if not room:
        return short_reasons
    # some room: place replicas one by one, each at its lowest allowed level, spreading, until
    # the workload's needs are met (or no candidate takes one more)
    added: list[int] = []  # the nodes of the replicas added
    per_site: Counter[str] = Counter()
    per_ent: Counter[str] = Counter()
    alive = list(room)
    level = wk.spread.level if wk.spread is not None else None
    site_of = {c.node: p.nodes[c.node].site.name for c in alive}
    ent_of = {c.node: spread_entity(p.nodes[c.node], level) for c in alive} if level is not None else {}
    survivors = wk.survivors_required

    def order(c: Candidate) -> tuple[int, int, int]:
        return (per_ent[ent_of[c.node]] if ent_of else 0, per_site[site_of[c.node]], c.node)

    capped_out: set[int] = set()  # candidate nodes the blast-radius caps refused
    while len(added) < wk.max_replicas and alive:
        if added and st.workload_short(w, added) is None:
            break  # enough room for what it needs
        alive.sort(key=order)
        chosen = None
        tried = 0
        for c in alive:
            got = st.check(c.workload, c.node, c.levels[:1])
            if type(got) is Fit:
                chosen = got
                break
            if got == "blast_radius":
                capped_out.add(c.node)
            tried += 1
        del alive[:tried]  # no room left there: the room only shrinks as replicas are added
        if chosen is None:
            break
        st.add(w, chosen)
        added.append(chosen.node)
        per_site[site_of[chosen.node]] += 1
        if ent_of:
            per_ent[ent_of[chosen.node]] += 1
    st.pop(len(added))
    where = _names(sorted({p.nodes[n].node.name for n in added}))
    others = "; what binds on the other candidate nodes follows" if short_reasons else ""
    short = st.workload_short(w, added) if added else "replicas"
    if short == "replicas" and capped_out:
        return [
            Reason(
                "blast_radius",
                f"room beside the placed work for only {len(added)} of the {wk.min_replicas} replicas it needs "
                f"at its blast-radius caps of {_caps(wk)} (on {where}); {len(capped_out)} candidate nodes "
                f"with room were refused by the caps{others}",
                len(capped_out),
                wk.min_replicas,
                len(added),
                "replicas",
            ),
            *short_reasons,
        ]
    if short == "replicas":
        return [
            Reason(
                "replicas",
                f"room beside the placed work for only {len(added)} of the {wk.min_replicas} replicas it needs, "
                f"even at its lowest allowed power level (on {where}){others}",
                0,
                wk.min_replicas,
                len(added),
                "replicas",
            ),
            *short_reasons,
        ]
    if short == "spread" and wk.spread is not None:
        lvl = wk.spread.level.value.lower().replace("_", " ")
        return [
            Reason(
                "spread",
                f"needs {wk.spread.min_distinct} distinct {lvl}s, only {len(per_ent)} have room left "
                f"({_names(sorted(per_ent))}){others}",
                0,
                wk.spread.min_distinct,
                len(per_ent),
                f"{lvl}s",
            ),
            *short_reasons,
        ]
    if short == "site_survival":
        top_site = max(per_site, key=lambda s: (per_site[s], s))
        return [
            Reason(
                "site_survival",
                f"needs {survivors} replicas outside any one site, room outside the fullest site "
                f"({top_site}) for {len(added) - per_site[top_site]}{others}",
                0,
                survivors,
                len(added) - per_site[top_site],
                "replicas",
                top_site,
            ),
            *short_reasons,
        ]
    return [
        Reason(
            "time_limit",
            f"room remains beside the placed work for at least {len(added)} replicas (needs {wk.min_replicas}): "
            "the search stopped before placing it; a longer time limit may place it",
            0,
            wk.min_replicas,
            len(added),
            "replicas",
        )
    ]


PINNED_REASON = Reason("pinned", "pinned with no current replica: nothing to keep, none may be added", 0)


def unplaced_reasons(
    prepared: Prepared, plan_state: FleetState, deadline: float | None = None
) -> list[UnplacedWorkload]:
    """Every workload without a replica in ``plan_state``, with its reasons (problem order).

    Reasons are worked out most valuable workload first (priority * work) until
    ``deadline`` (monotonic seconds); a workload reached after it gets one ``time_limit``
    reason pointing at ``fleetplace explain`` (the filter's workload-level reason when it has one).
    """
    placed = {w for w, *_ in plan_state.placements}
    wl = prepared.problem.workloads
    todo = [w for w in range(len(wl)) if w not in placed]
    got: dict[int, list[Reason]] = {}
    wrej = {r.workload: r for r in prepared.workload_rejections}
    view = PlanView(plan_state)
    for w in sorted(todo, key=lambda w: (-wl[w].priority * wl[w].work_milli, w)):
        if deadline is not None and time.monotonic() > deadline:
            break
        if wl[w].pinned:
            got[w] = [PINNED_REASON]
        elif w in prepared.by_workload:
            got[w] = capacity_reasons(prepared, plan_state, w, view)
        else:
            got[w] = filter_reasons(prepared, w)
    out = []
    for w in todo:
        reasons = got.get(w)
        if reasons is None:
            r = wrej.get(w)
            reasons = (
                [_workload_reason(r)]
                if r is not None
                else [
                    Reason(
                        "time_limit",
                        "not analysed within the time limit; `fleetplace explain INPUT "
                        f"{wl[w].name} --plan PLAN` gives the reasons",
                        0,
                    )
                ]
            )
        out.append(UnplacedWorkload(wl[w].name, tuple(reasons)))
    return out


# ------------------------------------------------------------------------------ explain


def explain(
    problem: Problem, workload: str | Workload, site: str | None = None, plan: Plan | None = None
) -> list[Reason]:
    """Why ``workload`` cannot run (on ``site``, if given), rule by rule.

    Without ``plan``: on an empty fleet, every rule of the filter that rules out nodes, with
    the numbers; an empty list means the rules allow it. With ``plan`` (a plan of
    ``problem`` that passes the verifier, else ``InputError`` at ``plan``): also, when the
    plan leaves the workload out, what keeps it out in that plan as it stands (its
    candidates on ``site`` only, if given), as ``unplaced_reasons`` works it out, without a
    deadline. Unknown names are ``InputError`` at ``workload`` / ``site``, all at once.
    """
    name = workload if isinstance(workload, str) else workload.name
    idx = next((i for i, w in enumerate(problem.workloads) if w.name == name), None)
    errors = []
    if idx is None:
        errors.append(FieldError("workload", f"unknown workload {name!r}"))
    if site is not None and site not in {s.name for s in problem.fleet.sites}:
        errors.append(FieldError("site", f"unknown site {site!r}"))
    if plan is not None:
        bad = verify(problem, plan)
        if bad:
            v = bad[0]
            errors.append(
                FieldError(
                    "plan",
                    f"does not pass the verifier against this input ({len(bad)} violations; first: "
                    f"[{v.rule}] {v.subject}: {v.message})",
                )
            )
    if errors or idx is None:
        raise InputError(errors)
    prepared = filter_candidates(problem, [idx], site)
    reasons = filter_reasons(prepared, idx)
    if plan is None or any(p.workload == name for p in plan.placements):
        return reasons
    if problem.workloads[idx].pinned:
        return [*reasons, PINNED_REASON]
    if idx in prepared.by_workload:
        reasons += capacity_reasons(prepared, FleetState.from_placements(prepared, plan.placements), idx)
    return reasons
