"""The solve pipeline, time-boxed as a whole (model building included).

    validate -> filter (groups) -> pinned checks -> portfolio children (``placement.run.portfolio``:
    the methods' lists: bounds, heuristics, LP-guided plans, the best plan polished) -> greedy
    (verified) -> best portfolio plan, lightly polished if it was not (verified) -> model if it
    fits: tiers, lexicographic -> decode -> budgets, objective, unplaced reasons -> verify
    -> Plan; where no model is built, the finishing methods (``methods.FINISHING``: on fleets
    without spread or survival rules ``fgd_improve``) run last on the best plan, in the last
    ``methods.FINISHING_SHARE`` of the limit.

Time: one ``placement.run.timebudget.TimeBudget`` from ``options.time_limit_s``, on one clock;
every step's end is one of its named shares. The greedy stops at half the limit (or, when no
model follows, at what the plan's assembly leaves); assembling and verifying a plan is
measured on the greedy plan and kept in reserve. Tier 1 (placed_work) gets 70% of what is
left after building when later tiers are optimised, each later tier an equal share of what
remains (unused time passes on). After each tier the session holds it at the value reached
and the next tier starts from those values.

The greedy (``placement.construct.greedy``: first-fit decreasing by priority then replica size,
all or nothing per workload, every hard rule checked through ``FleetState``) and the
portfolio's methods guarantee a verified plan early: a stop or a time limit returns the best
verified plan so far, and the result is never worse than the best of them that arrived in
time. The per-node model is built only when it is small enough (``MODEL_MAX_VARS``) and its
estimated build time fits.
"""

from __future__ import annotations

import functools
import logging
import math
import subprocess
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from placement.core.assemble import assemble
from placement.core.candidates import Prepared, filter_candidates
from placement.core.domain import (
    Backend,
    ObjectiveTiers,
    Plan,
    Problem,
    ReplicaPlacement,
    SolveInfo,
    SolveOptions,
    SolveStatus,
    StopReason,
)
from placement.core.errors import InputError, PlanRejected
from placement.core.objective import evaluate
from placement.core.pinned import pinned_errors
from placement.core.sequence import has_current, migration
from placement.core.verify_sequence import verify_migration
from placement.exact.backends.base import Progress, ProgressCallback, SolverBackend, TierResult
from placement.exact.backends.linear import versions
from placement.exact.decode import decode, encode
from placement.exact.model import Container, build
from placement.exact.model.ir import Direction, Objective
from placement.exact.model.registry import TIERS, tiers_for
from placement.run.effort import plan_effort
from placement.run.methods import FINISHING, FINISHING_SHARE, Greedy, chain, last_plan, method, preference
from placement.run.portfolio import Offer, Portfolio, default_children
from placement.run.timebudget import (
    CLOCK,
    GREEDY_SHARE,
    POLL_S,
    PORTFOLIO_WAIT_SHARE,
    TIER1_SHARE,
    TimeBudget,
)

log = logging.getLogger(__name__)

MODEL_S_PER_VAR = 3e-5
MODEL_MARGIN = 1.5  # the model is built only with this many times its estimated cost left
MODEL_MAX_VARS = 200_000  # beyond this the per-node model is not built (CP-SAT overruns its limit)


@functools.lru_cache(maxsize=1)
def code_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def enabled_tiers(options: SolveOptions, problem: Problem | None = None) -> list[str]:
    """The optimised tiers in objective order (``tiers_for(problem)``; without a problem, TIERS)."""
    on = {
        "placed_work": True,
        "energy": options.optimise_energy,
        "moves": options.optimise_moves,
        "fragmentation": options.optimise_fragmentation,
    }
    return [t for t in (TIERS if problem is None else tiers_for(problem)) if on[t]]


# ------------------------------------------------------------------------- plan


_plan = assemble  # the one plan assembly (placement.core.assemble)


def claim(
    status: SolveStatus, bounds: list[float | None], placed_work: int, tiers: list[str]
) -> tuple[SolveStatus, float | None]:
    """The status and bound a plan of ``placed_work`` may claim (docs/ARCHITECTURE.md, "Status,
    bound and gap").

    Tier 1 is an integer, so each bound is floored (a bound within 1e-6 of an integer counts as
    that integer); one below the plan is wrong (a bug) and discarded. OPTIMAL stands when the
    solver proved every tier on the model (which admits every valid plan), or, with tier 1 the
    only tier optimised, when the plan reaches the bound; the bound of an OPTIMAL plan is its
    placed work. No tolerance: OPTIMAL means no plan places more work.
    """
    best: float | None = None
    for b in bounds:
        if b is None:
            continue
        near = round(b)
        b = float(near if abs(b - near) <= 1e-6 else math.floor(b))
        if b < placed_work:
            log.warning("bound %s below a verified plan's placed work %s: discarded", b, placed_work)
            continue
        best = b if best is None else min(best, b)
    if status is SolveStatus.FEASIBLE and best == placed_work and tiers == ["placed_work"]:
        status = SolveStatus.OPTIMAL  # the bound proves it
    if status is SolveStatus.OPTIMAL:
        best = float(placed_work)
    return status, best


