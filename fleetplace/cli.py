"""``fleetplace``: plan, verify and inspect GPU fleet placements from the command line.

Exit codes: 0 success; 1 the plan given to ``verify`` is invalid; 2 bad input
(every problem listed, each with its field path); 3 an internal error (a bug: one line,
``--debug`` for the traceback); 130 interrupted before any plan existed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from placement.domain import Backend, Plan, Problem, SolveOptions
from placement.errors import InputError, PlacementError

EXIT_OK = 0
EXIT_INVALID_PLAN = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130

log = logging.getLogger("fleetplace")

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "datasets"


class ProgressPrinter:
    """Shows solve progress on stderr: one updating line on a terminal, throttled lines otherwise."""

    def __init__(self, stream: TextIO, time_limit_s: float) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.time_limit_s = time_limit_s
        self.start = time.monotonic()
        self.last = "building the model"
        self.last_print = 0.0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> ProgressPrinter:
        self.ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.ticker.join(timeout=2)
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def __call__(self, event: object) -> None:
        tier = getattr(event, "tier", "")
        objective = getattr(event, "objective", None)
        bound = getattr(event, "bound", None)
        text = f"{tier}: best {objective:,.0f}" if objective is not None else str(tier)
        if bound is not None and objective is not None:
            text += f", bound {bound:,.0f}"
            if tier == "placed_work" and bound > 0:
                text += f", gap {max(0.0, (bound - objective) / bound) * 100:.2f}%"
        with self.lock:
            self.last = text
        self._show(force=not self.tty)

    def _tick(self) -> None:
        while not self.done.wait(1.0):
            self._show(force=False)

    def _show(self, force: bool) -> None:
        now = time.monotonic()
        with self.lock:
            line = f"solving [{now - self.start:5.1f}s of {self.time_limit_s:g}s] {self.last}"
            if self.tty:
                self.stream.write("\r\033[K" + line[:160])
                self.stream.flush()
            elif force and now - self.last_print >= 1.0:
                self.stream.write(line + "\n")
                self.stream.flush()
                self.last_print = now


def _options(args: argparse.Namespace, base: SolveOptions) -> SolveOptions:
    changes: dict[str, object] = {}
    if args.backend is not None:
        changes["backend"] = Backend(args.backend)
    if args.time_limit is not None:
        changes["time_limit_s"] = args.time_limit
    if args.seed is not None:
        changes["seed"] = args.seed
    if not changes:
        return base
    from dataclasses import replace

    return replace(base, **changes)  # type: ignore[arg-type]


def _check_options(args: argparse.Namespace) -> None:
    errors = []
    from placement.errors import FieldError

    if args.time_limit is not None and not (args.time_limit > 0):
        errors.append(
            FieldError("--time-limit", f"must be a positive number of seconds, got {args.time_limit}")
        )
    if args.seed is not None and args.seed < 0:
        errors.append(FieldError("--seed", f"must be zero or positive, got {args.seed}"))
    if errors:
        raise InputError(errors)


def _solve(problem: Problem, quiet: bool) -> Plan:
    """Solve in a worker thread so that Ctrl-C stops the solver and still yields the best verified plan."""
    from placement import solve

    stop = threading.Event()
    result: dict[str, object] = {}

    def run(progress: object) -> None:
        try:
            result["plan"] = solve(problem, progress=progress, stop=stop)  # type: ignore[arg-type]
        except BaseException as e:  # re-raised in the main thread
            result["error"] = e

    def wait(progress: object) -> None:
        worker = threading.Thread(target=run, args=(progress,), name="solve", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
        except KeyboardInterrupt:
            sys.stderr.write("\ninterrupted: stopping the solver, keeping the best verified plan\n")
            stop.set()
            worker.join()

    if quiet:
        wait(None)
    else:
        with ProgressPrinter(sys.stderr, problem.options.time_limit_s) as printer:
            wait(printer)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["plan"]  # type: ignore[return-value]


def cmd_plan(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from google.protobuf import json_format

    from fleetplace.files import load_problem, write_json_atomic
    from fleetplace.report import render
    from server.convert import plan_to_proto

    _check_options(args)
    problem = load_problem(Path(args.input))
    problem = replace(problem, options=_options(args, problem.options))
    plan = _solve(problem, args.quiet)
    message = plan_to_proto(plan)
    if args.out:
        write_json_atomic(Path(args.out), message)
    if args.format == "json":
        sys.stdout.write(json_format.MessageToJson(message, indent=2) + "\n")
    else:
        sys.stdout.write(render(problem, plan) + "\n")
        if args.out:
            sys.stdout.write(f"\nPlan written to {args.out}\n")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from fleetplace.files import load_plan, load_problem
    from placement.verify import verify
    from server.convert import plan_from_proto

    problem = load_problem(Path(args.input))
    plan = plan_from_proto(load_plan(Path(args.plan)))
    violations = verify(problem, plan)
    if args.format == "json":
        doc = {
            "valid": not violations,
            "violations": [{"rule": v.rule, "subject": v.subject, "message": v.message} for v in violations],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    elif violations:
        sys.stdout.write(f"INVALID: {len(violations)} violation(s)\n")
        for v in violations:
            sys.stdout.write(f"  [{v.rule}] {v.subject}: {v.message}\n")
    else:
        sys.stdout.write(f"VALID: {len(plan.placements)} replicas, every hard rule and budget checks out\n")
    return EXIT_INVALID_PLAN if violations else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Place the bundled mixed fleet and show placements and power budgets."""
    ns = argparse.Namespace(
        input=str(BUNDLED / "mixed"),
        out=args.out,
        backend=args.backend,
        time_limit=args.time_limit,
        seed=None,
        format="text",
        quiet=False,
    )
    sys.stdout.write(f"Placing the bundled mixed fleet ({ns.input}) ...\n")
    return cmd_plan(ns)


