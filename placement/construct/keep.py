"""The current placement, repaired: the first plan in hand of a re-plan (issue 15, item 1).

``keep_current(prepared, deadline, stop)`` builds, in one ``FleetState`` (every rule through the
kernel):

1. the pinned replicas, at their recorded caps (``greedy.place_pinned``);
2. every running workload's current replicas (highest priority first, so that where the
   current placement no longer fits its power, the lower priority gives way), each on its
   current node and GPUs at its recorded cap, or a lower allowed level where the watts are
   short (a cap lowered in place is no move); a replica whose node is not a candidate any more
   (not READY, a static rule) or that does not fit is displaced;
3. a workload that lost replicas gets them back elsewhere with the fewest moves: its kept
   replicas stay and the greedy adds to them (``greedy.place_workload(existing=...)``, current
   groups first); only where they then still break its rules (spread, site survival, a minimum
   raised) is the workload placed afresh, all or nothing, preferring its current nodes;
4. the rest filled by the greedy's ``fill`` (new workloads, replicas up to max_replicas).

Nothing running is left out but what the input forces (its nodes gone or its rules broken), so
the plan moves only forced replicas; the disruption budgets hold unless the current placement
itself breaks a rule no node state or filter names (two replicas on one GPU, host resources).
"""

from __future__ import annotations

import logging
import threading
import time

from placement.construct.greedy import fill, place_pinned, place_workload
from placement.core.candidates import Prepared
from placement.core.energy import allowed_levels
from placement.core.state import Fit, FleetState, level_at

log = logging.getLogger(__name__)


def keep_current(
    prepared: Prepared, deadline: float | None = None, stop: threading.Event | None = None
) -> FleetState:
    """The current placement repaired and filled (module docstring)."""
    p = prepared
    wl = p.problem.workloads
    st = FleetState(p)
    place_pinned(st)
    running = sorted((w for w, wk in enumerate(wl) if wk.running), key=lambda w: (-wl[w].priority, w))
    lost: list[int] = []
    shorts: set[int] = set()  # running workloads whose kept replicas alone break their rules
    for w in running:
        wk = wl[w]
        kept: list[int] = []
        groups = {f.group for o in p.options.get(w, ()) for f in o.fits}
        for cr in wk.current:
            n = p.node_index.get(cr.node)
            if n is None or st.group_of[n] not in groups:  # its node is not READY, or a static rule fails
                continue
            fit = _keep(st, w, n, cr.gpu_indices, cr.power_cap_w)
            if fit is not None:
                st.add(w, fit)
                kept.append(n)
        short = bool(kept) and st.workload_short(w, kept) is not None
        if len(kept) < len(wk.current) or short:
            lost.append(w)
        if short:  # its kept replicas alone break its rules (or it was scaled up): completed below
            shorts.add(w)
    held = _held(st)
    for w in lost:
        mine = held.get(w, [])
        if w in shorts and w in p.options:  # first more replicas beside the kept ones (no move)
            place_workload(st, w, existing=mine)
            if st.workload_short(w, _held(st).get(w, [])) is None:
                continue
        if w in shorts:  # still short: placed afresh, all or nothing
            _take_back(st, w)
            mine = []
        if w in p.options:
            place_workload(st, w, existing=mine)
    if (deadline is None or time.monotonic() < deadline) and (stop is None or not stop.is_set()):
        fill(st, deadline)
        held = _held(st)
        for w in running:  # replicas up to max_replicas beside the kept ones (no move)
            mine = held.get(w, [])
            if mine and len(mine) < wl[w].max_replicas and w in p.options:
                place_workload(st, w, existing=mine)
    log.info("keep_current: %d replicas, %d running workloads lost some", len(st.placements), len(lost))
    return st


def _keep(st: FleetState, w: int, n: int, gpus: tuple[int, ...], cap_w: int) -> Fit | None:
    """Current replica of ``w`` on node ``n``'s GPUs ``gpus`` at ``cap_w`` (0: the maximum), or at a
    lower allowed level where the watts are short; None where its GPUs are taken or nothing fits."""
    wk = st.p.problem.workloads[w]
    info = st.p.nodes[n]
    if wk.is_fractional:
        got = st.check(w, n, (), gpus[0], gpus)
        return got if type(got) is Fit else None
    if any(j in st.whole[n] or j in st.shared[n] or j >= info.node.gpu_count for j in gpus):
        return None
    allowed = allowed_levels(wk, info.gpu)
    try:
        top = level_at(info.gpu, cap_w or info.gpu.max_power_w)
    except ValueError:
        return None
    levels = tuple(li for li in allowed if li <= top) or tuple(allowed[:1])
    got = st.check(w, n, levels, None, gpus)
    if type(got) is not Fit or tuple(got.gpu_indices) != tuple(gpus):
        return None
    return got


def _held(st: FleetState) -> dict[int, list[int]]:
    """The nodes of each workload's replicas in ``st``."""
    out: dict[int, list[int]] = {}
    for w, n, *_ in st.placements:
        out.setdefault(w, []).append(n)
    return out


def _take_back(st: FleetState, w: int) -> None:
    for i in reversed(range(len(st.placements))):
        if st.placements[i][0] == w:
            st.remove(i)
