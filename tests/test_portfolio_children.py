"""What a portfolio child does reaches the parent: errors with their tracebacks, log records, exit status.

Each case registers a method (``placement.run.methods.METHODS``) that misbehaves, runs it in a
real forked child beside a method that works, and reads the parent's log.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from placement.core.candidates import Prepared, filter_candidates
from placement.core.verify import verify
from placement.generator import generate
from placement.run import methods
from placement.run.methods import Bound, Found
from placement.run.portfolio import Portfolio
from placement.run.solve import solve
from placement.run.timebudget import TimeBudget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Misbehaving:
    """A method that does ``what`` and finds nothing."""

    name: str
    what: str

    def applies(self, prepared: Prepared) -> bool:
        return True

    def run(
        self, prepared: Prepared, budget: TimeBudget, stop: threading.Event | None = None, start: tuple = ()
    ) -> Iterator[Found | Bound]:
        if self.what == "raise":
            raise RuntimeError("the misbehaving method gave up")
        if self.what == "log":
            log.warning("hello from pid %d", os.getpid())
        if self.what == "exit 3":
            os._exit(3)
        if self.what == "signal":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        if self.what == "sleep":
            time.sleep(60)
        yield Bound(None, "nothing")


@pytest.fixture
def prepared() -> Prepared:
    return filter_candidates(generate(48, 0))


def run_children(prepared: Prepared, children: list[tuple[str, ...]]) -> Portfolio:
    port = Portfolio(prepared, TimeBudget.start(30), children)
    until = time.monotonic() + 60
    try:
        while not port.done and time.monotonic() < until:
            port.poll(until)
    finally:
        port.close()
    return port


def exited(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


@pytest.mark.parametrize(
    ("case", "what", "error", "status"),
    [
        (
            "a method raises: its traceback, then exit status 1",
            "raise",
            "the misbehaving method gave up",
            "status 1",
        ),
        ("the child exits on its own with 3", "exit 3", None, "status 3"),
        ("the child dies of a signal the parent did not send", "signal", None, "signal 15"),
    ],
)
def test_a_failing_child_is_reported_with_its_exit_status(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    prepared: Prepared,
    case: str,
    what: str,
    error: str | None,
    status: str,
) -> None:
    monkeypatch.setitem(methods.METHODS, "misbehaving", Misbehaving("misbehaving", what))
    caplog.set_level(logging.INFO)
    port = run_children(prepared, [("misbehaving", "relaxation_bound")])
    errors = messages(caplog, logging.ERROR)
    warnings = messages(caplog, logging.WARNING)
    if error is not None:  # logged as an error with the child's traceback, and the child went on
        (text,) = [e for e in errors if "misbehaving failed" in e]
        assert "Traceback (most recent call last)" in text and error in text, case
        assert 'raise RuntimeError("the misbehaving method gave up")' in text, case
        assert port.bound is not None, case  # relaxation_bound ran after the failure
    reported = [m for m in errors + warnings if "misbehaving, relaxation_bound" in m and status in m]
    assert len(reported) == 1, (case, errors, warnings)


def test_a_child_that_works_is_not_reported(caplog: pytest.LogCaptureFixture, prepared: Prepared) -> None:
    caplog.set_level(logging.INFO)
    port = run_children(prepared, [("relaxation_bound", "first_fit_decreasing")])
    assert port.bound is not None and [c.method for c in port.plans] == ["first_fit_decreasing"]
    assert messages(caplog, logging.ERROR) == []
    assert not [m for m in messages(caplog, logging.WARNING) if "portfolio" in m]
    assert not [m for m in messages(caplog, logging.INFO) if "still running" in m]


def test_a_child_the_end_cuts_short_is_named_and_not_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, prepared: Prepared
) -> None:
    """A child still at work when the solve ends is killed; the log says which methods it ran."""
    monkeypatch.setitem(methods.METHODS, "sleepy", Misbehaving("sleepy", "sleep"))
    caplog.set_level(logging.INFO)
    port = Portfolio(prepared, TimeBudget.start(30), [("sleepy", "relaxation_bound")])
    (pid,) = [kid.pid for kid in port._kids.values()]
    port.poll(time.monotonic() + 0.2)
    port.close()
    (said,) = [m for m in messages(caplog, logging.INFO) if "still running at the end" in m]
    assert f"child {pid} (sleepy, relaxation_bound)" in said
    assert messages(caplog, logging.ERROR) == [] and exited(pid)


def test_a_childs_log_records_reach_the_parents_handlers(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, prepared: Prepared
) -> None:
    monkeypatch.setitem(methods.METHODS, "chatty", Misbehaving("chatty", "log"))
    caplog.set_level(logging.INFO)
    run_children(prepared, [("chatty",)])
    (record,) = [r for r in caplog.records if r.getMessage().startswith("hello from pid")]
    assert record.name == __name__ and record.levelno == logging.WARNING
    assert record.process != os.getpid() and record.getMessage() == f"hello from pid {record.process}"


def test_close_reads_what_a_child_sent_before_killing_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, prepared: Prepared
) -> None:
    """The parent never polls: at ``close`` the error already in the pipe is still logged."""
    monkeypatch.setitem(methods.METHODS, "misbehaving", Misbehaving("misbehaving", "raise"))
    port = Portfolio(prepared, TimeBudget.start(30), [("misbehaving",)])
    (pid,) = [kid.pid for kid in port._kids.values()]
    until = time.monotonic() + 30
    while not exited(pid) and time.monotonic() < until:  # it fails at once; its pipe holds the error
        time.sleep(0.05)
    port.close()
    assert [e for e in messages(caplog, logging.ERROR) if "misbehaving failed" in e and "Traceback" in e]


def test_a_solve_whose_heuristic_raises_still_returns_a_verified_plan_and_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from placement.construct import heuristics

    def broken(problem: object) -> tuple:
        raise ValueError("fgd is broken here")

    monkeypatch.setitem(heuristics.HEURISTICS, "fgd", broken)
    caplog.set_level(logging.INFO)
    p = generate(300, 2)
    p = replace(p, options=replace(p.options, time_limit_s=4))
    plan = solve(p)
    assert verify(p, plan) == []
    (text,) = [e for e in messages(caplog, logging.ERROR) if "fgd failed" in e]
    assert "ValueError: fgd is broken here" in text and "Traceback" in text
