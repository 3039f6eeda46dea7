"""The portfolio beside the solve: lists of methods run in forked children.

``solve`` starts ``Portfolio(prepared, budget, children)`` right after the filter; each entry
of ``children`` is a list of method names (``placement.run.methods``) that one child runs one
after the other. By default (``default_children``) two children work beside the parent
(which runs the greedy and, where it fits, the model):

* ``relaxation_bound`` (under a second at 40,000 GPUs), then the heuristics (FGD, best-fit,
  first-fit decreasing), each plan with its objective;
* ``lp_guided``: the node-group LP's bound (seconds at 40,000 GPUs), its solution rounded into
  plans, the tighter integer bound after the first plan. Where nothing can be placed both
  children compute bounds only (``lp_bound``).

While the parent waits, ``polish`` forks a third child running ``polish`` on the best plan so
far (the LP-guided one as soon as it comes; another plan only once the LP child is done),
sent back as a plan that replaces its source.

Each result is sent as soon as it exists (a method's plan only when it beats the method's
last); the parent keeps the tightest bound and takes what has arrived by its own deadline;
at ``close`` the children are killed whatever they are doing.

Nothing a child does is lost: its log records go through its pipe and the parent logs them
as its own; a method that raises is reported with its traceback (the parent logs it as an
error) and the child goes on with its next method, then exits with status 1; the parent reads
every child's exit status and logs any that is not 0 (or a child dead of a signal it did not
send). Everything a child sends is checked again by the parent (plans are verified before
use; a bound below a verified plan's placed work is discarded).

The children are bare ``os.fork`` (no multiprocessing), so that they also work inside a
daemonic worker process; where fork is unavailable the portfolio is empty.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import pickle
import select
import signal
import struct
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from placement.core.candidates import Prepared
from placement.core.domain import ObjectiveTiers, ReplicaPlacement
from placement.run.methods import HEURISTICS, Bound, method
from placement.run.timebudget import CLOCK, TimeBudget

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!QB")  # size, kind
_OFFER, _BOUND, _ERROR, _LOG = range(4)
POLISH_MIN_S = 2.0  # a plan is polished only with at least this long to go
POLISH_MARGIN_S = 2.0  # the polishing child stops this long before the parent stops waiting
DRAIN_S = 0.2  # at close, what the children already sent is read for at most this long


@dataclass(frozen=True)
class Offer:
    """A plan a child sends, with its (child-evaluated) objective: ``method`` made it, with
    ``solvers``; ``polished``: it went through ``polish`` in the portfolio already."""

    method: str
    placements: tuple[ReplicaPlacement, ...]
    objective: ObjectiveTiers
    wall_s: float
    polished: bool = False
    solvers: tuple[str, ...] = ()

    @property
    def made_by(self) -> str:
        """The methods that made it, first to last (``SolveInfo.method``)."""
        return f"{self.method}+polish" if self.polished else self.method


@dataclass(frozen=True)
class ChildError:
    """A method that raised in a child: its name and the traceback."""

    method: str
    traceback: str


@dataclass
class _Kid:
    pid: int  # 0 once reaped
    methods: tuple[str, ...]
    buf: bytearray = field(default_factory=bytearray)


def default_children(prepared: Prepared) -> list[tuple[str, ...]]:
    """The two children of the module docstring: bounds and heuristics, and the LP's plans."""
    if not prepared.options:  # nothing can be placed: bounds only
        return [("relaxation_bound",), ("lp_bound",)]
    return [("relaxation_bound", *HEURISTICS), ("lp_guided",)]