def _key(obj: ObjectiveTiers, tiers: list[str]) -> tuple[int, ...]:
    full = dict(zip(TIERS, obj.key(), strict=True))
    return tuple(full[t] for t in tiers)


def _better_or_equal(objective: Objective, new: list[int], old: list[int]) -> bool:
    a, b = objective.value(new), objective.value(old)
    return a >= b if objective.direction is Direction.MAXIMIZE else a <= b


_MAXIMISED = frozenset({"placed_work"})


class _Reporter:
    """The progress a caller sees, whoever reports it (the greedy, the portfolio, the backend's
    thread): ``elapsed_s`` is the time since the solve started and never goes back; per tier
    the objective only improves and the bound only tightens (an upper bound of ``placed_work``
    only falls, a lower bound of a minimised tier only rises: a weaker bound from another
    source is not shown); every event names its ``source``; one that changes nothing is not
    sent."""

    def __init__(self, callback: ProgressCallback, t0: float) -> None:
        self._callback = callback
        self._t0 = t0
        self._lock = threading.Lock()
        self._elapsed = 0.0
        self._best: dict[str, tuple[float, float | None]] = {}

    def report(self, source: str, tier: str, objective: float, bound: float | None) -> None:
        with self._lock:
            better, tighter = (max, min) if tier in _MAXIMISED else (min, max)
            old = self._best.get(tier)
            if old is not None:
                objective = better(objective, old[0])
                if old[1] is not None:
                    bound = old[1] if bound is None else tighter(bound, old[1])
            if old == (objective, bound):
                return
            self._best[tier] = (objective, bound)
            self._elapsed = max(self._elapsed, CLOCK() - self._t0)
            event = Progress(tier, objective, bound, self._elapsed, source)
            self._callback(event)  # under the lock: events leave in the order they were made

    def source(self, name: str) -> ProgressCallback:
        """A callback for a backend: its events, named ``name``, through this reporter."""

        def forward(p: Progress) -> None:
            self.report(p.source or name, p.tier, p.objective, p.bound)

        return forward


class _Run:
    """One solve: its request, its budget (replaced as it learns), how it reports and stops."""

    def __init__(self, problem: Problem, progress: ProgressCallback | None, stop: threading.Event | None):
        self.problem = problem
        self.budget = TimeBudget.start(problem.options.time_limit_s)
        self.progress = None if progress is None else _Reporter(progress, self.budget.begin)
        self.stop = stop
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.model: SolverBackend | None = None  # the per-node model's backend, once it ran

    def elapsed(self) -> float:
        return self.budget.elapsed()

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()


@dataclass(frozen=True)
class _InHand:
    """The best verified plan so far and what made it: the methods, first to last (``+``),
    and the LP/MIP solvers that ran for it."""

    plan: Plan
    placements: tuple[ReplicaPlacement, ...]
    made_by: str
    solvers: tuple[str, ...] = ()

    @property
    def work(self) -> int:
        """Tier 1 as compared: placed work, less the moves' price where moves are priced."""
        return self.plan.objective.net_work


def _model_vars(prepared: Prepared) -> int:
    """The per-node model's variables, roughly, from the candidate node counts (stops past the cap)."""
    est = 0
    for w, opts in prepared.options.items():
        per_node = len(opts[0].fits[0].levels) or 8
        est += prepared.candidate_nodes.get(w, 0) * per_node
        if est > MODEL_MAX_VARS:
            break
    return est


def _model_cost_s(prepared: Prepared) -> float:
    """A rough estimate of building and loading the model, from its size (about 30 us a variable)."""
    return MODEL_S_PER_VAR * _model_vars(prepared)


