"""``fleetplace rebalance``, ``history``, ``show``, ``diff`` and ``plan --store``.

Commands run in this process (``tests.cli_support``), the concurrent ones as real processes. The
tiny fleet (``datasets/tiny``, hand-solved) runs llama-3-70b-chat on dc-a-r2-n01 and vision-batch
on dc-a-r1-n01 today; its optimum drops vision-batch for a second llama replica. So ``plan`` must
not call that a plain success (exit 4 without ``--allow-drop``), and neither may a rebalance
record it. Solves use ``--deterministic`` (the same plan under any load).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from fleetplace.store import open_store
from tests.builders import CLI, REPO
from tests.cli_support import Ran, run_cli

TINY = str(REPO / "datasets" / "tiny")
SOLVE = ["--deterministic", "--time-limit", "30", "--quiet"]


def run(*args: str) -> Ran:
    return run_cli(*args)


@pytest.fixture
def changes(tmp_path: Path) -> Path:
    path = tmp_path / "changes.yaml"
    path.write_text(yaml.safe_dump({"drainNodes": ["dc-a-r2-n01"]}))
    return path


def test_plan_does_not_exit_0_when_it_drops_a_running_workload(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = run("plan", TINY, *SOLVE, "--out", str(out))
    assert r.returncode == 4, r.stderr
    assert "leaves 1 running workload unplaced: vision-batch" in r.stderr
    assert "--allow-drop" in r.stderr
    assert out.exists()  # the plan is still shown and written
    assert "Not placed (1)" in r.stdout
    allowed = run("plan", TINY, *SOLVE, "--allow-drop")
    assert allowed.returncode == 0, allowed.stderr


def test_plan_store_records_the_plan(tmp_path: Path) -> None:
    store = str(tmp_path / "plans.db")
    r = run("plan", TINY, *SOLVE, "--allow-drop", "--store", store, "--requested-by", "cron")
    assert r.returncode == 0, r.stderr
    assert f"Recorded plan #1 in the store sqlite:///{store}" in r.stdout
    s = open_store(store)
    (record,) = s.history()
    assert (record.kind, record.requested_by, record.current) == ("plan", "cron", False)
    s.close()
    # a store that cannot be is bad input, found before the solve
    r = run("plan", TINY, *SOLVE, "--store", str(tmp_path / "no" / "plans.db"))
    assert r.returncode == 2 and f"--store: no such folder: {tmp_path / 'no'}" in r.stderr


def test_the_nightly_flow_first_plan_dry_run_rebalance_history_show_diff(
    tmp_path: Path, changes: Path
) -> None:
    store = str(tmp_path / "plans.db")
    # the first run: the input's current replicas are what runs; dropping vision-batch is refused
    r = run("rebalance", TINY, "--store", store, *SOLVE)
    assert r.returncode == 4, r.stderr
    assert "[dropped] 1 running workload is not placed any more: vision-batch" in r.stdout
    # the reason is the engine's (Plan.displaced): preempted by llama, of higher priority
    assert "- vision-batch" in r.stdout
    assert "[preempted] llama-3-70b-chat (priority 3 > 1) took its place" in r.stdout
    # the migration is the plan's, step by step (make before break), not "none computed"
    assert "Migration steps (9, in order)" in r.stdout
    assert "1. stop vision-batch on dc-a-r1-n01 GPU 0" in r.stdout
    assert "2. start llama-3-70b-chat on dc-a-r1-n01 GPUs 0,1 at 560 W" in r.stdout
    assert "3. wait until llama-3-70b-chat on dc-a-r1-n01 GPUs 0,1 is ready" in r.stdout
    assert "none computed" not in r.stdout
    assert "Gate: refused, nothing recorded" in r.stdout
    assert open_store(store).history() == []
    r = run("rebalance", TINY, "--store", store, *SOLVE, "--allow-drop")
    assert r.returncode == 0, r.stderr
    assert "Recorded plan #1 as the current plan." in r.stdout

    # nothing changed: a dry run says so with exit 0
    r = run("rebalance", "--store", store, *SOLVE, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No changes: every replica stays where it runs" in r.stdout
    assert "Dry run: nothing recorded; no changes." in r.stdout

    # a drained node: the dry run shows the diff and exits 6, recording nothing
    r = run("rebalance", "--store", store, "--changes", str(changes), *SOLVE, "--dry-run", "--format", "json")
    assert r.returncode == 6, r.stderr
    answer = json.loads(r.stdout)
    assert answer["changed"] and int(answer["moves"]) >= 1 and answer["previousId"] == "1"
    assert "record" not in answer
    assert [x.id for x in open_store(store).history()] == [1]

    r = run("rebalance", "--store", store, "--changes", str(changes), *SOLVE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "From plan #1 (current)" in r.stdout and "Changes: drain 1 node" in r.stdout
    assert (
        "- llama-3-70b-chat  dc-a/dc-a-r2/dc-a-r2-n01 GPUs 0,1 @ 700 W: "
        "[node_state, forced] node dc-a-r2-n01 is DRAINING" in r.stdout
    )
    assert "(1 move, 0 not forced by the input)" in r.stdout
    assert "power domain  dc-a/dc-a-r2" in r.stdout
    assert "1. stop llama-3-70b-chat on dc-a-r2-n01 GPUs 0,1" in r.stdout
    assert "Recorded plan #2 as the current plan (previous #1)." in r.stdout

    r = run("history", "--store", store, "--format", "json")
    assert r.returncode == 0, r.stderr
    plans = json.loads(r.stdout)["plans"]
    assert [(p["id"], p["current"], p["kind"], p.get("parentId")) for p in plans] == [
        ("2", True, "rebalance", "1"),
        ("1", False, "rebalance", None),
    ]
    assert plans[0]["changes"] == "drain 1 node" and plans[0]["requestedBy"] == "cli"
    text = run("history", "--store", store).stdout
    assert text.splitlines()[2].startswith("2*") and "drain 1 node" in text

    r = run("show", "current", "--store", store)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("plan #2 (current): rebalance by cli")
    assert "Placements per site" in r.stdout
    shown = json.loads(run("show", "2", "--store", store, "--format", "json").stdout)
    assert shown["record"]["id"] == "2" and shown["plan"]["placements"]
    nodes = {n["name"]: n.get("state") for n in shown["input"]["fleet"]["nodes"]}
    assert nodes["dc-a-r2-n01"] == "NODE_STATE_DRAINING"  # the input as solved, changes applied

    r = run("diff", "1", "current", "--store", store)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("From #1 to #2")
    assert "1 to evict" in r.stdout
    assert run("diff", "1", "9", "--store", store).returncode == 2


def test_max_moves_reaches_the_solve(tmp_path: Path) -> None:
    """Unbudgeted, the first re-plan of tiny preempts vision-batch (a dropped running workload:
    refused, exit 4, in the nightly flow above); ``--max-moves 0`` makes the solve keep it, so the
    plan passes the gate and is recorded, with no move."""
    store = str(tmp_path / "plans.db")
    r = run("rebalance", TINY, "--store", store, *SOLVE, "--max-moves", "0", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    answer = json.loads(r.stdout)
    assert int(answer["moves"]) == 0 and answer["dropped"] == []
    assert {p["workload"] for p in answer["plan"]["placements"]} >= {"vision-batch", "llama-3-70b-chat"}
    assert answer["record"]["current"] is True


def test_the_gate_refuses_over_limit_plans_and_records_nothing(tmp_path: Path, changes: Path) -> None:
    """Draining dc-a-r2 forces llama's replica off it: a forced move, outside the move budget
    (``--max-moves 0`` passes) but counted by ``--fail-if moves>N``."""
    store = str(tmp_path / "plans.db")
    assert run("rebalance", TINY, "--store", store, *SOLVE, "--allow-drop").returncode == 0
    probe = run(
        "rebalance", "--store", store, "--changes", str(changes), *SOLVE, "--dry-run", "--format", "json"
    )
    answer = json.loads(probe.stdout)
    moves = int(answer["moves"])
    assert moves >= 1 and int(answer["unforcedMoves"]) == 0
    at_limits = ["--max-moves", "0", "--fail-if", f"moves>{moves}", "--fail-if", "site-power>100"]
    r = run("rebalance", "--store", store, "--changes", str(changes), *SOLVE, "--dry-run", *at_limits)
    assert r.returncode == 6, r.stdout + r.stderr  # every rule passes at its limit: a dry run with changes
    over = ["--fail-if", f"moves>{moves - 1}", "--fail-if", "site-power>10"]
    r = run("rebalance", "--store", store, "--changes", str(changes), *SOLVE, "--dry-run", *over)
    assert r.returncode == 4, r.stdout + r.stderr
    failures = r.stdout[r.stdout.index("Gate: refused") :].splitlines()[1:]
    rules = [f.split("]")[0].strip(" [") for f in failures]
    assert rules[:2] == ["moves", "site_power"] and set(rules[2:]) <= {"site_power"}
    assert f"[moves] {moves} moves > {moves - 1}" in r.stdout
    r = run("rebalance", "--store", store, "--changes", str(changes), *SOLVE, "--fail-if", "moves>0")
    assert r.returncode == 4
    assert [x.id for x in open_store(store).history()] == [1]  # refused without a dry run: nothing recorded


@pytest.mark.parametrize(
    "args, paths",
    [
        (["--fail-if", "cpu>3"], ["--fail-if[0]"]),
        (["--fail-if", "site-power>120", "--max-moves", "-1"], ["--fail-if[0]", "--max-moves"]),
        (["--fail-if", "dropped", "--allow-drop"], ["--fail-if"]),
    ],
)
def test_bad_flags_exit_2_with_every_problem(tmp_path: Path, args: list[str], paths: list[str]) -> None:
    r = run("rebalance", TINY, "--store", str(tmp_path / "plans.db"), *SOLVE, *args)
    assert r.returncode == 2
    assert [line.split(":")[0].strip() for line in r.stderr.splitlines()[1:]] == paths


def test_bad_changes_exit_2_with_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "changes.yaml"
    path.write_text(
        yaml.safe_dump(
            {"drainNodes": ["nope"], "rescaleWorkloads": [{"workload": "ghost", "maxReplicas": 2}]}
        )
    )
    r = run("rebalance", TINY, "--store", str(tmp_path / "plans.db"), "--changes", str(path), *SOLVE)
    assert r.returncode == 2, r.stderr
    assert "changes.drainNodes[0]: unknown node 'nope'" in r.stderr
    assert "changes.rescaleWorkloads[0].workload: unknown workload 'ghost'" in r.stderr
    path.write_text(yaml.safe_dump({"drainNode": ["x"]}))
    r = run("rebalance", TINY, "--store", str(tmp_path / "plans.db"), "--changes", str(path), *SOLVE)
    assert r.returncode == 2 and "changes.yaml: drainNode" in r.stderr


def test_without_input_or_current_plan_there_is_nothing_to_rebalance(tmp_path: Path) -> None:
    r = run("rebalance", "--store", str(tmp_path / "plans.db"), *SOLVE)
    assert r.returncode == 2
    assert "has no current plan; give the fleet and workloads (INPUT)" in r.stderr


class Rebalance:
    """``fleetplace rebalance`` (not quiet) with its stderr read line by line."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "FLEETPLACE_STORE"}
        self.proc = subprocess.Popen(
            [*CLI, "rebalance", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def wait_for(self, marker: str) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if marker in line:
                return
        raise AssertionError(f"no {marker!r} before the end (exit {self.proc.wait()})")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=300)
        return self.proc.returncode, out, err


@pytest.mark.slow
def test_two_rebalances_at_once_one_fails_clearly_or_waits(store_url: str, changes: Path) -> None:
    """A holds the store's lock (stopped with SIGSTOP right after taking it, so it holds it for
    sure); B without --wait fails with exit 5 naming A; C with --wait waits for A, then re-plans
    from A's plan. Never two current plans."""
    solve = ["--deterministic", "--time-limit", "30"]
    assert run("rebalance", TINY, "--store", store_url, *solve, "--quiet", "--allow-drop").returncode == 0
    a = Rebalance("--store", store_url, "--changes", str(changes), *solve)
    a.wait_for("holding the store's rebalance lock")
    os.kill(a.proc.pid, signal.SIGSTOP)
    try:
        b = run("rebalance", "--store", store_url, *solve, "--quiet")
        assert b.returncode == 5, b.stdout + b.stderr
        assert "another rebalance holds the lock of the store" in b.stderr
        assert f"pid {a.proc.pid} since" in b.stderr
        c = Rebalance("--store", store_url, *solve, "--wait", "120")
        c.wait_for(f"waiting up to 120 s for the lock held by {socket.gethostname()} pid {a.proc.pid}")
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    code_a, out_a, err_a = a.finish()
    code_c, out_c, err_c = c.finish()
    assert code_a == 0, out_a + err_a
    assert code_c == 0, out_c + err_c
    assert "Recorded plan #2 as the current plan (previous #1)." in out_a
    assert "Recorded plan #3 as the current plan (previous #2)." in out_c
    s = open_store(store_url)
    records = s.history()
    assert [(r.id, r.current, r.parent_id) for r in records] == [
        (3, True, 2),
        (2, False, 1),
        (1, False, None),
    ]
    s.close()