class Portfolio:
    def __init__(
        self,
        prepared: Prepared,
        budget: TimeBudget | None = None,
        children: Sequence[Sequence[str]] | None = None,
    ) -> None:
        """Start one child per list in ``children`` (``default_children`` by default), each
        running its methods within ``budget`` (by default the problem's time limit from now)."""
        self.plans: list[Offer] = []
        self.bound: float | None = None
        self.done = False
        self._prepared = prepared
        self._budget = budget or TimeBudget.start(prepared.problem.options.time_limit_s)
        self._kids: dict[int, _Kid] = {}  # by the read end of its pipe
        self._lp_fd: int | None = None
        self._polish_fd: int | None = None
        self._polishing: Offer | None = None  # the plan the polishing child works on
        self._tried: set[int] = set()  # ids of the plans polished or being polished
        for names in default_children(prepared) if children is None else children:
            fd = self._spawn(tuple(names), self._budget)
            if "lp_guided" in names:
                self._lp_fd = fd
        self.done = not self._kids

    def _spawn(self, names: tuple[str, ...], budget: TimeBudget, start: Offer | None = None) -> int | None:
        """Fork a child running the methods ``names`` (on ``start``, for improving ones); its
        pipe's read end, or None."""
        for name in names:
            method(name)  # an unknown name fails here, in the parent
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
                _log_through(w)
                code = _run_methods(self._prepared, w, names, budget, start)
            except BaseException:  # outside any method: still the parent's to know
                with contextlib.suppress(BaseException):
                    _send(w, ChildError("+".join(names), traceback.format_exc()))
            finally:
                os._exit(code)
        _restore_mask(blocked)
        os.close(w)
        self._kids[r] = _Kid(pid, names)
        self.done = False
        return r

    def polish(self, until: float, key: Callable[[Offer], Any], in_hand: Offer | None = None) -> None:
        """Start a child polishing the best plan received or ``in_hand`` (the caller's own;
        ``polish`` with the power domains repacked, until ``until``) unless one is running,
        that plan is polished already, or it is not the LP-guided plan while the LP child may
        still send one. The polished plan comes back as a plan like the others and replaces
        the one it came from."""
        if self._running(self._polish_fd):
            return
        best = max([*self.plans, *([in_hand] if in_hand is not None else [])], key=key, default=None)
        if best is None or best.polished or id(best) in self._tried:
            return
        if best.method != "lp_guided" and self._running(self._lp_fd):
            return
        if until - CLOCK() < POLISH_MIN_S:
            return
        self._tried.add(id(best))
        self._polishing = best
        self._polish_fd = self._spawn(("polish",), self._budget.part(until - POLISH_MARGIN_S), best)

    def polish_now(self, offer: Offer, until: float) -> None:
        """The deterministic mode's polish: a child polishing ``offer`` for the budget's
        ``effort.polish_rounds`` rounds; ``until`` is only the safety net. The result replaces
        ``offer`` like ``polish``'s."""
        self._polishing = offer
        self._polish_fd = self._spawn(("polish",), self._budget.part(until), offer)

    def poll(self, until: float) -> None:
        """Read what the children send until ``until`` (clock seconds) or until they are done."""
        while self._live():
            left = until - CLOCK()
            ready, _, _ = select.select(self._live(), [], [], max(0.0, left))
            if not ready:
                return
            for fd in ready:
                chunk = os.read(fd, 1 << 20)
                kid = self._kids[fd]
                if not chunk:
                    self._reap(fd)
                    continue
                kid.buf += chunk
                self._parse(kid)
            if left <= 0:
                return
        self.done = True

    def _running(self, fd: int | None) -> bool:
        return fd is not None and fd in self._kids and self._kids[fd].pid != 0

    def _live(self) -> list[int]:
        return [fd for fd, kid in self._kids.items() if kid.pid]

    def _parse(self, kid: _Kid, plans: bool = True) -> None:
        """The messages complete in ``kid``'s buffer; without ``plans`` the plans are skipped
        unread (at ``close``, where only errors and log records still matter)."""
        buf = kid.buf
        while len(buf) >= _HEADER.size:
            size, kind = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                return
            if kind == _OFFER and not plans:
                del buf[: _HEADER.size + size]
                continue
            msg = pickle.loads(bytes(buf[_HEADER.size : _HEADER.size + size]))
            del buf[: _HEADER.size + size]
            if isinstance(msg, Offer):
                if msg.polished and self._polishing in self.plans:  # it replaces its source
                    self.plans.remove(self._polishing)
                self.plans.append(msg)
                log.info(
                    "portfolio: %s placed_work %d (%.2f s)",
                    msg.made_by,
                    msg.objective.placed_work,
                    msg.wall_s,
                )
            elif isinstance(msg, Bound):
                if msg.value is not None and (self.bound is None or msg.value < self.bound):
                    self.bound = msg.value  # every bound sent is valid: keep the tightest
                log.info("portfolio: %s bound %s", msg.source, msg.value)
            elif isinstance(msg, ChildError):
                log.error(
                    "portfolio: %s failed in child %d (%s):\n%s",
                    msg.method,
                    kid.pid,
                    ", ".join(kid.methods),
                    msg.traceback.rstrip(),
                )
            elif isinstance(msg, logging.LogRecord):  # the child's own log, as if it were ours
                logging.getLogger(msg.name).handle(msg)

    def _reap(self, fd: int, kill: bool = False) -> None:
        kid = self._kids[fd]
        if not kid.pid:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid.pid, signal.SIGKILL)
        status = None
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(kid.pid, 0)
        if status is not None:
            code = os.waitstatus_to_exitcode(status)
            if code > 0:
                log.warning(
                    "portfolio: child %d (%s) exited with status %d", kid.pid, ", ".join(kid.methods), code
                )
            elif code < 0 and not (kill and code == -signal.SIGKILL):
                log.error(
                    "portfolio: child %d (%s) died of signal %d", kid.pid, ", ".join(kid.methods), -code
                )
        kid.pid = 0

    def close(self) -> None:
        """Read what is already sent (the children's last words and errors), then kill them."""
        with contextlib.suppress(OSError, ValueError):
            self._drain()
        for fd in list(self._kids):
            kid = self._kids[fd]
            if kid.pid:  # an operator reading the log sees which methods the deadline cut
                log.info(
                    "portfolio: child %d (%s) still running at the end: stopped",
                    kid.pid,
                    ", ".join(kid.methods),
                )
            self._reap(fd, kill=True)
            os.close(fd)
        self._kids.clear()
        self.done = True

    def _drain(self) -> None:
        """What the children have written and not been read, without waiting for more (and for
        at most ``DRAIN_S``: a child that keeps writing is not followed)."""
        until = CLOCK() + DRAIN_S
        for fd, kid in self._kids.items():
            while kid.pid and CLOCK() < until and select.select([fd], [], [], 0)[0]:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self._reap(fd)
                    break
                kid.buf += chunk
                self._parse(kid, plans=False)