def cmd_generate(args: argparse.Namespace) -> int:
    from fleetplace.files import write_json_atomic
    from placement.generator import generate
    from server.convert import request_from_problem

    _check_generate(args)
    problem = generate(args.gpus, seed=args.seed)
    write_json_atomic(Path(args.out), request_from_problem(problem))
    n_gpus = sum(n.gpu_count for n in problem.fleet.nodes)
    sys.stdout.write(
        f"Wrote {args.out}: {len(problem.fleet.sites)} sites, {len(problem.fleet.nodes)} nodes, "
        f"{n_gpus} GPUs, {len(problem.workloads)} workloads (seed {args.seed})\n"
    )
    return EXIT_OK


def _check_generate(args: argparse.Namespace) -> None:
    from placement.errors import FieldError

    if args.gpus < 1:
        raise InputError([FieldError("--gpus", f"must be at least 1, got {args.gpus}")])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fleetplace", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", required=True)

    def solve_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--backend", choices=[b.value for b in Backend], default=None, help="solver (default ortools)"
        )
        sp.add_argument(
            "--time-limit", type=float, default=None, metavar="SECONDS", help="whole solve (default 30)"
        )

    sp = sub.add_parser("plan", help="compute a verified placement and its power budgets")
    sp.add_argument("input", help="a JSON/YAML file or a folder of them (placement.v1 PlaceRequest)")
    sp.add_argument("--out", metavar="PLAN", help="write the plan here as JSON")
    solve_flags(sp)
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser(
        "verify", help="check a plan against its input; exit 1 and list violations if invalid"
    )
    sp.add_argument("input")
    sp.add_argument("plan")
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser("demo", help="place the bundled mixed fleet and show placements and budgets")
    sp.add_argument("--out", metavar="PLAN", default=None)
    solve_flags(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("generate", help="write a seeded random fleet of about N GPUs")
    sp.add_argument("--gpus", type=int, required=True)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", required=True)
    sp.set_defaults(func=cmd_generate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.func(args)
        return code
    except InputError as e:
        n = len(e.errors)
        sys.stderr.write(f"fleetplace: invalid input ({n} problem{'s' if n != 1 else ''}):\n")
        for err in e.errors:
            sys.stderr.write(f"  {err.path}: {err.message}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("fleetplace: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except (PlacementError, Exception) as e:  # a bug: one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(
            f"fleetplace: internal error: {type(e).__name__}: {e} (rerun with --debug for details)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