def solve(
    problem: Problem, progress: ProgressCallback | None = None, stop: threading.Event | None = None
) -> Plan:
    """Place the workloads of ``problem``; the returned plan has passed the verifier."""
    from placement.core.validate import validate
    from placement.exact.backends import get_backend

    run = _Run(problem, progress, stop)
    opts = problem.options
    errors = validate(problem)
    if errors:
        raise InputError(errors)
    prepared = filter_candidates(problem)
    errors = pinned_errors(problem, prepared.latency_ms)
    if errors:
        raise InputError(errors)
    filter_s = run.elapsed()
    log.info("filter: %s (%.2f s)", prepared.size(), filter_s)
    backend = get_backend(opts.backend)
    base = SolveInfo(
        status=SolveStatus.FEASIBLE,
        seed=opts.seed,
        code_revision=code_revision(),
        started_at=run.started_at,
    )

    if opts.deterministic:
        from placement.bounds.bound import columns_estimate
        from placement.construct.greedy import ORDERS

        effort = plan_effort(
            prepared,
            opts.time_limit_s,
            _model_vars(prepared),
            columns_estimate(prepared),
            len(ORDERS),
            cbc=opts.backend is Backend.PULP,
        )
        log.info("deterministic effort: %s", effort)
        base = replace(base, deterministic=True)
        wl = problem.workloads
        replicas = sum(wl[w].max_replicas for w in prepared.options)
        run.budget = replace(run.budget, effort=effort).estimated(len(prepared.nodes), replicas)
        search = run.budget.part(run.budget.search_end())  # the safety net of every step
        children = [c for c in default_children(prepared) if effort.lp or "lp_guided" not in c]
        portfolio = Portfolio(prepared, search, children)
        try:
            return migrated(
                problem,
                _honest(
                    _solve_deterministic(run, prepared, backend, base, portfolio, search.deadline), prepared
                ),
            )
        finally:
            portfolio.close()
    portfolio = Portfolio(prepared, run.budget)
    try:
        return migrated(problem, _honest(_solve(run, prepared, backend, base, portfolio, filter_s), prepared))
    finally:
        portfolio.close()


def migrated(problem: Problem, plan: Plan) -> Plan:
    """A re-plan's plan carries its migration sequence from the current placement
    (``core.sequence``), checked by the transient verifier (``core.verify_sequence``) before
    it leaves, as the plan is by the plan verifier. A plan with no placement to apply (no
    solution, infeasible) has none."""
    if plan.info.status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE) or not has_current(problem):
        return plan
    steps = migration(problem, plan)
    bad: list[object] = list(verify_migration(problem, plan, steps))
    if bad:
        raise PlanRejected(bad)
    return replace(plan, migration=steps)


def _honest(plan: Plan, prepared: Prepared) -> Plan:
    """A plan that places nothing where some workload has candidates is no solution, never
    FEASIBLE: the clock or a stop cut the search before any plan (a client that applies any
    FEASIBLE plan would empty its fleet). A proven OPTIMAL empty plan stays OPTIMAL."""
    if plan.info.status is SolveStatus.FEASIBLE and not plan.placements and prepared.options:
        log.info("the search ended before any plan placed something: NO_SOLUTION")
        return replace(plan, info=replace(plan.info, status=SolveStatus.NO_SOLUTION))
    return plan


# ------------------------------------------------------------- deterministic mode


def _rank(c: Offer, tiers: list[str]) -> tuple[object, ...]:
    """The deterministic mode's order of plans: better tiers first, then the registry's order
    of methods (``methods.preference``; never which child happened to send first)."""
    return (_key(c.objective, tiers), c.polished, -preference(c.method))


