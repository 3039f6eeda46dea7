"""The operator's commands around the plan store: rebalance, history, show, diff, report.

``fleetplace.cli`` registers them (``add_parsers``). Exit codes beyond the common ones
(0 done, 2 bad input, 3 internal error or an unreachable store, 130 interrupted):

* 4: the gate refused the plan (``--max-moves``, ``--fail-if``, a running workload dropped
  without ``--allow-drop``, no plan found in time); nothing was recorded.
* 5: the store is busy: another rebalance holds its lock (after ``--wait``), or the current plan
  changed while this run was planning; nothing was recorded.
* 6: ``rebalance --dry-run`` found changes (0: none); nothing was recorded.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from placement.core.errors import FieldError, InputError

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_GATE = 4
EXIT_STORE_BUSY = 5
EXIT_CHANGES = 6
EXIT_INTERRUPTED = 130

STORE_HELP = (
    "plan store: a SQLite file path or postgresql://USER@HOST/DB (default $FLEETPLACE_STORE, "
    "else $XDG_DATA_HOME/fleetplace/plans.db)"
)

_FAIL_IF = re.compile(r"^\s*(moves|site-power|domain-power)\s*>\s*([0-9]+(?:\.[0-9]+)?)\s*%?\s*$")


def parse_fail_if(items: list[str] | None) -> tuple[dict[str, Any], list[FieldError]]:
    """``--fail-if`` conditions as ``placement.gate.Gate`` fields: ``moves>N``, ``site-power>PCT``,
    ``domain-power>PCT``, ``dropped`` (the default; listed for clarity), ``unsafe-migration``."""
    fields: dict[str, Any] = {}
    errors: list[FieldError] = []
    for i, item in enumerate(items or []):
        if item.strip() == "dropped":
            fields["allow_drop"] = False
            continue
        if item.strip() == "unsafe-migration":
            fields["safe_migration"] = True
            continue
        m = _FAIL_IF.match(item)
        if m is None:
            errors.append(
                FieldError(
                    f"--fail-if[{i}]",
                    f"cannot read {item!r}; expected moves>N, site-power>PCT, domain-power>PCT, "
                    "dropped or unsafe-migration",
                )
            )
            continue
        what, number = m.group(1), m.group(2)
        if what == "moves":
            if "." in number:
                errors.append(FieldError(f"--fail-if[{i}]", f"moves>N takes a whole number, got {number}"))
                continue
            fields["max_moves"] = min(int(number), fields.get("max_moves", int(number)))
        else:
            pct = float(number)
            if pct > 100:
                errors.append(
                    FieldError(f"--fail-if[{i}]", f"{what} takes a percentage 0..100, got {number}")
                )
                continue
            key = "max_site_power_pct" if what == "site-power" else "max_domain_power_pct"
            fields[key] = min(pct, fields.get(key, pct))
    return fields, errors


def _store_errors(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Store problems as exit codes: busy or changed 5, anything else 3, each in one line."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from fleetplace.rebalance import NothingToRebalance
        from fleetplace.store import CurrentChanged, PlanNotFound, StoreBusy, StoreError

        try:
            return fn(args)
        except (StoreBusy, CurrentChanged) as e:
            sys.stderr.write(f"fleetplace: {e}\n")
            return EXIT_STORE_BUSY
        except PlanNotFound as e:
            raise InputError([FieldError("PLAN", str(e))]) from None
        except NothingToRebalance as e:
            raise InputError([FieldError("INPUT", str(e))]) from None
        except StoreError as e:
            sys.stderr.write(f"fleetplace: {e}\n")
            return EXIT_INTERNAL

    return run


def open_store(args: argparse.Namespace) -> Any:
    from fleetplace.store import open_store as open_

    return open_(args.store)


# ------------------------------------------------------------------- rebalance


def _rebalance_request(args: argparse.Namespace) -> Any:
    from fleetplace.cli import _check_options, _options
    from fleetplace.rebalance import Request
    from placement.changes import FleetChanges
    from placement.gate import Gate
    from placement.replan import ReplanBudgets
    from wire.convert import plan_from_proto
    from wire.files import load_changes, load_plan, load_problem

    _check_options(args)
    gate_fields, errors = parse_fail_if(args.fail_if)
    if args.allow_drop and gate_fields.get("allow_drop") is False:
        errors.append(FieldError("--fail-if", "'dropped' contradicts --allow-drop"))
    if args.max_moves is not None and args.max_moves < 0:
        errors.append(FieldError("--max-moves", f"must be zero or positive, got {args.max_moves}"))
    if args.wait < 0:
        errors.append(FieldError("--wait", f"must be zero or positive, got {args.wait}"))
    if errors:
        raise InputError(errors)
    gate = Gate(**{"allow_drop": args.allow_drop, **gate_fields})
    problem = load_problem(Path(args.input)) if args.input else None
    changes = load_changes(args.changes) if args.changes else FleetChanges()
    current = plan_from_proto(load_plan(Path(args.current))) if args.current else None
    return Request(
        problem=problem,
        changes=changes,
        budgets=ReplanBudgets(max_moves=args.max_moves),
        gate=gate,
        dry_run=args.dry_run,
        requested_by=args.requested_by,
        wait_s=args.wait,
        current_plan=current,
        options=lambda o: _options(args, o),
    )


@_store_errors
def cmd_rebalance(args: argparse.Namespace) -> int:
    """Re-plan against the store's current plan with changes; gate; record as current (or dry run)."""
    from fleetplace.cli import Interrupted, _solve
    from fleetplace.diff_text import record_line, render_diff, render_failures, render_migration
    from fleetplace.rebalance import outcome_to_proto, rebalance
    from fleetplace.report import status_line
    from wire.convert import plan_to_proto
    from wire.files import to_json, write_json_atomic

    request = _rebalance_request(args)
    store = open_store(args)
    try:
        stored_id = store.current_id()
        if not args.quiet:
            start = f"plan #{stored_id}" if stored_id is not None else "no current plan"
            sys.stderr.write(
                f"rebalance: store {store}, from {start}; changes: {request.changes.summary()}"
                f"{' (dry run)' if request.dry_run else ''}\n"
            )

        def locked() -> None:
            if not args.quiet:
                sys.stderr.write("rebalance: holding the store's rebalance lock\n")
                sys.stderr.flush()

        def waiting(holder: object) -> None:
            sys.stderr.write(f"rebalance: waiting up to {args.wait:g} s for the lock held by {holder}\n")
            sys.stderr.flush()

        try:
            outcome = rebalance(
                store, request, lambda p: _solve(p, args.quiet), on_locked=locked, on_wait=waiting
            )
        except Interrupted:
            sys.stderr.write("fleetplace: interrupted: nothing recorded\n")
            return EXIT_INTERRUPTED
    finally:
        store.close()
    if args.out:
        write_json_atomic(Path(args.out), plan_to_proto(outcome.replanned.plan))
    if args.format == "json":
        sys.stdout.write(to_json(outcome_to_proto(outcome)))
    else:
        out = []
        if outcome.previous is not None:
            out.append(f"From {record_line(outcome.previous)}")
        else:
            out.append("From the input's current replicas: the store has no current plan yet.")
        out.append(f"Changes: {request.changes.summary()}")
        out.append("")
        out.extend(render_diff(outcome.diff, args.limit))
        out.append("")
        out.extend(render_migration(outcome.replanned.migration, args.limit))
        out.append("")
        out.append(status_line(outcome.replanned.plan))
        if outcome.failures:
            out.append("Gate: refused, nothing recorded:")
            out.extend(render_failures(outcome.failures))
        elif request.dry_run:
            out.append(
                "Dry run: nothing recorded; "
                + ("there are changes." if outcome.diff.changed else "no changes.")
            )
        elif outcome.record is not None:
            previous = f" (previous #{outcome.previous.id})" if outcome.previous is not None else ""
            out.append(f"Recorded plan #{outcome.record.id} as the current plan{previous}.")
        sys.stdout.write("\n".join(out) + "\n")
    if outcome.failures:
        return EXIT_GATE
    if request.dry_run and outcome.diff.changed:
        return EXIT_CHANGES
    return EXIT_OK


