"""Ctrl-C and SIGTERM during ``fleetplace plan``: real signals to a real process group.

The command runs in its own session, as a shell's foreground job would, and the signal goes
to the whole process group (``os.killpg``), so the portfolio's forked children, CP-SAT's
threads and CBC get it exactly as they would from a terminal. Each case waits for a line of
the solve's own log (``--debug``) that shows it reached a phase, then signals. Whatever the
moment, the command must exit 130 and either write a plan that ``fleetplace verify`` accepts,
with stop reason INTERRUPTED, or say that no plan existed yet and write nothing.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.builders import CLI, MIXED, REPO


class Run:
    """``fleetplace`` in a new session; stderr read line by line while it runs."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [*CLI, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # a fresh interpreter: SIGINT at its default (a test runner may have it ignored)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self.out: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.out_reader = threading.Thread(
            target=lambda: self.out.extend(self.proc.stdout or ()), daemon=True
        )
        self.out_reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)

    def wait_for(self, marker: str, timeout_s: float = 120.0) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if marker in line:
                return
        raise AssertionError(f"never saw {marker!r}; stderr tail:\n{''.join(self.err[-20:])}")

    def signal_group(self, sig: int = signal.SIGINT) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout_s: float = 60.0) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.reader.join(10)
        self.out_reader.join(10)
        return self.proc.returncode, "".join(self.out), "".join(self.err)


def _check_outcome(code: int, out: str, err: str, plan_path: Path, source: Path) -> str:
    """Exit 130 and a verified INTERRUPTED plan, or a plain "no plan" and no file."""
    assert code == 130, f"exit {code}\n{err[-2000:]}"
    assert "Traceback" not in err and "terminate called" not in err, err[-2000:]
    if not plan_path.exists():
        assert "nothing written" in err, err[-2000:]
        return "none"
    doc = json.loads(plan_path.read_text())
    assert doc["info"]["stopReason"] == "STOP_REASON_INTERRUPTED"
    assert doc["info"]["status"] == "SOLVE_STATUS_FEASIBLE"
    assert doc["placements"], "an INTERRUPTED plan that places nothing must not be FEASIBLE"
    assert "stopped: interrupted" in out
    verified = subprocess.run(
        [*CLI, "verify", str(source), str(plan_path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return "plan"


# (name, backend, time limit, the log line after which the signal is sent)
MOMENTS = [
    ("greedy done, portfolio running", "ortools", 60, "plan verified, the first in hand"),
    ("model built, CP-SAT running", "ortools", 60, "placement.run.solve: model:"),
    ("first tier solved, CP-SAT on the next", "ortools", 30, "tier placed_work:"),
    ("greedy done, portfolio running", "pulp", 60, "plan verified, the first in hand"),
    ("model built, CBC running", "pulp", 60, "placement.run.solve: model:"),
    ("first tier solved, CBC on the next", "pulp", 30, "tier placed_work:"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "backend", "limit_s", "marker"), MOMENTS, ids=[f"{b}: {n}" for n, b, _, _ in MOMENTS]
)
def test_sigint_to_the_process_group_keeps_the_best_verified_plan(
    tmp_path: Path, name: str, backend: str, limit_s: int, marker: str
) -> None:
    plan_path = tmp_path / "plan.json"
    args = ["--debug", "plan", str(MIXED), "--out", str(plan_path), "--backend", backend]
    run = Run([*args, "--time-limit", str(limit_s)])
    run.wait_for(marker)
    run.signal_group(signal.SIGINT)
    code, out, err = run.finish()
    assert _check_outcome(code, out, err, plan_path, MIXED) == "plan", name
    assert "SIGINT: stopping the solver" in err


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40,000-GPU fleet: its load, filter and greedy take seconds, so a signal can land in them."""
    path = tmp_path_factory.mktemp("large") / "l.json"
    subprocess.run(
        [*CLI, "generate", "--gpus", "40000", "--seed", "0", "--out", str(path)],
        cwd=REPO,
        check=True,
        timeout=300,
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "marker", "delay_s"),
    [
        ("loading or filtering", None, 1.0),
        ("greedy running", "placement.run.solve: filter:", 0.0),
        ("portfolio running, a plan in hand", "plan verified, the first in hand", 1.0),
    ],
)
def test_sigint_early_on_a_large_fleet_never_tears(
    tmp_path: Path, large: Path, name: str, marker: str | None, delay_s: float
) -> None:
    """Early on, no plan may exist yet: then it says so and writes nothing, never a torn file."""
    plan_path = tmp_path / "plan.json"
    run = Run(["--debug", "plan", str(large), "--out", str(plan_path), "--time-limit", "120"])
    if marker is not None:
        run.wait_for(marker)
    time.sleep(delay_s)
    run.signal_group(signal.SIGINT)
    code, out, err = run.finish()
    got = _check_outcome(code, out, err, plan_path, large)
    assert not [p for p in tmp_path.iterdir() if p != plan_path], "a half-written file was left behind"
    if marker == "plan verified, the first in hand":
        assert got == "plan", name


def test_sigterm_stops_like_sigint(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    run = Run(["--debug", "plan", str(MIXED), "--out", str(plan_path), "--time-limit", "60"])
    run.wait_for("placement.run.solve: model:")
    run.signal_group(signal.SIGTERM)
    code, out, err = run.finish()
    assert _check_outcome(code, out, err, plan_path, MIXED) == "plan"
    assert "SIGTERM: stopping the solver" in err


def test_a_second_sigint_gives_up_at_once(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    run = Run(["--debug", "plan", str(MIXED), "--out", str(plan_path), "--time-limit", "60"])
    run.wait_for("placement.run.solve: model:")
    run.signal_group(signal.SIGINT)
    run.wait_for("SIGINT: stopping the solver")
    run.signal_group(signal.SIGINT)
    code, _out, err = run.finish()
    assert code == 130
    assert "Traceback" not in err and "terminate called" not in err
    gone_by = time.monotonic() + 10  # the portfolio's children die with the process
    while time.monotonic() < gone_by:
        try:
            os.killpg(run.proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with pytest.raises(ProcessLookupError):
        os.killpg(run.proc.pid, 0)  # no child of the group left behind
    if plan_path.exists():  # the first stop may have finished before the second signal
        doc = json.loads(plan_path.read_text())
        assert doc["info"]["stopReason"] == "STOP_REASON_INTERRUPTED"
    else:
        assert "nothing written" in err


@pytest.mark.slow
def test_no_process_of_the_group_outlives_the_interrupted_command(tmp_path: Path) -> None:
    """Interrupted while the portfolio's children work: the plan is kept and no child is left."""
    plan_path = tmp_path / "plan.json"
    gen = tmp_path / "m.json"
    subprocess.run(
        [*CLI, "generate", "--gpus", "4000", "--seed", "1", "--out", str(gen)],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    run = Run(["--debug", "plan", str(gen), "--out", str(plan_path), "--time-limit", "60"])
    run.wait_for("portfolio: lp_guided")  # the LP child has sent a plan; the polish child may run
    run.signal_group(signal.SIGINT)
    code, out, err = run.finish()
    assert _check_outcome(code, out, err, plan_path, gen) == "plan"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(run.proc.pid, 0)  # the group is gone: no child left behind
