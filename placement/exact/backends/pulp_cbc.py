"""CBC backend through PuLP, with the CBC binary bundled with PuLP.

``load`` builds one ``pulp.LpProblem`` (integer variables with their bounds, the
constraints); each ``solve`` sets the objective, writes the model and the warm
start with PuLP's own writers, runs CBC and reads its answer back with PuLP's reader.

Why CBC is started here rather than by ``LpProblem.solve``
-----------------------------------------------------------
PuLP starts CBC and waits for it without exposing the process, so a solve could
not be cancelled. This module builds the same command line PuLP builds
(``COIN_CMD.solve_CBC``) and keeps the process handle: when ``stop`` is set it
sends SIGINT, which CBC treats as the user's ctrl-C (it stops at the next node and
still writes its best solution), and kills it if it has not exited shortly after.

Status, stop reason and bound
-----------------------------
PuLP reports ``LpStatusOptimal`` when CBC stops at its time limit holding a
solution ("Stopped on time - objective value ..."). Only ``sol_status`` tells the
two apart, so the status comes from ``sol_status`` (``LpSolutionOptimal`` is
OPTIMAL, ``LpSolutionIntegerFeasible`` FEASIBLE) and the stop reason and the bound
from CBC's log ("Result - Stopped on time limit", "Upper bound:"/"Lower bound:",
"best possible"). A proven optimum also requires the log not to say "Stopped".
CBC prints the bound rounded; since every coefficient and variable is integral,
the bound is widened by the print precision and rounded to the integer it implies.

Values are rounded and checked with ``IntegerProgram.is_feasible``; an answer that
breaks a constraint after rounding is never returned (NO_SOLUTION, or the
caller's feasible warm start).

Objective constants stay outside the solver; they are added to what is reported.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pulp

from placement.core.domain import Backend, SolveStatus, StopReason
from placement.exact.backends import clamp_bound, fallback_result, full_hint
from placement.exact.backends.base import Progress, ProgressCallback, TierResult
from placement.exact.model.ir import Direction, IntegerProgram, Objective, Sense

log = logging.getLogger(__name__)

_POLL_S = 0.05
CBC_NODES_PER_WORK = 30  # CBC nodes per deterministic second of work (``Session.solve``'s ``work``)
_KILL_AFTER_S = 3.0  # after SIGINT, CBC normally exits within milliseconds
_SENSE = {Sense.LE: pulp.LpConstraintLE, Sense.GE: pulp.LpConstraintGE, Sense.EQ: pulp.LpConstraintEQ}
_BOUND_RE = re.compile(r"^(Upper|Lower) bound:\s+(\S+)", re.MULTILINE)
_BEST_POSSIBLE_RE = re.compile(r"best possible (-?[0-9.eE+\-]+)")
_RESULT_RE = re.compile(r"^Result - (.*)$", re.MULTILINE)
_VERSION_RE = re.compile(r"^Version:\s*(\S+)", re.MULTILINE)


@dataclass(frozen=True)
class _CbcRun:
    """What one CBC run left behind."""

    interrupted: bool  # we sent SIGINT because stop was set
    overran: bool  # we sent SIGINT because CBC ran well past its time limit
    log_text: str
    first_line: str | None  # first line of the solution file, None when CBC wrote none
    values: dict[str, float] | None
    sol_status: int | None


class CbcError(RuntimeError):
    """CBC failed to run or to write an answer (not a solve outcome)."""


def cbc_path() -> str:
    """The CBC binary bundled with PuLP, else one on PATH."""
    bundled = str(getattr(pulp.PULP_CBC_CMD, "pulp_cbc_path", ""))
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    return str(pulp.COIN_CMD().path)


@functools.cache
def cbc_version() -> str:
    try:
        out = subprocess.run(
            [cbc_path(), "-quit"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    m = _VERSION_RE.search(out)
    return m.group(1) if m else "unknown"


def _new_var(prob: pulp.LpProblem, name: str, lb: int, ub: int) -> pulp.LpVariable:
    add = getattr(prob, "add_variable", None)  # PuLP >= 3.3; plain constructor before
    if add is not None:
        return add(name, lb, ub, pulp.LpInteger)
    return pulp.LpVariable(name, lb, ub, pulp.LpInteger)


def _holds(lhs: int, sense: Sense, rhs: int) -> bool:
    return lhs <= rhs if sense is Sense.LE else lhs >= rhs if sense is Sense.GE else lhs == rhs


def integral_bound(direction: Direction, printed: float) -> float:
    """The integer bound implied by CBC's printed bound (rounded to 3 decimals or ~8 digits)."""
    slack = 1e-3 + 1e-7 * abs(printed)
    if direction is Direction.MAXIMIZE:
        return float(math.floor(printed + slack))
    return float(math.ceil(printed - slack))