# ---------------------------------------------------------------- history, show


@_store_errors
def cmd_history(args: argparse.Namespace) -> int:
    from fleetplace.diff_text import render_history
    from wire.convert import record_to_proto
    from wire.files import to_json
    from wire.gen.placement.v1 import placement_pb2 as pb

    if args.limit < 1:
        raise InputError([FieldError("--limit", f"must be at least 1, got {args.limit}")])
    store = open_store(args)
    try:
        records = store.history(limit=args.limit, before_id=args.before)
    finally:
        store.close()
    if args.format == "json":
        sys.stdout.write(to_json(pb.ListPlansResponse(plans=[record_to_proto(r) for r in records])))
    else:
        sys.stdout.write(render_history(records) + "\n")
    return EXIT_OK


def _plan_id(store: Any, text: str, arg: str) -> int:
    if text == "current":
        found = store.current_id()
        if found is None:
            raise InputError([FieldError(arg, f"the store {store} has no current plan")])
        return int(found)
    value = text.lstrip("#")
    if not value.isdigit():
        raise InputError([FieldError(arg, f"expected a plan id or 'current', got {text!r}")])
    return int(value)


def _stored(store: Any, text: str, arg: str) -> Any:
    from fleetplace.store import PlanNotFound

    try:
        return store.get(_plan_id(store, text, arg))
    except PlanNotFound as e:
        raise InputError([FieldError(arg, str(e))]) from None


