"""How much work the deterministic mode does: counts and deterministic time, from sizes alone.

In the default mode every step of the solve works until a share of the wall-clock limit is
used, so the plan depends on how fast the machine ran. In the deterministic mode
(``SolveOptions.deterministic``) each step's work is fixed before it starts, from the
instance's size and the time limit only, never from a clock:

* the greedy's orders (``greedy.ORDERS``): all of them, or the first only;
* whether the node-group LP runs (``placement.bounds.bound``) and how many of the LP-guided
  roundings (``methods.GUIDED_VARIANTS``) follow it;
* the polish's rounds (``polish.polish``) and each power domain's CP-SAT budget in
  deterministic time (``repack_det_s``);
* whether the per-node model is built and its budget over all tiers in CP-SAT's
  deterministic seconds (``model_det_s``; the PuLP backend turns it into CBC nodes).

The choice uses estimated seconds per unit of size (``S_PER_*``), calibrated on profile L seed 0
(docs/experiments/2026-12-06-deterministic-mode.md, "Calibration"), and fills
``DET_SHARE`` of the time limit in order of value: the greedy, the LP with its first rounding, one polish
round, the model, then more roundings and rounds. The estimates only size the work; the
plan is the same whatever the estimates' error, as long as the wall-clock limit (kept as the
safety net) does not cut the run. When it does, the solve says so (stop reason TIME_LIMIT).

Invariant: ``plan_effort(prepared, limit_s, workers)`` is a pure function of the filter's output
(itself a function of the request), the time limit and the worker count.
"""

from __future__ import annotations

from dataclasses import dataclass

from placement.core.candidates import Prepared

DET_SHARE = 0.25  # of the time limit filled by the estimates: a machine four times as slow still fits
S_PER_REPLICA_GREEDY = 4e-5  # one greedy order (L: 0.42 s for 11,269 requested replicas)
S_PER_COLUMN_LP = 1.7e-5  # the node-group LP, built and solved (L: 26 s for 1.65 million columns)
S_PER_REPLICA_GUIDED = 5e-4  # one LP-guided rounding (L: 5.5 s)
S_PER_REPLICA_POLISH = 2e-4  # fill, relocate and swaps (L: 2.2 s)
S_PER_DOMAIN_REPACK = 5e-3  # one repack round of every power domain (L: 5.4 s for 1,186 domains)
S_PER_DOMAIN_BOUND = 5e-3  # the integer bound's per-rack programs
S_PER_VAR_MODEL = 3e-5  # building and loading the per-node model
S_PER_VAR_CBC_TIER = 2e-3  # CBC's root node of one later tier, which no node limit bounds (mixed: 16 s)
S_PER_DET_UNIT = 2.5  # wall seconds per CP-SAT deterministic second (one worker; 2.3-2.7 s)
REPACK_DET_S = 0.02  # CP-SAT deterministic time per power domain in the repack
MODEL_MAX_VARS = 200_000  # as the default mode: beyond this the per-node model is not built
MODEL_MIN_DET_S = 0.5  # a model with less deterministic time than this is not worth building
MODEL_MAX_DET_S = 60.0
MODEL_DET_S_PER_VAR = 1e-3  # more deterministic time than this a variable buys little (mixed: 4.8 s)
MAX_VARIANTS = 8
MAX_ROUNDS = 6
LP_MAX_COLUMNS = 2_000_000  # placement.bounds.bound.MAX_COLUMNS: beyond it the LP refuses


@dataclass(frozen=True)
class Effort:
    """The deterministic mode's work plan for one solve (module docstring)."""

    greedy_orders: int  # greedy.ORDERS tried, from the first
    lp: bool  # the node-group LP, its bounds and roundings run
    guided_variants: int  # LP-guided roundings (methods.GUIDED_VARIANTS, from the first)
    polish_rounds: int  # polish.polish rounds of consolidate, repack and swap sets (0: no polish)
    repack_det_s: float  # CP-SAT deterministic time per power domain in the repack
    model: bool  # the per-node model is built and solved
    model_det_s: float  # CP-SAT deterministic time over all tiers
    estimate_s: float  # the estimated seconds of all of the above


def plan_effort(
    prepared: Prepared, limit_s: float, model_vars: int, columns: int, orders: int, cbc: bool = False
) -> Effort:
    """The work plan for ``prepared`` within ``limit_s`` (``model_vars``: the per-node model's
    estimated variables; ``columns``: the node-group LP's estimated columns; ``orders``: the
    greedy orders available; ``cbc``: the model would be solved by CBC, whose root node of
    each later tier costs ``S_PER_VAR_CBC_TIER`` a variable whatever its node limit)."""
    wl = prepared.problem.workloads
    replicas = sum(wl[w].max_replicas for w in prepared.options)
    domains = len({g.rep.domain_key for g in prepared.groups})
    budget = DET_SHARE * max(0.0, limit_s)

    greedy_one = S_PER_REPLICA_GREEDY * replicas
    spent = greedy_one
    greedy_orders = 1
    if greedy_one * orders <= 0.05 * budget:
        greedy_orders, spent = orders, greedy_one * orders

    lp_s = S_PER_COLUMN_LP * columns
    guided_s = S_PER_REPLICA_GUIDED * replicas
    round_s = S_PER_DOMAIN_REPACK * domains + S_PER_REPLICA_POLISH * replicas
    lp = bool(prepared.options) and columns <= LP_MAX_COLUMNS and spent + lp_s + guided_s <= budget
    variants = 0
    if lp:
        spent += lp_s + guided_s + S_PER_DOMAIN_BOUND * domains
        variants = 1
    rounds = 0
    if prepared.options and spent + round_s <= budget:
        spent += round_s
        rounds = 1

    model = False
    model_det_s = 0.0
    build_s = S_PER_VAR_MODEL * model_vars
    if cbc:
        build_s += S_PER_VAR_CBC_TIER * model_vars * 3
    if prepared.options and model_vars <= MODEL_MAX_VARS:
        left = budget - spent - build_s
        enough = max(MODEL_MIN_DET_S, MODEL_DET_S_PER_VAR * model_vars)
        det = min(MODEL_MAX_DET_S, enough, left / S_PER_DET_UNIT)
        if det >= MODEL_MIN_DET_S:
            model, model_det_s = True, det
            spent += build_s + det * S_PER_DET_UNIT

    # what is left: more roundings and polish rounds, alternately
    while True:
        grew = False
        if lp and variants < MAX_VARIANTS and spent + guided_s <= budget:
            variants += 1
            spent += guided_s
            grew = True
        if rounds and rounds < MAX_ROUNDS and spent + round_s <= budget:
            rounds += 1
            spent += round_s
            grew = True
        if not grew:
            break
    return Effort(
        greedy_orders=greedy_orders,
        lp=lp,
        guided_variants=variants,
        polish_rounds=rounds,
        repack_det_s=REPACK_DET_S,
        model=model,
        model_det_s=round(model_det_s, 3),
        estimate_s=round(spent, 3),
    )
