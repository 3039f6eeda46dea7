"""The portfolio beside the solve: the heuristics and the relaxation bound in a child process.

``solve`` starts ``Portfolio(problem)`` right after the filter. A forked child computes,
in this order, the linear relaxation bound on tier 1 (``placement.partition.
relaxation_bound``), the plans of the heuristics (``placement.heuristics``: FGD,
best-fit, first-fit decreasing), each with its objective, and the tighter LP over node
groups (``placement.bound.group_lp_bound``, about 12 s at 40,000 GPUs), and sends each
result as soon as it has it; the parent keeps the tightest bound. The parent keeps working (greedy, model) on the other core and takes what
has arrived by its own deadline; at ``close`` the child is killed whatever it is doing,
so the heuristics are time-boxed although they take no deadline themselves.

The child is a bare ``os.fork`` (no multiprocessing), so that it also works inside a
daemonic worker process; where fork is unavailable the portfolio is empty. Everything
the child sends is checked again by the parent (plans are verified before use; a bound
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
from dataclasses import dataclass

from placement.domain import ObjectiveTiers, Problem, ReplicaPlacement

log = logging.getLogger(__name__)

HEURISTICS = ("fgd", "best_fit", "first_fit_decreasing")
_HEADER = struct.Struct("!Q")


@dataclass(frozen=True)
class Candidate:
    """One heuristic's plan with its (child-evaluated) objective."""

    method: str
    placements: tuple[ReplicaPlacement, ...]
    objective: ObjectiveTiers
    wall_s: float


class Portfolio:
    def __init__(self, problem: Problem, with_heuristics: bool = True) -> None:
        self.plans: list[Candidate] = []
        self.bound: float | None = None
        self.done = False
        self._buf = b""
        self._pid = 0
        self._fd = -1
        try:
            r, w = os.pipe()
            pid = os.fork()
        except (OSError, AttributeError) as err:
            log.info("portfolio not started: %s", err)
            self.done = True
            return
        if pid == 0:  # the child: never returns
            os.close(r)
            code = 0
            try:
                _child(problem, w, with_heuristics)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        self._pid, self._fd = pid, r

    def poll(self, until: float) -> None:
        """Read what the child sends until ``until`` (monotonic seconds) or until it is done."""
        while not self.done:
            left = until - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(0.0, left))
            if not ready:
                return
            chunk = os.read(self._fd, 1 << 20)
            if not chunk:
                self.done = True
                break
            self._buf += chunk
            self._parse()
            if left <= 0:
                return

    def _parse(self) -> None:
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if len(self._buf) < _HEADER.size + size:
                return
            msg = pickle.loads(self._buf[_HEADER.size : _HEADER.size + size])
            self._buf = self._buf[_HEADER.size + size :]
            if isinstance(msg, Candidate):
                self.plans.append(msg)
                log.info(
                    "portfolio: %s placed_work %d (%.2f s)", msg.method, msg.objective.placed_work, msg.wall_s
                )
            elif isinstance(msg, tuple) and msg and msg[0] == "bound":
                if msg[1] is not None and (self.bound is None or msg[1] < self.bound):
                    self.bound = msg[1]  # every bound sent is valid: keep the tightest
                log.info("portfolio: relaxation bound %s", msg[1])

    def close(self) -> None:
        if self._pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.done = True


def _send(fd: int, msg: object) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _child(problem: Problem, fd: int, with_heuristics: bool) -> None:
    logging.disable(logging.CRITICAL)  # the parent logs what it receives
    from placement.partition import relaxation_bound

    try:
        _send(fd, ("bound", relaxation_bound(problem)))
    except Exception:
        _send(fd, ("bound", None))
    if with_heuristics:
        _heuristics(problem, fd)
    # the tighter LP over node groups (placement.bound) takes seconds at 40,000 GPUs: after the plans
    from placement.bound import group_lp_bound

    try:
        _send(fd, ("bound", group_lp_bound(problem)))
    except Exception:
        _send(fd, ("bound", None))


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