def _solve_deterministic(
    run: _Run,
    prepared: Prepared,
    backend: SolverBackend,
    base: SolveInfo,
    portfolio: Portfolio,
    search_until: float,
) -> Plan:
    """The deterministic mode (``placement.run.effort``): the same steps as the default mode, each
    with its work fixed in advance (``run.budget.effort``), one after the other:

    1. the greedy (``effort.greedy_orders`` orders), beside the portfolio's children (the
       heuristics; the LP, its bounds and ``effort.guided_variants`` roundings where
       ``effort.lp``), which run to their end;
    2. the best plan of all (``_rank``: tiers, then the registry's order) polished for
       ``effort.polish_rounds`` rounds;
    3. where ``effort.model``, the per-node model from that plan, with ``effort.model_det_s``
       of deterministic time over its tiers (70% to tier 1 when later tiers follow);
    4. the better of the model's plan and the polished one, assembled and verified.

    ``search_until`` is only the safety net: when the search outlives it the result may differ
    from run to run, and the plan says so (stop reason TIME_LIMIT). A stop returns the best
    verified plan in hand (INTERRUPTED).
    """
    progress, opts, budget = run.progress, run.problem.options, run.budget
    effort = budget.effort
    assert effort is not None  # the deterministic mode has its work plan
    tiers = enabled_tiers(opts, run.problem)
    found = last_plan(method("greedy").run(prepared, budget.part(search_until), run.stop))
    g_placements = found.placements if found is not None else ()
    best = Offer("greedy", g_placements, evaluate(run.problem, g_placements), run.elapsed())
    keep = _keep_current(run, prepared, base, search_until)
    replan = keep is not None
    if keep is not None and (
        _key(keep.plan.objective, tiers) >= _key(best.objective, tiers)
        or _breaks_replan(prepared, g_placements)
    ):
        best = Offer("keep_current", keep.placements, keep.plan.objective, run.elapsed())
    log.info("greedy: %d replicas (%.2f s)", len(g_placements), run.elapsed())
    if progress is not None:
        progress.report("greedy", "placed_work", float(best.objective.net_work), None)

    def wait() -> None:  # for every child to finish (or the safety net, or a stop)
        shown = (float(best.objective.net_work), portfolio.bound)
        while not portfolio.done and CLOCK() < search_until and not run.stopped():
            portfolio.poll(min(search_until, CLOCK() + POLL_S))
            now = (
                max([shown[0]] + [float(c.objective.net_work) for c in portfolio.plans]),
                portfolio.bound,
            )
            if progress is not None and now != shown:
                progress.report("portfolio", "placed_work", now[0], now[1])
                shown = now

    wait()

    def ok(c: Offer) -> bool:  # a re-plan takes only the plans within its rules
        return not replan or not _breaks_replan(prepared, c.placements)

    if not run.stopped() and prepared.options:
        best = max([best, *filter(ok, portfolio.plans)], key=lambda c: _rank(c, tiers))
        if effort.polish_rounds and not best.polished:
            portfolio.polish_now(best, search_until)
            wait()
    best = max([best, *filter(ok, portfolio.plans)], key=lambda c: _rank(c, tiers))
    log.info("deterministic: the %s plan is the best so far: %s", best.made_by, best.objective)

    status, stop_reason, bound = SolveStatus.FEASIBLE, StopReason.WORK_LIMIT, None
    placements, made_by, solvers = best.placements, best.made_by, best.solvers
    if not prepared.options:  # nothing can run anywhere: the pinned replicas alone are optimal
        status, stop_reason, bound = SolveStatus.OPTIMAL, StopReason.NONE, float(best.objective.net_work)
    elif effort.model and not run.stopped() and CLOCK() < search_until:
        container = build(prepared)
        hint = encode(container, placements)
        if hint is not None and container.program.is_feasible(hint):
            log.warning("the %s plan breaks the model; solving without its hint", best.made_by)
            hint = None
        values, statuses, stop_reason, bound = _optimise(
            run, container, backend, hint, tiers, work=effort.model_det_s, until=search_until
        )
        if len(statuses) == len(tiers) and all(st is SolveStatus.OPTIMAL for st in statuses):
            status, stop_reason = SolveStatus.OPTIMAL, StopReason.NONE
        if values is not None and (hint is None or values != container.tighten(hint)):
            got = decode(container, container.extract(values))
            got_obj = evaluate(run.problem, got)
            if _key(got_obj, tiers) >= _key(best.objective, tiers) and ok(Offer("model", got, got_obj, 0.0)):
                # warm-started from the best plan: the model carries on from its methods
                placements, made_by = got, chain([made_by, "model"]) if hint is not None else "model"
                solvers = solvers if hint is not None else ()
                model = {o.name: o.value(values) for o in container.program.objectives}
                if model != dict(zip(TIERS, got_obj.key_values(), strict=True)):
                    log.warning("model objective %s differs from the evaluated plan %s", model, got_obj)
                    status = SolveStatus.FEASIBLE  # what the solver proved is not this plan's objective
            else:  # a heuristic plan beats the model's answer: not the problem's optimum
                status = SolveStatus.FEASIBLE
    if run.stopped():
        stop_reason = StopReason.INTERRUPTED
        if not placements and prepared.options:
            status = SolveStatus.NO_SOLUTION
    elif CLOCK() > search_until:
        log.warning("deterministic mode: the time limit cut the search; this plan may not repeat")
        status, stop_reason = SolveStatus.FEASIBLE, StopReason.TIME_LIMIT
    # stopped: the plan is wanted now, its reasons get the least time (as in the default mode)
    explain_until = budget.explain_until(final=True, stopped=True) if run.stopped() else budget.explain_end()
    plan, bad = _plan(prepared, placements, base, explain_until)
    if CLOCK() > explain_until and stop_reason is not StopReason.INTERRUPTED:
        stop_reason = StopReason.TIME_LIMIT  # some reasons were cut short
    if bad:
        raise PlanRejected(bad)
    portfolio.poll(CLOCK())
    pw = plan.objective.net_work  # tier 1: the bounds hold for it (placed work >= net work)
    status, bound = claim(status, [bound, portfolio.bound], pw, tiers)
    gap = None if bound is None else (max(0.0, (bound - pw) / bound) if bound > 0 else 0.0)
    info = replace(base, status=status, stop_reason=stop_reason, bound=bound, gap=gap, wall_s=run.elapsed())
    return _done(run, _InHand(replace(plan, info=info), placements, made_by, solvers))


# ------------------------------------------------------------------- default mode


