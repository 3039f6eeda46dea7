"""One deadline on one clock, and the shares of it that each step of a solve gets.

A solve has one time limit. ``TimeBudget.start(limit_s)`` turns it into one deadline on one
clock (``CLOCK``, ``time.monotonic``: system-wide on Linux, so a forked child reads the
parent's deadlines as they are), and every step's end is derived from that deadline here,
by name, never by a step of its own:

* the end is kept for the final plan: ``reserve_s`` (at first ``RESERVE_FRACTION`` of the
  limit, at most ``RESERVE_MAX_S``), which grows, once one plan's assembly has been measured
  (``measured``), to ``ASSEMBLY_MARGIN`` times that assembly plus ``EXPLAIN_SHARE`` of the
  limit for explaining what is left unplaced;
* ``search_end``: the searches (the portfolio's methods, the waits for them, the finishing
  methods) stop here, so that their best plan can still be assembled and verified
  (``assembly_s``) before the reserve;
* ``model_end``: the per-node model's tiers stop here (the reserve alone is left after it);
* ``at(GREEDY_SHARE)``: the greedy's share from the start; ``after(PORTFOLIO_WAIT_SHARE)``:
  a share from now (the wait for the portfolio's first plans before the model);
* ``explain_until``: how long an interim or the final plan's unplaced work is explained;
* ``part(until)``: the budget of one method that must end by ``until`` (its deadline), and
  ``effort`` in the deterministic mode.

In the deterministic mode (``placement.run.effort``) the work of each step is fixed by ``effort``
and the deadlines are only the safety net: no choice reads the clock while they hold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from placement.run.effort import Effort

CLOCK = time.monotonic  # the one clock of a solve, its methods and its children

RESERVE_FRACTION = 0.05  # of the time limit kept for the final plan, at first
RESERVE_MAX_S = 1.0
ASSEMBLY_MARGIN = 1.5  # a plan's assembly and verification is counted at this much of its measure
ASSEMBLE_S_PER_NODE = 2.5e-4  # a plan's assembly, estimated from its size
ASSEMBLE_S_PER_REPLICA = 2e-5
GREEDY_SHARE = 0.5  # of the time limit, at most, for the greedy (when a model follows)
PORTFOLIO_WAIT_SHARE = 0.1  # of the time limit, at most, waiting for the portfolio before the model
EXPLAIN_SHARE = 0.05  # of the time limit for explaining an interim plan's unplaced work
EXPLAIN_MIN_S = 0.05
EXPLAIN_MARGIN_S = 0.1
TIER1_SHARE = 0.7  # of the model's time for tier 1 (placed work) when later tiers follow
POLL_S = 0.2  # a plan the portfolio sends is taken (and polished) at most this long after it arrives


@dataclass(frozen=True)
class TimeBudget:
    """The deadline of a solve or of one of its steps (module docstring). Frozen: a step's
    budget is a new one (``part``, ``measured``), the solve's is replaced as it learns."""

    begin: float  # CLOCK seconds when the solve started
    deadline: float  # CLOCK seconds when it must be done
    limit_s: float  # the solve's time limit (shares are of it)
    reserve_s: float = 0.0  # kept at the end for the final plan
    assemble_s: float = 0.0  # one plan's budgets, objective and verification, measured
    effort: Effort | None = None  # the deterministic mode's work plan

    @classmethod
    def start(cls, limit_s: float, effort: Effort | None = None) -> TimeBudget:
        now = CLOCK()
        limit = max(0.0, limit_s)
        return cls(now, now + limit_s, limit, min(RESERVE_MAX_S, RESERVE_FRACTION * limit), 0.0, effort)

    # -------------------------------------------------------------------- reading the clock

    @staticmethod
    def now() -> float:
        return CLOCK()

    def elapsed(self) -> float:
        return CLOCK() - self.begin

    def left(self) -> float:
        return self.deadline - CLOCK()

    def expired(self) -> bool:
        return CLOCK() > self.deadline

    # ------------------------------------------------------------------------- the shares

    def share(self, fraction: float) -> float:
        """``fraction`` of the time limit, in seconds."""
        return fraction * self.limit_s

    def at(self, fraction: float) -> float:
        """When ``fraction`` of the limit has passed since the start."""
        return self.begin + self.share(fraction)

    def after(self, fraction: float) -> float:
        """``fraction`` of the limit from now."""
        return CLOCK() + self.share(fraction)

    @property
    def assembly_s(self) -> float:
        """One plan's assembly and verification, with its margin."""
        return ASSEMBLY_MARGIN * self.assemble_s

    def search_end(self) -> float:
        """Searching stops here: what is left assembles the best plan and keeps the reserve."""
        return self.deadline - self.reserve_s - self.assembly_s

    def model_end(self) -> float:
        return self.deadline - self.reserve_s

    def can_assemble(self) -> bool:
        """Whether one more plan can still be assembled and verified before the deadline."""
        return self.left() >= self.assembly_s

    def part(self, until: float, effort: Effort | None = None) -> TimeBudget:
        """The budget of a step that must end by ``until`` (and by this budget's deadline)."""
        return replace(self, deadline=min(until, self.deadline), effort=effort or self.effort)

    def last_plan_by(self) -> float:
        """The latest a plan can be in hand and still be assembled, verified and explained."""
        return self.deadline - self.assembly_s - self.share(EXPLAIN_SHARE)

    # ----------------------------------------------------------------- what it learns

    def guessed(self, nodes: int, filter_s: float) -> TimeBudget:
        """Before any plan is assembled: its assembly guessed from the fleet's size and from how
        long the filter took on this instance (assembling takes about as long as filtering at
        40,000 GPUs, so the filter's time tells how fast the machine runs right now)."""
        return replace(self, assemble_s=max(ASSEMBLE_S_PER_NODE * nodes, filter_s * nodes / 8000))

    def measured(self, assemble_s: float) -> TimeBudget:
        """A plan's assembly took ``assemble_s``: keep room for one more, and for the final
        plan's explanations, at the end."""
        reserve = max(self.reserve_s, ASSEMBLY_MARGIN * assemble_s + self.share(EXPLAIN_SHARE))
        return replace(self, assemble_s=assemble_s, reserve_s=reserve)

    def estimated(self, nodes: int, replicas: int) -> TimeBudget:
        """The deterministic mode: a plan's assembly estimated from its size (never measured,
        so that no choice depends on the clock), the explanations' share added to the reserve."""
        assemble_s = ASSEMBLE_S_PER_NODE * nodes + ASSEMBLE_S_PER_REPLICA * replicas
        return replace(self, assemble_s=assemble_s, reserve_s=self.reserve_s + self.share(EXPLAIN_SHARE))

    def explain_until(self, final: bool, stopped: bool = False) -> float:
        """Until when a plan's unplaced work is explained: an interim plan a share, the final
        one what is left (at most twice the share), a stopped solve a moment."""
        now = CLOCK()
        if stopped:  # interrupted: the plan is wanted now
            return now + EXPLAIN_MIN_S
        share = max(EXPLAIN_MIN_S, self.share(EXPLAIN_SHARE))
        if final:
            last = self.deadline - EXPLAIN_MARGIN_S - self.assembly_s
            return max(now + EXPLAIN_MIN_S, min(last, now + 2 * share))
        return now + share

    def explain_end(self) -> float:
        """The deterministic mode's final plan: explained until just before the deadline."""
        return self.deadline - EXPLAIN_MARGIN_S