# ----------------------------------------------------------------------------- the child


def _run_methods(
    prepared: Prepared, fd: int, names: tuple[str, ...], budget: TimeBudget, start: Offer | None
) -> int:
    """Run ``names`` one after the other and send what they find; 0, or 1 when one raised.

    A constructive method's plan is sent when it beats the method's last; an improving one's
    (on ``start``) always, as a polished plan when the method is ``polish``."""
    from placement.core.objective import evaluate

    problem = prepared.problem
    code = 0
    for name in names:
        t0 = CLOCK()
        best = -1
        try:
            for item in method(name).run(prepared, budget, None, start.placements if start else ()):
                if isinstance(item, Bound):
                    _send(fd, item)
                    continue
                obj = evaluate(problem, item.placements)
                if start is None:
                    if obj.net_work <= best:  # the parent takes the best it has received (tier 1)
                        continue
                    best = obj.net_work
                    _send(fd, Offer(name, item.placements, obj, CLOCK() - t0, solvers=item.solvers))
                else:
                    solvers = tuple(dict.fromkeys((*start.solvers, *item.solvers)))
                    wall_s = start.wall_s + CLOCK() - t0
                    _send(fd, Offer(start.method, item.placements, obj, wall_s, name == "polish", solvers))
        except Exception:
            code = 1
            _send(fd, ChildError(name, traceback.format_exc()))
    return code


class _PipeHandler(logging.Handler):
    """A child's log records, sent to the parent through the child's pipe."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rec = copy.copy(record)
            rec.msg = record.getMessage()  # arguments may not pickle: the text does
            rec.args = None
            if record.exc_info:
                rec.exc_text = logging.Formatter().formatException(record.exc_info)
            rec.exc_info = None
            _send(self._fd, rec)
        except Exception:
            self.handleError(record)


def _log_through(fd: int) -> None:
    """The child logs through its pipe only (it shares the parent's stderr, which the parent's
    handlers write to, in their own format)."""
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            for h in list(logger.handlers):
                logger.removeHandler(h)
    logging.getLogger().addHandler(_PipeHandler(fd))


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


_SEND_LOCK = threading.RLock()


def _send(fd: int, msg: Offer | Bound | ChildError | logging.LogRecord) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    kind = (
        _OFFER
        if isinstance(msg, Offer)
        else _BOUND
        if isinstance(msg, Bound)
        else _ERROR
        if isinstance(msg, ChildError)
        else _LOG
    )
    view = memoryview(_HEADER.pack(len(data), kind) + data)
    with _SEND_LOCK:
        while view:
            n = os.write(fd, view)
            view = view[n:]