def _solve(
    run: _Run,
    prepared: Prepared,
    backend: SolverBackend,
    base: SolveInfo,
    portfolio: Portfolio,
    filter_s: float,
) -> Plan:
    """The default mode: every step works until its share of the one deadline
    (``placement.run.timebudget``), and the best verified plan in hand is returned."""
    progress, opts = run.progress, run.problem.options
    tiers = enabled_tiers(opts, run.problem)

    def info(status: SolveStatus, stop_reason: StopReason, bound: float | None, pw: int) -> SolveInfo:
        portfolio.poll(CLOCK())
        status, bound = claim(status, [bound, portfolio.bound], pw, tiers)
        gap = None
        if bound is not None:
            gap = max(0.0, (bound - pw) / bound) if bound > 0 else 0.0
        return replace(
            base, status=status, stop_reason=stop_reason, bound=bound, gap=gap, wall_s=run.elapsed()
        )

    def done(hand: _InHand, status: SolveStatus, stop_reason: StopReason, bound: float | None) -> Plan:
        return _done(
            run, replace(hand, plan=replace(hand.plan, info=info(status, stop_reason, bound, hand.work)))
        )

    # 1. greedy: a verified plan before any solver runs (itself time-boxed: a partial greedy
    # plan is valid, every workload being all or nothing)
    too_big = _model_vars(prepared) > MODEL_MAX_VARS
    run.budget = run.budget.guessed(len(prepared.nodes), filter_s)
    g_deadline = run.budget.at(GREEDY_SHARE)
    if too_big:  # no model follows: the greedy may use what the plan's assembly leaves
        g_deadline = max(g_deadline, run.budget.last_plan_by())
    # beside a running portfolio, one pass: its children (the LP-guided plan above all) need the cores
    # a re-plan: the current placement repaired (keep_current) is a candidate first plan; of it
    # and the greedy's only the better (objective alone) is assembled, the other where it fails
    kept = _keep_placements(run, prepared, g_deadline)
    first = Greedy(passes=0 if portfolio.done else 1)
    found = last_plan(first.run(prepared, run.budget.part(g_deadline), run.stop))
    g_placements = found.placements if found is not None else ()
    log.info("greedy: %d replicas (%.2f s)", len(g_placements), run.elapsed())
    timing: dict[str, float] = {}
    # explained with a share only: a heuristic's or the model's plan may replace it
    explain = run.budget.explain_until(final=False, stopped=run.stopped())
    if kept is not None and (
        _key(evaluate(run.problem, kept), tiers) >= _key(evaluate(run.problem, g_placements), tiers)
        or _breaks_replan(prepared, g_placements)  # built from scratch: not assembled first in vain
    ):
        order = [("keep_current", kept), ("greedy", g_placements)]
    else:
        order = [("greedy", g_placements)] + ([("keep_current", kept)] if kept is not None else [])
    hand = None
    for k, (name, placements) in enumerate(order):
        first_plan, bad = _plan(prepared, placements, base, explain, timing)
        if k == 0:
            run.budget = run.budget.measured(timing["assemble_s"])
        if not bad:
            log.info(
                "%s plan verified, the first in hand (%.2f s; assembling took %.2f s)",
                name,
                run.elapsed(),
                timing["assemble_s"],
            )
            if name != "greedy":
                obj = first_plan.objective
                log.info("keep_current: placed_work %d, moves %d", obj.placed_work, obj.moves)
            hand = _InHand(first_plan, placements, name)
            break
        if name == "greedy" and (kept is None or not _only_disruption(bad)):
            raise PlanRejected(bad)
        log.warning("the %s plan fails verification (%s)", name, bad[:3])
    if hand is None:
        raise PlanRejected(bad)
    if progress is not None:  # the first verified plan: an operator sees it at once
        progress.report(hand.made_by, "placed_work", float(hand.plan.objective.net_work), None)
    # 1b. the heuristics (beside us in the portfolio's child): the best verified plan is the base
    # the model starts from the best plan in hand: wait a little for the portfolio's (on small
    # fleets its LP-guided plan comes within a second and is a better start than the greedy's)
    wait_until = run.budget.after(PORTFOLIO_WAIT_SHARE)
    finishing = [m for m in FINISHING if too_big and method(m).applies(prepared)]
    if too_big:  # nothing else to do with the time: wait for them, leaving room to verify their plan
        wait_until = run.budget.search_end()
        if finishing:  # and room for the finishing methods on the best plan
            wait_until -= run.budget.share(FINISHING_SHARE)
    hand = _best_heuristic(run, prepared, portfolio, hand, tiers, wait_until, base)
    if progress is not None:  # a heuristic's plan may have replaced the greedy's
        progress.report("portfolio", "placed_work", float(hand.plan.objective.net_work), None)
    if not prepared.options:  # nothing can run anywhere: the pinned replicas alone are optimal
        return done(hand, SolveStatus.OPTIMAL, StopReason.NONE, hand.work)
    if run.stopped():  # before any plan was complete, nothing placed is no solution
        st = SolveStatus.FEASIBLE if hand.placements else SolveStatus.NO_SOLUTION
        return done(hand, st, StopReason.INTERRUPTED, None)
    if too_big or run.budget.model_end() - CLOCK() < MODEL_MARGIN * _model_cost_s(prepared) + 0.1:
        log.info("model not built (too big or no time left); returning the best verified plan in hand")
        for name in finishing:
            hand = _finished(run, prepared, name, hand, tiers, base)
        return done(hand, SolveStatus.FEASIBLE, StopReason.TIME_LIMIT, None)

    # 2. the model, warm-started from the greedy plan
    container = build(prepared)
    ip = container.program
    log.info(
        "model: %s; %d variables, %d constraints (%.2f s)",
        prepared.size(),
        ip.num_vars,
        len(ip.constraints),
        run.elapsed(),
    )
    hint = encode(container, hand.placements)
    if hint is not None:
        broken = ip.is_feasible(hint)
        if broken:
            log.warning("greedy plan breaks the model (%s); solving without its hint", broken[:5])
            hint = None
    elif hand.placements:
        log.warning("greedy plan does not fit the model's variables; solving without its hint")

    # 3. tiers, lexicographic
    best, statuses, stop_reason, bound = _optimise(run, container, backend, hint, tiers)
    status = (
        SolveStatus.OPTIMAL
        if len(statuses) == len(tiers) and all(st is SolveStatus.OPTIMAL for st in statuses)
        else SolveStatus.FEASIBLE
    )
    # a heuristic that finished meanwhile may still be better (the portfolio is done by now on
    # instances the model can take; wait for it while the time box allows)
    hinted = hand
    hand = _best_heuristic(run, prepared, portfolio, hand, tiers, run.budget.search_end(), base)
    if best is None or (hint is not None and best == container.tighten(hint)):
        if hand is not hinted:  # a heuristic beat the solver's answer: it was not the optimum
            status = SolveStatus.FEASIBLE
        # the solver added nothing: the greedy (or heuristic) plan stands (already verified)
        return done(hand, status, stop_reason, bound)

    # 4. decode, re-evaluate and verify
    placements = decode(container, container.extract(best))
    explain = run.budget.explain_until(final=True, stopped=run.stopped())
    plan, bad = _plan(prepared, placements, base, explain)
    if _key(plan.objective, tiers) < _key(hand.plan.objective, tiers):
        if status is SolveStatus.OPTIMAL:  # the model's optimum is not the problem's
            log.warning("a heuristic plan beats the model's proven optimum: not claimed OPTIMAL")
            status = SolveStatus.FEASIBLE
        log.info("solver plan is worse than the greedy plan; returning the greedy plan")
        return done(hand, status, stop_reason, bound)
    if bad and _only_disruption(bad):
        log.info("the model's plan breaks a re-plan rule (%s); keeping the plan in hand", bad[:3])
        return done(hand, SolveStatus.FEASIBLE, stop_reason, bound)
    if bad:
        raise PlanRejected(bad)
    model = {o.name: o.value(best) for o in ip.objectives}
    got = dict(zip(TIERS, plan.objective.key_values(), strict=True))
    if model != got:
        log.warning("model objective %s differs from the evaluated plan %s", model, got)
        status = SolveStatus.FEASIBLE  # what the solver proved is not this plan's objective
    if hint is None:
        return done(_InHand(plan, placements, "model"), status, stop_reason, bound)
    # warm-started from the plan in hand: the model carries on from the methods that made it
    return done(
        _InHand(plan, placements, chain([hinted.made_by, "model"]), hinted.solvers),
        status,
        stop_reason,
        bound,
    )