def parse_bound(log_text: str, direction: Direction) -> float | None:
    """CBC's proven bound on the objective it optimised (without our constant), from its log."""
    m = _BOUND_RE.search(log_text)
    if m:
        try:
            return integral_bound(direction, float(m.group(2)))
        except ValueError:
            pass
    found = _BEST_POSSIBLE_RE.findall(log_text)
    if found:
        internal = float(found[-1])  # CBC minimises internally; a maximisation is negated
        printed = -internal if direction is Direction.MAXIMIZE else internal
        if math.isfinite(printed) and abs(printed) < 1e40:
            return integral_bound(direction, printed)
    return None


class PulpCbcSession:
    """One loaded program; objectives are solved one at a time."""

    def __init__(self, program: IntegerProgram, seed: int, workers: int) -> None:
        self._program = program
        self._seed = seed
        self._workers = max(1, workers)
        self._prob = pulp.LpProblem("placement", pulp.LpMinimize)
        # our own names: CBC needs unique, plain ones; the IR keeps the readable names
        self._vars = [
            _new_var(self._prob, f"x{i}", lb, ub)
            for i, (lb, ub) in enumerate(zip(program.lower, program.upper, strict=True))
        ]
        self._trivially_infeasible: list[str] = []  # names of constant constraints that fail
        self._holds = 0
        for k, c in enumerate(program.constraints):
            self._add(c.var_indices, c.coefs, c.sense, c.rhs, f"c{k}", c.name)
        log.debug(
            "PuLP model loaded: %d variables, %d constraints", program.num_vars, len(program.constraints)
        )

    def _expr(self, var_indices: list[int], coefs: list[int]) -> pulp.LpAffineExpression:
        return pulp.LpAffineExpression([(self._vars[i], c) for i, c in zip(var_indices, coefs, strict=True)])

    def _add(
        self, var_indices: list[int], coefs: list[int], sense: Sense, rhs: int, key: str, name: str
    ) -> None:
        if not var_indices:
            if not _holds(0, sense, rhs):
                self._trivially_infeasible.append(name)
            return
        self._prob.addConstraint(
            pulp.LpConstraint(self._expr(var_indices, coefs), _SENSE[sense], rhs=rhs), key
        )

    def hold(self, objective: Objective, value: int) -> None:
        sense = Sense.GE if objective.direction is Direction.MAXIMIZE else Sense.LE
        self._holds += 1
        self._add(
            objective.var_indices,
            objective.coefs,
            sense,
            value - objective.constant,
            f"h{self._holds}",
            f"hold {objective.name}",
        )

    def solve(
        self,
        objective: Objective,
        time_limit_s: float,
        hint: list[int] | None,
        progress: ProgressCallback | None,
        stop: threading.Event | None,
        work: float | None = None,
    ) -> TierResult:
        t0 = time.monotonic()
        start = full_hint(self._program, hint)
        if self._trivially_infeasible:
            log.debug("constant constraints broken: %s", self._trivially_infeasible[:5])
            return TierResult(SolveStatus.INFEASIBLE, StopReason.NONE, None, None, None, 0.0)
        if stop is not None and stop.is_set():
            return fallback_result(self._program, objective, start, StopReason.INTERRUPTED, 0.0)
        if time_limit_s <= 0:
            return fallback_result(self._program, objective, start, StopReason.TIME_LIMIT, 0.0)

        maximize = objective.direction is Direction.MAXIMIZE
        self._prob.sense = pulp.LpMaximize if maximize else pulp.LpMinimize
        self._prob.setObjective(self._expr(objective.var_indices, objective.coefs))
        if start is not None:
            bounds = zip(self._program.lower, self._program.upper, strict=True)
            for var, value, (lb, ub) in zip(self._vars, start, bounds, strict=True):
                var.setInitialValue(min(max(value, lb), ub))  # a warm start is only a suggestion

        with tempfile.TemporaryDirectory(prefix="placement-cbc-") as tmp:
            run = self._run_cbc(Path(tmp), maximize, start is not None, time_limit_s, t0, stop, work)
        wall_s = time.monotonic() - t0
        return self._result(objective, start, run, wall_s, progress)

    def _run_cbc(
        self,
        tmp: Path,
        maximize: bool,
        warm: bool,
        time_limit_s: float,
        t0: float,
        stop: threading.Event | None,
        work: float | None = None,
    ) -> _CbcRun:
        mps, mst, sol, log_path = tmp / "model.mps", tmp / "start.mst", tmp / "answer.sol", tmp / "cbc.log"
        solver = pulp.COIN_CMD(path=cbc_path(), msg=False)  # PuLP's writers and reader
        vs, var_names, con_names, _ = self._prob.writeMPS(str(mps), rename=1)
        args = [cbc_path(), str(mps)]
        if maximize:
            args.append("-max")
        if warm:
            solver.writesol(str(mst), self._prob, vs, var_names, con_names)
            args += ["-mips", str(mst)]
        # No "-timeMode elapsed": CBC 2.10.3 (PuLP's bundled binary) segfaults with it when a MIP
        # start is given and the limit falls in preprocessing (seen here at limits under 1 s).
        # In CPU time, CBC with k threads stops early in wall time, never late; the watchdog
        # below still guards the wall clock.
        args += ["-sec", f"{time_limit_s:.3f}"]
        if work is None:
            args += ["-threads", str(self._workers)]
        else:  # deterministic: one thread, a node limit; the seconds are the safety net
            args += ["-threads", "1", "-maxNodes", str(max(1, int(CBC_NODES_PER_WORK * work)))]
        if self._seed > 0:  # CBC: 0 means "seed from the clock"; its default (-1) is fixed
            args += ["-randomCbcSeed", str(self._seed)]
        args += ["-solve", "-printingOptions", "all", "-solution", str(sol)]
        log.debug("running %s", " ".join(args))

        interrupted = overran = False
        signalled_at: float | None = None
        # a generous guard in case CBC does not look at the clock (e.g. in a long preprocessing)
        deadline = t0 + time_limit_s + max(2.0, 0.2 * time_limit_s)
        with open(log_path, "w") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
            try:
                while True:
                    try:
                        rc = proc.wait(timeout=_POLL_S)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    now = time.monotonic()
                    if signalled_at is None and stop is not None and stop.is_set():
                        interrupted, signalled_at = True, now
                        proc.send_signal(signal.SIGINT)
                    elif signalled_at is None and now > deadline:
                        log.warning("CBC overran its %.1f s time limit; interrupting it", time_limit_s)
                        overran, signalled_at = True, now
                        proc.send_signal(signal.SIGINT)
                    elif signalled_at is not None and now - signalled_at > _KILL_AFTER_S:
                        log.warning("CBC ignored SIGINT; killing it")
                        proc.kill()
                        rc = proc.wait()
                        break
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        log_text = log_path.read_text(errors="replace")
        if not sol.exists():
            if interrupted or overran:
                return _CbcRun(interrupted, overran, log_text, None, None, None)
            if rc < 0:  # killed by a signal: CBC 2.10.3 segfaults now and then when stopping on time
                log.warning("CBC died of signal %d without an answer; keeping the warm start", -rc)
                return _CbcRun(False, True, log_text, None, None, None)
            raise CbcError(f"CBC exited with code {rc} without an answer: {log_text[-2000:]}")
        first_line = sol.read_text(errors="replace").split("\n", 1)[0]
        try:
            status, values, _, _, _, sol_status = solver.readsol_MPS(
                str(sol), self._prob, vs, var_names, con_names
            )
        except (ValueError, IndexError) as exc:  # cut short by a kill
            if interrupted or overran:
                return _CbcRun(interrupted, overran, log_text, None, None, None)
            raise CbcError(f"cannot read CBC's answer: {exc}") from exc
        self._prob.assignVarsVals(values)
        self._prob.assignStatus(status, sol_status)
        return _CbcRun(interrupted, overran, log_text, first_line, values, sol_status)

    def _result(
        self,
        objective: Objective,
        start: list[int] | None,
        run: _CbcRun,
        wall_s: float,
        progress: ProgressCallback | None,
    ) -> TierResult:
        result_line = m.group(1).strip() if (m := _RESULT_RE.search(run.log_text)) else ""
        if run.interrupted:
            reason = StopReason.INTERRUPTED
        elif run.overran or "time" in (run.first_line or "").lower() or "time" in result_line.lower():
            reason = StopReason.TIME_LIMIT
        elif "node" in result_line.lower() or "node" in (run.first_line or "").lower():
            reason = StopReason.WORK_LIMIT  # the deterministic mode's node limit
        else:
            reason = StopReason.NONE
        log.debug(
            "CBC tier %s: %r / %r, sol_status %s, %.2f s",
            objective.name,
            run.first_line,
            result_line,
            run.sol_status,
            wall_s,
        )
        if run.first_line is None or run.values is None:
            return fallback_result(self._program, objective, start, reason, wall_s)
        first = run.first_line.lower()
        proven_infeasible = first.startswith("infeasible") or first.startswith("integer infeasible")
        if proven_infeasible and not (run.interrupted or run.overran):  # when cut short, do not trust it
            return TierResult(SolveStatus.INFEASIBLE, StopReason.NONE, None, None, None, wall_s)
        if run.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            if reason is StopReason.NONE:
                log.warning("CBC stopped without a solution: %r / %r", run.first_line, result_line)
            return fallback_result(self._program, objective, start, reason, wall_s)

        values = self._values(run.values, start)
        broken = self._program.is_feasible(values)
        if broken:
            log.warning(
                "CBC's rounded answer breaks %d constraints (%s); not using it", len(broken), broken[:5]
            )
            return fallback_result(self._program, objective, start, reason, wall_s)
        value = objective.value(values)
        proven = run.sol_status == pulp.LpSolutionOptimal and "stopped" not in result_line.lower()
        if proven:
            result = TierResult(SolveStatus.OPTIMAL, StopReason.NONE, values, value, float(value), wall_s)
        else:
            raw = parse_bound(run.log_text, objective.direction)
            bound = None if raw is None else clamp_bound(objective, value, raw + objective.constant)
            result = TierResult(SolveStatus.FEASIBLE, reason, values, value, bound, wall_s)
        if progress is not None:
            progress(Progress(objective.name, float(value), result.bound, wall_s))
        return result

    def _values(self, raw: dict[str, float], start: list[int] | None) -> list[int]:
        values: list[int] = []
        for i, var in enumerate(self._vars):
            v = raw.get(var.name)
            if v is None:  # in no constraint and not in this objective: any value in bounds will do
                values.append(start[i] if start is not None else self._program.lower[i])
            else:
                values.append(round(v))
        return values


class PulpCbcBackend:
    name = Backend.PULP.value
    solver = "cbc"

    def version(self) -> str:
        return f"pulp {pulp.__version__}, CBC {cbc_version()}"

    def load(self, program: IntegerProgram, seed: int, workers: int) -> PulpCbcSession:
        return PulpCbcSession(program, seed, workers)
