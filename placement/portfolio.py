"""The portfolio beside the solve: heuristics, bounds, the LP-guided plan and its polish in child processes.

``solve`` starts ``Portfolio(problem)`` right after the filter. Two forked children work
beside the parent (which runs the greedy and, where it fits, the model):

* the heuristics child computes the linear relaxation bound on tier 1
  (``placement.partition.relaxation_bound``, under a second at 40,000 GPUs), then the plans
  of the heuristics (``placement.heuristics``: FGD, best-fit, first-fit decreasing), each
  with its objective;
* the LP child solves the LP over node groups (``placement.bound.group_lp``, seconds at
  40,000 GPUs), sends its bound, and rounds its solution into a plan
  (``placement.guided``, method ``lp_guided``).

While the parent waits, ``polish`` forks a third child on the best plan so far (the LP-guided
one as soon as it comes; another plan only once the LP child is done): ``repack.polish``
with the power domains repacked, sent back as a plan that replaces its source. At L it runs
from the LP-guided plan (about 31 s) to the parent's wait (about 50 s), on the core the
heuristics child left.

Each result is sent as soon as it exists; the parent keeps the tightest bound and takes
what has arrived by its own deadline; at ``close`` the children are killed whatever they
are doing, so they are time-boxed although they take no deadline themselves. On this
2-core machine the parent mostly waits at 40,000 GPUs (no model is built there), so the two
children have a core each.

The children are bare ``os.fork`` (no multiprocessing), so that they also work inside a
daemonic worker process; where fork is unavailable the portfolio is empty. Everything
a child sends is checked again by the parent (plans are verified before use; a bound
below a verified plan's placed work is discarded).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from placement import greedy
from placement.bound import GroupLP
from placement.candidates import Prepared
from placement.domain import ObjectiveTiers, Problem, ReplicaPlacement
from placement.effort import Effort

log = logging.getLogger(__name__)

HEURISTICS = ("fgd", "best_fit", "first_fit_decreasing")
METHODS = (*HEURISTICS, "lp_guided")  # every method a portfolio sends plans of
# the LP-guided rounding, in these variants one after the other (workload order, round-up share,
# re-solve the LP for the last tier, the budgets' failures by the LP's prices); best first as
# measured (profiles S, M, L seeds 0-2, one LP each): the first alone gives L 1.50% on
# average, all four 1.49%; the plain ones (the first variants before the prices) 1.60%. On
# profile L each took 4-9 s; on S the plain ones were the better ones (3.0% against 3.04%).
GUIDED_VARIANTS = (
    (greedy.order_key, 0.3, False, True),
    (greedy.ORDERS[2], 0.3, False, True),
    (greedy.order_key, 0.3, True, True),
    (greedy.order_key, 0.5, False, True),
    (greedy.order_key, 0.3, True, False),
    (greedy.ORDERS[2], 0.3, True, False),
    (greedy.order_key, 0.5, True, False),
    (greedy.ORDERS[2], 0.5, True, False),
)
_HEADER = struct.Struct("!Q")
LP_TOO_BIG = 2  # the LP child gives up at once past this many times the LP's column cap (estimated)
POLISH_MIN_S = 2.0  # a plan is polished only with at least this long to go
POLISH_MARGIN_S = 2.0  # the polishing child stops this long before the parent stops waiting


@dataclass(frozen=True)
class Candidate:
    """One heuristic's plan with its (child-evaluated) objective; ``polished``: the plan went
    through ``repack.polish`` already (in the portfolio's polishing child)."""

    method: str
    placements: tuple[ReplicaPlacement, ...]
    objective: ObjectiveTiers
    wall_s: float
    polished: bool = False


class Portfolio:
    def __init__(
        self,
        problem: Problem,
        with_heuristics: bool = True,
        prepared: Prepared | None = None,
        effort: Effort | None = None,
        deadline: float | None = None,
    ) -> None:
        """``prepared``: the solve's own filter of ``problem``, which the LP child then need not redo.

        ``effort`` (the deterministic mode): the LP child runs only where ``effort.lp`` says so and
        stops after ``effort.guided_variants`` roundings, and no child stops before ``deadline``
        (monotonic seconds, the safety net) for want of time.
        """
        self.plans: list[Candidate] = []
        self.bound: float | None = None
        self.done = False
        self._problem = problem
        self._prepared = prepared
        self._kids: dict[int, tuple[int, bytearray]] = {}  # fd -> (pid, unread bytes)
        self._lp_fd: int | None = None
        self._polish_fd: int | None = None
        self._polishing: Candidate | None = None  # the plan the polishing child works on
        self._tried: set[int] = set()  # ids of the plans polished or being polished
        self._spawn(_heuristics_child, problem, with_heuristics, prepared)
        if effort is None:
            self._lp_fd = self._spawn(_lp_child, problem, with_heuristics, prepared)
        elif effort.lp:
            self._lp_fd = self._spawn(
                _lp_child, problem, with_heuristics, prepared, effort.guided_variants, deadline
            )
        self.done = not self._kids

    def _spawn(self, job: Callable[..., None], *args: Any) -> int | None:
        """Fork a child running ``job(*args[:1], fd, *args[1:])``; its pipe's read end, or None."""
        # SIGINT is blocked across the fork, so that a terminal's Ctrl-C (which reaches the
        # whole process group) cannot land in the child before it ignores it: the parent
        # decides what a Ctrl-C does (it stops the solve and kills its children)
        blocked = _block_sigint()
        try:
            r, w = os.pipe()
            pid = os.fork()
        except (OSError, AttributeError) as err:
            _restore_mask(blocked)
            log.info("portfolio child not started: %s", err)
            return None
        if pid == 0:  # the child: never returns
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _restore_mask(blocked)
                os.close(r)
                _die_with_parent(os.getppid())
                _quiet_stdout()
                job(args[0], w, *args[1:])
                code = 0
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        _restore_mask(blocked)
        os.close(w)
        self._kids[r] = (pid, bytearray())
        self.done = False
        return r

    def polish(self, until: float, key: Callable[[Candidate], Any], in_hand: Candidate | None = None) -> None:
        """Start a child polishing the best plan received or ``in_hand`` (the caller's own;
        ``repack.polish`` with the power domains repacked, until ``until``) unless one is
        running, that plan is polished already, or it is not the LP-guided plan while the LP
        child may still send one. The polished plan comes back as a plan like the others and
        replaces the one it came from."""
        if self._running(self._polish_fd):
            return
        best = max([*self.plans, *([in_hand] if in_hand is not None else [])], key=key, default=None)
        if best is None or best.polished or id(best) in self._tried:
            return
        if best.method != "lp_guided" and self._running(self._lp_fd):
            return
        if until - time.monotonic() < POLISH_MIN_S:
            return
        self._tried.add(id(best))
        prepared = self._prepared
        if prepared is None:
            from placement.candidates import filter_candidates

            prepared = self._prepared = filter_candidates(self._problem)
        self._polishing = best
        self._polish_fd = self._spawn(_polish_child, prepared, best, until - POLISH_MARGIN_S)

    def polish_now(self, cand: Candidate, until: float, rounds: int, repack_det_s: float) -> None:
        """The deterministic mode's polish: a child polishing ``cand`` for ``rounds`` rounds, each
        power domain's repack bounded by ``repack_det_s`` of CP-SAT's deterministic time;
        ``until`` is only the safety net. The result replaces ``cand`` like ``polish``'s."""
        prepared = self._prepared
        if prepared is None:
            from placement.candidates import filter_candidates

            prepared = self._prepared = filter_candidates(self._problem)
        self._polishing = cand
        self._polish_fd = self._spawn(_polish_child, prepared, cand, until, rounds, repack_det_s)

    def poll(self, until: float) -> None:
        """Read what the children send until ``until`` (monotonic seconds) or until they are done."""
        while self._live():
            left = until - time.monotonic()
            ready, _, _ = select.select(self._live(), [], [], max(0.0, left))
            if not ready:
                return
            for fd in ready:
                chunk = os.read(fd, 1 << 20)
                _pid, buf = self._kids[fd]
                if not chunk:
                    self._reap(fd)
                    continue
                buf += chunk
                self._parse(buf)
            if left <= 0:
                return
        self.done = True

    def _running(self, fd: int | None) -> bool:
        return fd is not None and fd in self._kids and self._kids[fd][0] != 0

    def _live(self) -> list[int]:
        return [fd for fd, (pid, _) in self._kids.items() if pid]

    def _parse(self, buf: bytearray) -> None:
        while len(buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                return
            msg = pickle.loads(bytes(buf[_HEADER.size : _HEADER.size + size]))
            del buf[: _HEADER.size + size]
            if isinstance(msg, Candidate):
                if msg.polished and self._polishing in self.plans:  # it replaces its source
                    self.plans.remove(self._polishing)
                self.plans.append(msg)
                log.info(
                    "portfolio: %s%s placed_work %d (%.2f s)",
                    msg.method,
                    " polished" if msg.polished else "",
                    msg.objective.placed_work,
                    msg.wall_s,
                )
            elif isinstance(msg, tuple) and msg and msg[0] == "bound":
                if msg[1] is not None and (self.bound is None or msg[1] < self.bound):
                    self.bound = msg[1]  # every bound sent is valid: keep the tightest
                log.info("portfolio: relaxation bound %s", msg[1])

    def _reap(self, fd: int, kill: bool = False) -> None:
        pid, buf = self._kids[fd]
        if pid:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._kids[fd] = (0, buf)

    def close(self) -> None:
        for fd in list(self._kids):
            self._reap(fd, kill=True)
            os.close(fd)
        self._kids.clear()
        self.done = True


def _block_sigint() -> set[int | signal.Signals] | None:
    """Block SIGINT in this thread; the mask before, or None where masks are not supported."""
    try:
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, OSError, ValueError):
        return None


def _restore_mask(mask: set[int | signal.Signals] | None) -> None:
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this child when its parent dies (a solver worker killed on cancel
    would otherwise leave its portfolio running); elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request: nobody would kill us
        os._exit(1)


def _quiet_stdout() -> None:
    """The child shares the caller's stdout (a CLI's plan as JSON, say) and talks through its
    pipe only: what a solver library prints there goes to /dev/null. (Python's own stdout
    buffer is not flushed: it holds the parent's unwritten output, and the child leaves by
    ``os._exit``, which drops it.)"""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        return


def _send(fd: int, msg: object) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _heuristics_child(problem: Problem, fd: int, with_heuristics: bool, _prepared: Prepared | None) -> None:
    logging.disable(logging.CRITICAL)  # the parent logs what it receives
    from placement.partition import relaxation_bound

    try:
        _send(fd, ("bound", relaxation_bound(problem)))
    except Exception:
        _send(fd, ("bound", None))
    if with_heuristics:
        _heuristics(problem, fd)


def _lp_child(
    problem: Problem,
    fd: int,
    with_plans: bool,
    prepared: Prepared | None,
    variants: int = len(GUIDED_VARIANTS),
    deadline: float | None = None,
) -> None:
    """The node-group LP's bound, then its solution rounded into a plan (``placement.guided``),
    the tighter integer bound (``bound.integer_bound``) after the first plan, then more plans
    (the first ``variants`` of ``GUIDED_VARIANTS``).

    All stop at ``deadline``, by default the solve's own time limit (counted from here), past
    which nobody waits.
    """
    logging.disable(logging.CRITICAL)
    from placement.bound import MAX_COLUMNS, Residual, columns_estimate, group_lp, integer_bound
    from placement.candidates import filter_candidates
    from placement.guided import guided
    from placement.objective import evaluate

    t0 = time.monotonic()
    if deadline is None:
        deadline = t0 + max(0.0, problem.options.time_limit_s)
    if prepared is not None and columns_estimate(prepared) > LP_TOO_BIG * MAX_COLUMNS:
        _send(fd, ("bound", None))  # the LP would refuse after its classes (XL: 30 s); the polish may start
        return
    try:
        lp = group_lp(problem, deadline, solution=with_plans)
    except Exception:
        lp = None
    _send(fd, ("bound", lp.bound if lp is not None else None))
    if lp is None:
        return
    if not with_plans:
        _send(fd, ("bound", integer_bound(lp, deadline)))
        return

    def resolve(left: Residual) -> GroupLP | None:
        return group_lp(problem, deadline, solution=True, residual=left)

    if prepared is None:
        prepared = filter_candidates(problem)
    best = -1
    for i, (order_by, round_up, again, priced) in enumerate(GUIDED_VARIANTS[:variants]):
        if i == 1:
            _send(fd, ("bound", integer_bound(lp, deadline)))
        if time.monotonic() > deadline:
            break
        st = guided(
            prepared,
            lp,
            deadline,
            resolve=resolve if again else None,
            order_by=order_by,
            round_up=round_up,
            priced=priced,
        )
        placements = st.to_placements()
        obj = evaluate(problem, placements)
        if obj.placed_work > best:  # the parent takes the best it has received
            best = obj.placed_work
            _send(fd, Candidate("lp_guided", placements, obj, time.monotonic() - t0))


def _polish_child(
    prepared: Prepared,
    fd: int,
    cand: Candidate,
    until: float,
    rounds: int | None = None,
    repack_det_s: float | None = None,
) -> None:
    """``cand`` polished (``repack.polish``, domains repacked) until ``until``, sent back; with
    ``rounds`` (the deterministic mode) that many rounds at most, each domain's repack bounded
    by ``repack_det_s`` of CP-SAT's deterministic time instead of wall time."""
    logging.disable(logging.CRITICAL)
    from placement.decode import FleetState
    from placement.objective import evaluate
    from placement.repack import polish

    t0 = time.monotonic()
    st = FleetState.from_placements(prepared, cand.placements)
    polish(st, until, repack=True, rounds=rounds, repack_det_s=repack_det_s)
    placements = st.to_placements()
    obj = evaluate(prepared.problem, placements)
    _send(fd, Candidate(cand.method, placements, obj, cand.wall_s + time.monotonic() - t0, polished=True))


def _heuristics(problem: Problem, fd: int) -> None:
    from placement import heuristics
    from placement.objective import evaluate

    for name in HEURISTICS:
        f = getattr(heuristics, name, None)
        if f is None:
            continue
        t0 = time.monotonic()
        try:
            placements = tuple(f(problem))
            obj = evaluate(problem, placements)
        except Exception:
            continue
        _send(fd, Candidate(name, placements, obj, time.monotonic() - t0))