@_store_errors
def cmd_show(args: argparse.Namespace) -> int:
    from fleetplace.diff_text import record_lines
    from fleetplace.report import render
    from wire.convert import plan_to_proto, record_to_proto, request_from_problem
    from wire.files import to_json, write_json_atomic
    from wire.gen.placement.v1 import placement_pb2 as pb

    store = open_store(args)
    try:
        stored = _stored(store, args.plan, "PLAN")
    finally:
        store.close()
    if args.out:
        write_json_atomic(Path(args.out), plan_to_proto(stored.plan))
    if args.input_out:
        write_json_atomic(Path(args.input_out), request_from_problem(stored.problem))
    if args.format == "json":
        answer = pb.GetPlanResponse(
            record=record_to_proto(stored.record),
            plan=plan_to_proto(stored.plan),
            input=request_from_problem(stored.problem),
        )
        sys.stdout.write(to_json(answer))
    else:
        lines = record_lines(stored.record)
        lines.append("")
        lines.append(render(stored.problem, stored.plan, detail=args.detail))
        sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def _plan_of(store: Any, text: str, arg: str) -> tuple[str, Any, Any]:
    """(label, plan, problem or None) for a plan id, 'current' or a plan file."""
    from wire.convert import plan_from_proto
    from wire.files import load_plan

    path = Path(text)
    if path.suffix.lower() in (".json", ".yaml", ".yml") and path.exists():
        return str(path), plan_from_proto(load_plan(path)), None
    stored = _stored(store, text, arg)
    return f"#{stored.record.id}", stored.plan, stored.problem


@_store_errors
def cmd_diff(args: argparse.Namespace) -> int:
    """The diff of two plans. Why each replica leaves is the engine's (``core.moves.displaced``) on
    the second plan's instance with the first plan as the current placement; for a plan file (no
    instance) its own ``displaced``."""
    from fleetplace.diff_text import render_diff
    from placement.core.moves import displaced
    from placement.diff import diff_plans
    from placement.replan import with_current

    store = open_store(args)
    try:
        label_a, before, _ = _plan_of(store, args.before, "ID1")
        label_b, after, problem = _plan_of(store, args.after, "ID2")
    finally:
        store.close()
    moves = None if problem is None else displaced(with_current(problem, before.placements), after.placements)
    diff = diff_plans(before, after, moves)
    lines = [f"From {label_a} to {label_b}", "", *render_diff(diff, args.limit)]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


# --------------------------------------------------------------------- report


@_store_errors
def cmd_report(args: argparse.Namespace) -> int:
    from fleetplace.report_html import write_report
    from wire.files import load_problem

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError([FieldError("--out", f"not a folder: {out}")])
    if not out.parent.is_dir():
        raise InputError([FieldError("--out", f"no such folder: {out.parent}")])
    needs_store = not all(
        Path(p).suffix.lower() in (".json", ".yaml", ".yml") and Path(p).exists()
        for p in [args.plan, *([args.compare] if args.compare else [])]
    )
    store = open_store(args) if needs_store else None
    try:
        label, plan, problem = _plan_of(store, args.plan, "PLAN")
        other = _plan_of(store, args.compare, "--compare") if args.compare else None
    finally:
        if store is not None:
            store.close()
    if args.input:
        problem = load_problem(Path(args.input))
    if problem is None:
        raise InputError([FieldError("--input", "a plan file needs its input (--input INPUT)")])
    compare = (other[0], other[1]) if other is not None else None
    index = write_report(out, problem, label, plan, compare)
    sys.stdout.write(f"Report written to {index}\n")
    return EXIT_OK


