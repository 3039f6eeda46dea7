"""A separate process for the store tests: ``python -m tests.store_worker COMMAND STORE ...``.

Commands (each prints one line per event, flushed, for the test to read):

* ``race STORE EXPECTED GO INPUT PLAN``: load, open the store, print ``ready``, wait until the file
  GO exists, then try to record PLAN as the current plan in place of EXPECTED (an id, or "none");
  prints ``won ID`` or ``lost: MESSAGE``.
* ``writer STORE INPUT PLAN PAUSE``: record PLAN as the current plan again and again, each in place
  of the last; prints ``writing N`` before a write, ``begin N`` when its transaction begins and
  ``committed ID SECONDS`` when it returns. With PAUSE ``update`` or ``insert``, the third write
  stops inside its transaction right after that statement on the plans table (the previous plan
  no longer current, or the new row written, nothing committed), prints ``paused after PAUSE``
  and sleeps. Runs until killed.
* ``open STORE GO``: print ``ready``, wait for the file GO, open (and so migrate) the store;
  prints ``opened``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def _load(input_path: str, plan_path: str) -> tuple[object, object]:
    from wire.convert import plan_from_proto
    from wire.files import load_plan, load_problem

    return load_problem(Path(input_path)), plan_from_proto(load_plan(Path(plan_path)))


def _wait_for(go: str) -> None:
    print("ready", flush=True)
    path = Path(go)
    while not path.exists():
        time.sleep(0.001)


def main(argv: list[str]) -> int:
    from fleetplace.store import CurrentChanged, open_store

    command, url = argv[0], argv[1]
    if command == "race":
        expected = None if argv[2] == "none" else int(argv[2])
        problem, plan = _load(argv[4], argv[5])
        store = open_store(url)
        _wait_for(argv[3])
        try:
            record = store.record(
                problem,  # type: ignore[arg-type]
                plan,  # type: ignore[arg-type]
                requested_by="cron",
                kind="rebalance",
                current=True,
                expected_current=expected,
                parent_id=expected,
            )
            print(f"won {record.id}", flush=True)
        except CurrentChanged as e:
            print(f"lost: {e}", flush=True)
        return 0
    if command == "writer":
        from sqlalchemy import event

        problem, plan = _load(argv[2], argv[3])
        pause = argv[4]  # none, update or insert
        store = open_store(url)
        last = store.current_id()
        n = 0

        @event.listens_for(store.engine, "begin")
        def _on_begin(conn: object) -> None:
            if conn.get_execution_options().get("fleetplace_write"):  # type: ignore[attr-defined]
                print(f"begin {n}", flush=True)

        @event.listens_for(store.engine, "after_cursor_execute")
        def _after(conn: object, cursor: object, statement: str, *rest: object) -> None:
            words = statement.split(None, 2)
            table_op = {"UPDATE": "update", "INSERT": "insert"}.get(words[0].upper() if words else "")
            if n >= 2 and pause == table_op and "fleetplace_plans" in statement:
                print(f"paused after {table_op}", flush=True)  # inside the open transaction
                time.sleep(3600)

        while True:
            print(f"writing {n}", flush=True)
            t0 = time.monotonic()
            record = store.record(
                problem,  # type: ignore[arg-type]
                plan,  # type: ignore[arg-type]
                requested_by="cron",
                kind="rebalance",
                current=True,
                expected_current=last,
                parent_id=last,
            )
            print(f"committed {record.id} {time.monotonic() - t0:.4f}", flush=True)
            last = record.id
            n += 1
    if command == "open":
        _wait_for(argv[2])
        open_store(url)
        print("opened", flush=True)
        return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