def _breaks_replan(prepared: Prepared, placements: tuple[ReplicaPlacement, ...]) -> bool:
    """The kernel's re-plan rules (``state.disruption_short``) for a finished plan."""
    from placement.core.state import FleetState, disruption_short

    try:
        rows = FleetState.from_placements(prepared, placements).placements
    except (KeyError, ValueError):
        return True
    return disruption_short(prepared, rows) is not None


def _only_disruption(bad: list[object]) -> bool:
    """Every finding is of a re-plan rule (disruption budgets, preemption): a method that builds
    from scratch may break them; the plan is not taken, which is no error."""
    return all(getattr(v, "rule", "") in ("disruption", "preemption") for v in bad)


def _keep_placements(run: _Run, prepared: Prepared, until: float) -> tuple[ReplicaPlacement, ...] | None:
    """The current placement repaired (``keep_current``), where workloads run; not yet verified."""
    keep = method("keep_current")
    if not keep.applies(prepared):
        return None
    found = last_plan(keep.run(prepared, run.budget.part(until), run.stop))
    return found.placements if found is not None else None


def _keep_current(run: _Run, prepared: Prepared, base: SolveInfo, until: float) -> _InHand | None:
    """The current placement repaired (``keep_current``), assembled and verified, where workloads run."""
    keep = method("keep_current")
    if not keep.applies(prepared):
        return None
    found = last_plan(keep.run(prepared, run.budget.part(until), run.stop))
    if found is None:
        return None
    plan, bad = _plan(
        prepared, found.placements, base, run.budget.explain_until(final=False, stopped=run.stopped())
    )
    if bad:
        log.warning("the current placement repaired fails verification (%s); not a start", bad[:3])
        return None
    log.info("keep_current: placed_work %d, moves %d", plan.objective.placed_work, plan.objective.moves)
    return _InHand(plan, found.placements, "keep_current")


