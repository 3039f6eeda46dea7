"""The solver processes log into the server's stream, each line carrying the caller's request id."""

from __future__ import annotations

import json
import logging

import pytest

from server.metrics import configure_logging
from tests.server_support import dataset, running_server, stub


def test_solver_process_logs_are_json_with_the_request_id(capfd: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(logging.INFO, json_logs=True)  # before the server spawns its solver processes
    try:
        with running_server(max_concurrent_solves=1) as (_, address):
            channel, place = stub(address)
            with channel:
                place.Place(dataset("tiny"), timeout=30, metadata=(("x-request-id", "req-log-7"),))
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(x) for x in capfd.readouterr().err.splitlines() if x.startswith("{")]
    solver_lines = [x for x in lines if x["logger"].startswith("placement.")]
    assert solver_lines, "the solver process wrote no log lines to the server's stream"
    assert {x["request_id"] for x in solver_lines} == {"req-log-7"}


def test_workers_without_a_log_setup_still_solve() -> None:
    with running_server(max_concurrent_solves=1) as (_, address):
        channel, place = stub(address)
        with channel:
            reply = place.Place(dataset("tiny"), timeout=30)
    assert reply.plan.placements