# --------------------------------------------------------------------- parsers


def add_parsers(sub: Any, solve_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    def store_flag(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--store", metavar="URL", default=None, help=STORE_HELP)

    sp = sub.add_parser(
        "rebalance",
        help="re-plan against the store's current plan with changes; print the diff; record it as current",
    )
    sp.add_argument(
        "input",
        nargs="?",
        help="the fleet and workloads as they are now (default: the current plan's input)",
    )
    store_flag(sp)
    sp.add_argument(
        "--changes",
        metavar="FILE",
        help="nodes drained, down, added, removed; workloads added, removed, rescaled (FleetChanges)",
    )
    sp.add_argument(
        "--current", metavar="PLAN", help="the running placement from this plan file instead of the store"
    )
    sp.add_argument(
        "--max-moves",
        type=int,
        default=None,
        metavar="N",
        help="move budget: the re-plan makes at most N moves the input does not force (and a plan "
        "over it is refused)",
    )
    sp.add_argument(
        "--fail-if",
        action="append",
        metavar="COND",
        help="refuse the plan (exit 4) if COND holds: moves>N, site-power>PCT, domain-power>PCT, "
        "unsafe-migration; repeatable",
    )
    sp.add_argument("--allow-drop", action="store_true", help="a running workload may be left unplaced")
    sp.add_argument(
        "--dry-run", action="store_true", help="record nothing; exit 6 if there are changes, 0 if none"
    )
    sp.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another rebalance (default 0: fail at once)",
    )
    sp.add_argument("--requested-by", choices=["cli", "cron"], default="cli", help="recorded with the plan")
    solve_flags(sp)
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--out", metavar="PLAN", help="also write the new plan here as JSON")
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.add_argument(
        "--limit", type=int, default=50, metavar="N", help="lines per kind of change (default 50)"
    )
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sp.set_defaults(func=cmd_rebalance)

    sp = sub.add_parser("history", help="the plans in the store, newest first")
    store_flag(sp)
    sp.add_argument("--limit", type=int, default=20, metavar="N")
    sp.add_argument("--before", type=int, default=None, metavar="ID", help="only plans older than ID")
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.set_defaults(func=cmd_history)

    sp = sub.add_parser("show", help="a stored plan: its record and the plan's report")
    sp.add_argument("plan", metavar="ID", help="a plan id, or 'current'")
    store_flag(sp)
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.add_argument("--detail", action="store_true", help="also every node's budget and every replica's cap")
    sp.add_argument("--out", metavar="PLAN", help="write the plan here as JSON")
    sp.add_argument(
        "--input-out", metavar="FILE", help="write its input (the request as solved) here as JSON"
    )
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser(
        "diff", help="what changes from one plan to another: + placed, - evicted, ~ moved, power"
    )
    sp.add_argument("before", metavar="ID1", help="a plan id, 'current' or a plan file")
    sp.add_argument("after", metavar="ID2", help="a plan id, 'current' or a plan file")
    store_flag(sp)
    sp.add_argument(
        "--limit", type=int, default=50, metavar="N", help="lines per kind of change (default 50)"
    )
    sp.set_defaults(func=cmd_diff)

    sp = sub.add_parser("report", help="an HTML page with PNG charts of a plan (and how it compares)")
    sp.add_argument("plan", metavar="PLAN", help="a plan id, 'current' or a plan file (with --input)")
    sp.add_argument(
        "--compare", metavar="OTHER", help="another plan (id, 'current' or file): the plan before"
    )
    sp.add_argument("--out", required=True, metavar="DIR", help="folder for index.html and the charts")
    sp.add_argument(
        "--input", metavar="INPUT", help="the instance of a plan file (default: the stored input)"
    )
    store_flag(sp)
    sp.set_defaults(func=cmd_report)