def _best_heuristic(
    run: _Run,
    prepared: Prepared,
    portfolio: Portfolio,
    hand: _InHand,
    tiers: list[str],
    wait_until: float,
    base: SolveInfo,
) -> _InHand:
    """The better of the plan in hand and the portfolio's plans received by ``wait_until``, verified."""
    mine = Offer(hand.made_by, hand.placements, hand.plan.objective, run.elapsed(), solvers=hand.solvers)
    _wait(run, portfolio, mine, wait_until, tiers)
    best = None
    for offer in sorted(portfolio.plans, key=lambda c: _key(c.objective, tiers), reverse=True):
        if _key(offer.objective, tiers) <= _key(hand.plan.objective, tiers):
            break
        if prepared.current and _breaks_replan(prepared, offer.placements):  # built from scratch
            log.info("the %s plan breaks the re-plan's budgets or preemption: not taken", offer.made_by)
            portfolio.plans.remove(offer)
            continue
        best = offer
        break
    if best is None:
        return hand
    if not run.budget.can_assemble():
        log.info("no time left to verify the %s plan; keeping the plan in hand", best.made_by)
        return hand
    portfolio.plans.remove(best)
    chosen, made_by = best.placements, best.made_by
    # not polished in the portfolio: fill what the heuristic left (about a greedy pass over the
    # unplaced workloads), move replicas capped for want of watts to where they run higher and
    # spend the watts they leave, swap tiers; the domains are repacked only in the portfolio's
    # child, which has the parent's wait for it (seconds at L)
    fill_until = run.budget.search_end()
    if not best.polished and fill_until > CLOCK() and not run.stopped():
        light = last_plan(method("light_polish").run(prepared, run.budget.part(fill_until), run.stop, chosen))
        if light is not None and light.changed:
            chosen, made_by = light.placements, chain([made_by, "light_polish"])
    explain = run.budget.explain_until(final=True, stopped=run.stopped())
    got, bad = _plan(prepared, chosen, base, explain)
    if bad:
        log.warning("the %s plan fails verification (%s); keeping the plan in hand", made_by, bad[:3])
        return hand
    log.info("the %s plan is the best so far: placed_work %d", made_by, got.objective.placed_work)
    return _InHand(got, chosen, made_by, best.solvers)


def _wait(run: _Run, portfolio: Portfolio, in_hand: Offer, until: float, tiers: list[str]) -> None:
    """Take what the portfolio sends until ``until``, having the best plan (``in_hand`` or the
    portfolio's) polished meanwhile (``Portfolio.polish``); report each better plan or bound as
    it comes (at 40,000 GPUs this wait is most of the solve)."""
    work = in_hand.objective.net_work  # tier 1 as compared: placed work less the moves' price
    shown: tuple[float, float | None] = (float(work), portfolio.bound)
    while True:
        # stopped: take what has arrived, without waiting (the plan is wanted now)
        portfolio.poll(CLOCK() if run.stopped() else min(until, CLOCK() + POLL_S))
        if not run.stopped():
            portfolio.polish(until, lambda c: _key(c.objective, tiers), in_hand)
        if run.progress is not None:
            best = max([float(work)] + [float(c.objective.net_work) for c in portfolio.plans])
            now = (best, portfolio.bound)
            if now != shown:
                run.progress.report("portfolio", "placed_work", best, portfolio.bound)
                shown = now
        if portfolio.done or CLOCK() >= until or run.stopped():
            return


def _finished(
    run: _Run, prepared: Prepared, name: str, hand: _InHand, tiers: list[str], base: SolveInfo
) -> _InHand:
    """The finishing method ``name`` (``methods.FINISHING``) on the plan in hand; its plan if it
    verifies and is better on the enabled tiers."""
    until = run.budget.search_end()
    if until - CLOCK() < 0.1 or run.stopped():
        return hand
    found = last_plan(method(name).run(prepared, run.budget.part(until), run.stop, hand.placements))
    if found is None or not found.changed:
        return hand
    explain = run.budget.explain_until(final=True, stopped=run.stopped())
    new, bad = _plan(prepared, found.placements, base, explain)
    if bad:
        log.warning("the %s plan fails verification (%s); keeping the plan in hand", name, bad[:3])
        return hand
    if _key(new.objective, tiers) <= _key(hand.plan.objective, tiers):
        return hand
    log.info("%s: placed_work %d -> %d", name, hand.work, new.objective.placed_work)
    return _InHand(new, found.placements, chain([hand.made_by, name]), (*hand.solvers, *found.solvers))


def _done(run: _Run, hand: _InHand) -> Plan:
    """The plan in hand, stamped with what made it: its methods and their solvers, and the
    per-node model's backend and solver when the model ran (from this plan, or after a better one)."""
    solvers = hand.solvers
    backend = ""
    if run.model is not None:
        backend = run.model.name
        solvers = (*solvers, run.model.solver)
    solvers = tuple(dict.fromkeys(solvers))
    info = replace(
        hand.plan.info,
        method=hand.made_by,
        solvers=solvers,
        backend=backend,
        solver_version=versions(solvers),
    )
    log.info(
        "solve: %s %s, objective %s, %.2f s, by %s (%s)",
        info.status.value,
        info.stop_reason.value,
        hand.plan.objective,
        info.wall_s,
        info.method,
        ", ".join(solvers) or "no LP or MIP solver",
    )
    return replace(hand.plan, info=info)


# a stop reason outranks the ones below it: a tier the clock cut makes the whole run clock-bound
_STOP_RANK = {
    StopReason.NONE: 0,
    StopReason.WORK_LIMIT: 1,
    StopReason.TIME_LIMIT: 2,
    StopReason.INTERRUPTED: 3,
}


def _optimise(
    run: _Run,
    c: Container,
    backend: SolverBackend,
    hint: list[int] | None,
    tiers: list[str],
    work: float | None = None,
    until: float | None = None,
) -> tuple[list[int] | None, list[SolveStatus], StopReason, float | None]:
    """The tiers one after the other, each held at its value before the next. Wall time: tier 1
    gets ``TIER1_SHARE`` of what is left when later tiers follow, each later tier an equal share.
    With ``work`` (the deterministic mode) the same shares of ``work`` bound each tier in
    deterministic time and every tier may run to ``until`` (the safety net)."""
    ip = c.program
    statuses: list[SolveStatus] = []
    stop_reason = StopReason.NONE
    bound: float | None = None
    best = c.tighten(hint) if hint is not None else None
    if run.stopped():
        return best, statuses, StopReason.INTERRUPTED, None
    end = run.budget.model_end() if until is None else until
    if end - CLOCK() <= 0.01:
        return best, statuses, StopReason.TIME_LIMIT, None
    objectives = {o.name: o for o in ip.objectives}
    work_left = work or 0.0
    opts = run.problem.options
    session = backend.load(ip, opts.seed, opts.workers)
    run.model = backend
    for i, tier in enumerate(tiers):
        if run.stopped():
            stop_reason = StopReason.INTERRUPTED
            break
        remaining = end - CLOCK()
        if remaining <= 0.01:
            stop_reason = StopReason.TIME_LIMIT
            break
        left = len(tiers) - i
        part = TIER1_SHARE if (i == 0 and left > 1) else 1 / left
        share = remaining if work is not None else remaining * part
        tier_work = None
        if work is not None:
            tier_work = work_left * part
            work_left -= tier_work
        obj = objectives[tier]
        if not obj.var_indices:  # a constant tier is optimal as it is
            statuses.append(SolveStatus.OPTIMAL)
            continue
        try:
            forward = None if run.progress is None else run.progress.source(backend.name)
            res: TierResult = session.solve(obj, share, best, forward, run.stop, tier_work)
        except Exception:  # a solver crash must not lose the verified plan in hand
            log.exception(
                "tier %s failed in the %s backend; keeping the best plan so far", tier, backend.name
            )
            break
        log.info(
            "tier %s: %s %s value %s bound %s in %.2f s (of %.2f s)",
            tier,
            res.status.value,
            res.stop_reason.value,
            res.objective,
            res.bound,
            res.wall_s,
            share,
        )
        statuses.append(res.status)
        if _STOP_RANK[res.stop_reason] > _STOP_RANK[stop_reason]:  # the weightiest reason stands
            stop_reason = res.stop_reason
        if tier == "placed_work" and res.bound is not None:
            bound = float(res.bound)
        if res.values is not None:
            got = c.tighten(res.values)
            if best is None or _better_or_equal(obj, got, best):
                best = got
        if best is None:
            break
        if i + 1 < len(tiers):
            session.hold(obj, obj.value(best))
    return best, statuses, stop_reason, bound
