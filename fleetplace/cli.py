"""``fleetplace``: plan, verify and inspect GPU fleet placements from the command line.

Exit codes: 0 success; 1 the plan given to ``verify`` is invalid; 2 bad input
(every problem listed, each with its field path); 3 an internal error (a bug: one line,
``--debug`` for the traceback) or an unreachable plan store; 4 the plan fails a gate: ``plan``
leaves a running workload (one with current replicas) unplaced without ``--allow-drop`` (the
plan is still shown and written), ``rebalance`` is refused by ``--max-moves``/``--fail-if`` or
drops a running workload (nothing recorded); 5 the plan store is busy (another rebalance, or
the current plan changed meanwhile); 6 ``rebalance --dry-run`` found changes; 130 interrupted
(SIGINT or SIGTERM): ``plan`` shows and writes the best verified plan so far (stop reason
INTERRUPTED), or writes nothing when none existed yet. The store commands are in
``fleetplace.cli_ops``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from placement.core.domain import Backend, Plan, Problem, SolveOptions, SolveStatus, StopReason
from placement.core.errors import FieldError, InputError

EXIT_OK = 0
EXIT_INVALID_PLAN = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_GATE = 4  # plan: a running workload left unplaced without --allow-drop; rebalance: the gate refused
EXIT_INTERRUPTED = 130
MAX_LISTED_PROBLEMS = 50  # bad input: the first 50 problems on stderr, then how many more

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
        self.last = "filtering candidates"
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
        source = getattr(event, "source", "")
        objective = getattr(event, "objective", None)
        bound = getattr(event, "bound", None)
        label = f"{tier} ({source})" if source else str(tier)
        text = f"{label}: best {objective:,.0f}" if objective is not None else label
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
    if getattr(args, "deterministic", False):
        changes["deterministic"] = True
    if not changes:
        return base
    return replace(base, **changes)  # type: ignore[arg-type]


def _check_options(args: argparse.Namespace) -> None:
    errors = []
    from placement.core.errors import FieldError

    if args.time_limit is not None and not (args.time_limit > 0):
        errors.append(
            FieldError("--time-limit", f"must be a positive number of seconds, got {args.time_limit}")
        )
    if args.seed is not None and args.seed < 0:
        errors.append(FieldError("--seed", f"must be zero or positive, got {args.seed}"))
    errors.extend(_executor_errors(args))
    errors.extend(_out_errors(getattr(args, "out", None)))
    errors.extend(_store_arg_errors(getattr(args, "store", None)))
    if errors:
        raise InputError(errors)


def _out_errors(out: str | None) -> list[FieldError]:
    """``--out FILE`` must be writable before anything is loaded or solved, not after the solve."""
    if not out:
        return []
    import os

    target = Path(out)
    folder = target.parent
    if target.is_dir():
        return [FieldError("--out", f"is a folder: {out}; give a file name")]
    if not folder.exists():
        what = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
        if what is not None:
            return [FieldError("--out", f"not a folder: {what} is a file")]
        return [FieldError("--out", f"no such folder: {folder}")]
    if not folder.is_dir():
        return [FieldError("--out", f"not a folder: {folder} is a file")]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [FieldError("--out", f"cannot write into the folder {folder}")]
    return []


def _executor_errors(args: argparse.Namespace) -> list[FieldError]:
    """``plan --executor/--groups/--ray-address``: the partitioned solve, locally or on Ray."""
    if not hasattr(args, "ray_address"):
        return []
    errors = []
    if args.ray_address and args.executor != "ray":
        errors.append(FieldError("--ray-address", "needs --executor ray"))
    if args.executor and getattr(args, "server", None):
        errors.append(FieldError("--executor", "the partitioned solve runs here, not with --server"))
    if args.groups is not None and not args.executor:
        errors.append(FieldError("--groups", "needs --executor"))
    if args.groups is not None and args.groups < 1:
        errors.append(FieldError("--groups", f"must be at least 1, got {args.groups}"))
    return errors


def _solve_partitioned(problem: Problem, args: argparse.Namespace) -> Plan:
    """Site groups solved apart (``placement.run.partition``); an unreachable Ray cluster is an OSError."""
    from placement.run.partition import solve_partitioned

    if not args.quiet:
        where = f"Ray at {args.ray_address}" if args.ray_address else args.executor
        sys.stderr.write(f"solving {args.groups or 2} site groups apart ({where})\n")
    return solve_partitioned(problem, args.groups or 2, args.executor, args.ray_address)


def _solve(problem: Problem, quiet: bool) -> Plan:
    """Solve in a worker thread; the first Ctrl-C (SIGINT) or SIGTERM stops the solver, which
    then returns its best verified plan (stop reason INTERRUPTED); a second one gives up at once.

    The signals are caught by handlers that only set the solver's stop flag: no exception is
    raised into the waiting thread, so the wait cannot be torn (``Thread.join`` interrupted by
    KeyboardInterrupt can report a live thread as finished on CPython 3.11).
    """
    import os
    import signal

    from placement import solve

    stop = threading.Event()
    finished = threading.Event()
    result: dict[str, object] = {}

    def run(progress: object) -> None:
        try:
            result["plan"] = solve(problem, progress=progress, stop=stop)  # type: ignore[arg-type]
        except BaseException as e:  # re-raised in the main thread
            result["error"] = e
        finally:
            finished.set()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():  # the second one: give up at once, without a plan
            # os._exit, not an exception: a normal exit would finalise the interpreter while
            # the solver thread is still inside native code, which can abort the process
            # (SIGABRT); the portfolio's children die with this process (PR_SET_PDEATHSIG)
            sys.stderr.write("\nfleetplace: interrupted again: giving up; nothing written\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        name = signal.Signals(signum).name
        sys.stderr.write(f"\n{name}: stopping the solver, keeping the best verified plan (again to abort)\n")
        sys.stderr.flush()

    def wait(progress: object) -> None:
        worker = threading.Thread(target=run, args=(progress,), name="solve", daemon=True)
        worker.start()
        while not finished.wait(0.2):
            pass

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        for s in previous:
            signal.signal(s, on_signal)
    try:
        if quiet:
            wait(None)
        else:
            with ProgressPrinter(sys.stderr, problem.options.time_limit_s) as printer:
                wait(printer)
    finally:
        if main_thread:
            for s, h in previous.items():
                signal.signal(s, h)
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    plan: Plan = result["plan"]  # type: ignore[assignment]
    if stop.is_set() and plan.info.stop_reason is StopReason.INTERRUPTED:
        raise Interrupted(plan if plan.info.status is not SolveStatus.NO_SOLUTION else None)
    return plan


def _client(args: argparse.Namespace, timeout_s: float) -> object:
    """A ``PlacementClient`` for ``--server`` with the TLS and token flags."""
    import os

    from server.client import PlacementClient

    token = os.environ.get(args.token_env) if args.token_env else None
    if args.token_env and not token:
        from placement.core.errors import FieldError

        raise InputError([FieldError("--token-env", f"${args.token_env} is not set")])
    return PlacementClient(
        args.server,
        timeout_s=timeout_s,
        token=token,
        root_certificates=args.ca,
        client_cert=args.cert,
        client_key=args.key,
        server_name=args.server_name,
    )


class RemoteInputError(InputError):
    """An INVALID_ARGUMENT from the server: the problems it lists (the first ones) and ``count``,
    how many it found."""

    def __init__(self, errors: list[FieldError], count: int) -> None:
        super().__init__(errors)
        self.count = max(count, len(errors))


def _remote_errors(e: Exception) -> InputError | None:
    """An INVALID_ARGUMENT from the server as the same ``InputError`` a local run raises."""
    import grpc

    from server.errors import field_violations, violation_count

    if (
        isinstance(e, grpc.RpcError)
        and isinstance(e, grpc.Call)
        and e.code() is grpc.StatusCode.INVALID_ARGUMENT
    ):
        errors = field_violations(e)
        if not errors:  # no field to name (unreadable bytes): the server's message says why
            errors = [FieldError("request", e.details() or "invalid request")]
        return RemoteInputError(errors, violation_count(e))
    return None


class Interrupted(Exception):
    """The solve was stopped by SIGINT or SIGTERM; ``plan`` is the best verified plan it had, if any."""

    def __init__(self, plan: Plan | None) -> None:
        super().__init__("interrupted")
        self.plan = plan


class RemoteError(Exception):
    """The server answered with an error status (not bad input)."""


def _remote_call(fn: object) -> object:
    import grpc

    try:
        return fn()  # type: ignore[operator]
    except grpc.RpcError as e:
        bad = _remote_errors(e)
        if bad is not None:
            raise bad from None
        code = e.code().name if isinstance(e, grpc.Call) else "UNKNOWN"
        details = e.details() if isinstance(e, grpc.Call) else str(e)
        raise RemoteError(f"{code}: {details}") from None


def _solve_remote(problem: Problem, args: argparse.Namespace) -> Plan:
    """Solve on ``--server`` through the stream: the same progress lines, then the plan."""
    from wire.convert import plan_from_proto, request_from_problem
    from wire.gen.placement.v1 import placement_pb2 as pb

    request = request_from_problem(problem)
    timeout_s = problem.options.time_limit_s + 10 + sum(n.gpu_count for n in problem.fleet.nodes) * 1e-3
    client = _client(args, timeout_s)

    def run(progress: object) -> pb.Plan:
        final = None
        for event in client.place_stream(request):  # type: ignore[attr-defined]
            if isinstance(event, pb.Plan):
                final = event
            elif progress is not None:
                from placement.exact.backends.base import Progress

                bound = event.bound if event.HasField("bound") else None
                progress(Progress(event.tier, event.objective, bound, event.elapsed_s, event.source))  # type: ignore[operator]
        if final is None:
            raise RemoteError("the server closed the stream without a plan")
        return final

    try:
        if args.quiet:
            message = _remote_call(lambda: run(None))
        else:
            with ProgressPrinter(sys.stderr, problem.options.time_limit_s) as printer:
                message = _remote_call(lambda: run(printer))
    finally:
        client.close()  # type: ignore[attr-defined]
    return plan_from_proto(message)  # type: ignore[arg-type]


def cmd_plan(args: argparse.Namespace) -> int:
    from fleetplace.report import render
    from wire.convert import plan_to_proto
    from wire.files import load_problem, to_json, write_json_atomic

    _check_options(args)
    problem = load_problem(Path(args.input))
    problem = replace(problem, options=_options(args, problem.options))
    interrupted = False
    if args.executor:
        plan = _solve_partitioned(problem, args)
    elif args.server:
        plan = _solve_remote(problem, args)
    else:
        try:
            plan = _solve(problem, args.quiet)
        except Interrupted as e:
            if e.plan is None:
                sys.stderr.write(
                    "fleetplace: interrupted before any verified plan existed; nothing written\n"
                )
                return EXIT_INTERRUPTED
            plan, interrupted = e.plan, True
    message = plan_to_proto(plan)
    if args.out:
        write_json_atomic(Path(args.out), message)
    recorded = _record_plan(args, problem, plan)
    if args.format == "json":
        sys.stdout.write(to_json(message))
        if recorded:
            sys.stderr.write(f"{recorded}\n")
    else:
        sys.stdout.write(render(problem, plan, detail=getattr(args, "detail", False)) + "\n")
        if args.out:
            sys.stdout.write(f"\nPlan written to {args.out}\n")
        if recorded:
            sys.stdout.write(f"{recorded}\n")
    if interrupted:
        sys.stdout.flush()
        sys.stderr.write(
            "fleetplace: interrupted: the best verified plan so far is shown"
            + (f" and written to {args.out}" if args.out else "")
            + " (stop reason INTERRUPTED)\n"
        )
        return EXIT_INTERRUPTED
    if recorded is None:
        return EXIT_INTERNAL
    return _dropped_gate(args, problem, plan)


def _record_plan(args: argparse.Namespace, problem: Problem, plan: Plan) -> str | None:
    """``plan --store URL``: record the plan (not as the current plan); the line to print ("" without
    ``--store``; None when the store refused, said on stderr)."""
    if not getattr(args, "store", None):
        return ""
    from fleetplace.store import StoreError, open_store

    try:
        store = open_store(args.store)
        try:
            record = store.record(problem, plan, requested_by=getattr(args, "requested_by", "cli"))
        finally:
            store.close()
    except StoreError as e:
        sys.stderr.write(f"fleetplace: the plan was not recorded: {e}\n")
        return None
    return f"Recorded plan #{record.id} in the store {store}"


def _store_arg_errors(store: str | None) -> list[FieldError]:
    """``--store``: a known kind of URL, and a SQLite file's folder exists (checked before the solve)."""
    if not store:
        return []
    from sqlalchemy.engine import make_url

    from fleetplace.store import StoreError, resolve_url

    try:
        url = make_url(resolve_url(store))
    except StoreError as e:
        return [FieldError("--store", str(e))]
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).parent.is_dir():
        return [FieldError("--store", f"no such folder: {Path(url.database).parent}")]
    return []


def _dropped_gate(args: argparse.Namespace, problem: Problem, plan: Plan) -> int:
    """Exit 4 when the plan leaves a workload that runs today (current replicas) unplaced, unless
    ``--allow-drop``: a script must not take such a plan for a plain success."""
    from placement.gate import dropped_running

    dropped = dropped_running(problem, plan)
    if not dropped or getattr(args, "allow_drop", False):
        return EXIT_OK
    sys.stdout.flush()
    names = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
    sys.stderr.write(
        f"fleetplace: the plan leaves {len(dropped)} running workload{'s' if len(dropped) != 1 else ''} "
        f"unplaced: {names}; exit {EXIT_GATE} (give --allow-drop to accept that)\n"
    )
    return EXIT_GATE


def cmd_verify(args: argparse.Namespace) -> int:
    from placement.core.verify_sequence import verify_all
    from wire.convert import plan_from_proto
    from wire.files import load_plan, load_problem, to_json

    problem = load_problem(Path(args.input))
    plan = plan_from_proto(load_plan(Path(args.plan)))
    if args.server:
        from wire.convert import plan_to_proto, request_from_problem

        client = _client(args, 60.0)
        try:
            answer = _remote_call(lambda: client.verify(request_from_problem(problem), plan_to_proto(plan)))  # type: ignore[attr-defined]
        finally:
            client.close()  # type: ignore[attr-defined]
        violations = list(answer.violations)  # type: ignore[attr-defined]
    else:
        violations = verify_all(problem, plan)  # type: ignore[assignment]
    if args.format == "json":
        from wire.convert import violation_to_proto
        from wire.gen.placement.v1 import placement_pb2 as pb

        answer_pb = pb.VerifyResponse(
            violations=[violation_to_proto(v) for v in violations], valid=not violations
        )
        sys.stdout.write(to_json(answer_pb))
    elif violations:
        sys.stdout.write(f"INVALID: {len(violations)} violation(s)\n")
        for v in violations:
            sys.stdout.write(f"  [{v.rule}] {v.subject}: {v.message}\n")
    else:
        sys.stdout.write(f"VALID: {len(plan.placements)} replicas, every hard rule and budget checks out\n")
    return EXIT_INVALID_PLAN if violations else EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    """Why a workload is not placed: the twin of the Explain RPC (``placement.core.explain.explain``)."""
    from google.protobuf import json_format

    from fleetplace.report import render_explanation
    from placement.core.explain import explain
    from wire.convert import plan_from_proto, reason_to_proto
    from wire.files import load_plan, load_problem
    from wire.gen.placement.v1 import placement_pb2 as pb

    problem = load_problem(Path(args.input))
    plan = None
    if args.plan:
        try:
            plan = plan_from_proto(load_plan(Path(args.plan)))
        except InputError as e:
            raise InputError([FieldError(f"plan.{err.path}", err.message) for err in e.errors]) from None
    reasons = explain(problem, args.workload, args.site, plan)
    placed = plan is not None and any(p.workload == args.workload for p in plan.placements)
    if args.format == "json":
        answer = pb.ExplainResponse(reasons=[reason_to_proto(r) for r in reasons], placed=placed)
        sys.stdout.write(json_format.MessageToJson(answer, indent=2) + "\n")
    else:
        replicas = sum(1 for p in plan.placements if p.workload == args.workload) if plan else 0
        text = render_explanation(args.workload, reasons, args.plan, replicas, args.site)
        sys.stdout.write(text + "\n")
    return EXIT_OK


def version_line() -> str:
    """``fleetplace --version``: the package, the code revision and the solver libraries, one line."""
    from importlib.metadata import PackageNotFoundError, version

    from placement.run.solve import code_revision

    def of(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    revision = code_revision() or "unknown"
    return (
        f"fleetplace {of('fleetplace')} (code revision {revision}), "
        f"solvers: ortools {of('ortools')}, pulp {of('pulp')}"
    )


class _VersionAction(argparse.Action):
    """Like argparse's ``version`` action, but the line is worked out only when asked for."""

    def __init__(
        self, option_strings: list[str], dest: str = argparse.SUPPRESS, help: str | None = None
    ) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        sys.stdout.write(version_line() + "\n")
        parser.exit()


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the service on loopback, place the bundled mixed fleet through it, show the report, stop it."""
    from server.app import create_server
    from server.config import ServerConfig

    sys.stdout.write("Starting the placement service on 127.0.0.1 (loopback only) ...\n")
    sys.stdout.flush()
    server, port = create_server(ServerConfig(address="127.0.0.1:0"))
    server.start()
    try:
        ns = argparse.Namespace(
            input=str(BUNDLED / "mixed"),
            out=args.out,
            backend=args.backend,
            time_limit=args.time_limit,
            seed=None,
            deterministic=args.deterministic,
            format="text",
            quiet=False,
            executor=None,
            groups=None,
            ray_address=None,
            allow_drop=True,  # a showcase, not a gate: what it leaves out is in the report
            **_no_client_flags(f"127.0.0.1:{port}"),
        )
        sys.stdout.write(
            f"Placing the bundled mixed fleet ({ns.input}) through placement.v1 on 127.0.0.1:{port} ...\n"
        )
        sys.stdout.flush()
        return cmd_plan(ns)
    finally:
        server.stop(grace_s=1.0)
        sys.stdout.write("Service stopped.\n")


def _no_client_flags(server: str | None) -> dict[str, object]:
    return {"server": server, "token_env": None, "ca": None, "cert": None, "key": None, "server_name": None}


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gRPC service until SIGTERM/SIGINT."""
    import os

    from server.app import serve
    from server.config import load_config
    from server.metrics import configure_logging

    config = load_config(
        args.config,
        address=args.address,
        max_concurrent_solves=args.max_concurrent_solves,
        max_queued_solves=args.max_queued_solves,
        max_message_bytes=args.max_message_bytes,
        grace_s=args.grace,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        tokens_file=args.tokens_file,
        tokens_env=args.tokens_env,
        metrics_port=args.metrics_port,
        store=args.store or os.environ.get("FLEETPLACE_STORE") or None,
    )
    configure_logging(logging.DEBUG if args.debug else logging.INFO, json_logs=args.log_format == "json")

    def started(port: int) -> None:
        host = config.address.rpartition(":")[0]
        sys.stderr.write(f"fleetplace: serving placement.v1 on {host}:{port}\n")
        sys.stderr.flush()

    return serve(config, on_started=started)


def cmd_generate(args: argparse.Namespace) -> int:
    from placement.generator import generate
    from wire.convert import request_from_problem
    from wire.files import write_json_atomic

    _check_generate(args)
    errors = _out_errors(args.out)
    if errors:
        raise InputError(errors)
    knobs = {"blast_radius_share": args.blast_radius_share} if args.blast_radius_share else {}
    problem = generate(args.gpus, seed=args.seed, **knobs)
    write_json_atomic(Path(args.out), request_from_problem(problem))
    n_gpus = sum(n.gpu_count for n in problem.fleet.nodes)
    sys.stdout.write(
        f"Wrote {args.out}: {len(problem.fleet.sites)} sites, {len(problem.fleet.nodes)} nodes, "
        f"{n_gpus} GPUs, {len(problem.workloads)} workloads (seed {args.seed})\n"
    )
    return EXIT_OK


def _check_generate(args: argparse.Namespace) -> None:
    from placement.core.errors import FieldError

    errors = []
    if args.gpus < 1:
        errors.append(FieldError("--gpus", f"must be at least 1, got {args.gpus}"))
    if not 0.0 <= args.blast_radius_share <= 1.0:
        errors.append(
            FieldError("--blast-radius-share", f"must be between 0 and 1, got {args.blast_radius_share}")
        )
    if errors:
        raise InputError(errors)


def cmd_bench(args: argparse.Namespace) -> int:
    """Every method on the chosen instances, each in a fresh process; results.json, a table, plots."""
    from benchmarks import bench
    from placement.core.errors import FieldError

    errors = []
    try:
        bench.parse_sizes(args.size)
    except ValueError as e:
        errors.append(FieldError("--size", str(e)))
    if not (args.time_limit > 0):
        errors.append(
            FieldError("--time-limit", f"must be a positive number of seconds, got {args.time_limit}")
        )
    if args.seeds < 1:
        errors.append(FieldError("--seeds", f"must be at least 1, got {args.seeds}"))
    if args.address and args.executor != "ray":
        errors.append(FieldError("--address", "needs --executor ray"))
    known = {"engine", "pair_mip", "partitioned", *bench.HEURISTIC_METHODS}
    unknown = sorted(set((args.methods or "").split(",")) - known - {""})
    if unknown:
        errors.append(
            FieldError("--methods", f"unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        )
    if errors:
        raise InputError(errors)
    return bench.main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fleetplace", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    p.add_argument("--version", action=_VersionAction, help="version, code revision and solver versions")
    sub = p.add_subparsers(dest="command", required=True)

    def solve_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--backend", choices=[b.value for b in Backend], default=None, help="solver (default ortools)"
        )
        sp.add_argument(
            "--time-limit", type=float, default=None, metavar="SECONDS", help="whole solve (default 30)"
        )
        sp.add_argument(
            "--deterministic",
            action="store_true",
            help="work bounded by counts, not the clock: the same input, seed and workers give the same plan",
        )

    def client_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--server", metavar="HOST:PORT", help="do it on a fleetplace service over gRPC")
        sp.add_argument("--token-env", metavar="VAR", help="bearer token for --server from this variable")
        sp.add_argument("--ca", metavar="PEM", help="TLS to --server: trust this CA")
        sp.add_argument("--cert", metavar="PEM", help="mutual TLS: client certificate")
        sp.add_argument("--key", metavar="PEM", help="mutual TLS: client key")
        sp.add_argument("--server-name", help="TLS: expected server name, if not the host of --server")

    sp = sub.add_parser("plan", help="compute a verified placement and its power budgets")
    sp.add_argument("input", help="a JSON/YAML file or a folder of them (placement.v1 PlaceRequest)")
    sp.add_argument("--out", metavar="PLAN", help="write the plan here as JSON")
    solve_flags(sp)
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sp.add_argument(
        "--detail",
        action="store_true",
        help="text report: also every node's budget and every replica's power cap",
    )
    sp.add_argument(
        "--executor", choices=["local", "ray"], default=None, help="partitioned solve: site groups apart"
    )
    sp.add_argument("--groups", type=int, default=None, metavar="N", help="site groups (default 2)")
    sp.add_argument("--ray-address", default=None, metavar="HOST:PORT", help="Ray cluster (--executor ray)")
    sp.add_argument(
        "--allow-drop",
        action="store_true",
        help=f"a running workload (with current replicas) may be left unplaced; else exit {EXIT_GATE}",
    )
    sp.add_argument("--store", metavar="URL", help="also record the plan in this plan store (see rebalance)")
    sp.add_argument("--requested-by", choices=["cli", "cron"], default="cli", help="recorded with --store")
    client_flags(sp)
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser(
        "verify", help="check a plan against its input; exit 1 and list violations if invalid"
    )
    sp.add_argument("input")
    sp.add_argument("plan")
    sp.add_argument("--format", choices=["text", "json"], default="text")
    client_flags(sp)
    sp.set_defaults(func=cmd_verify)

    sp = sub.add_parser(
        "explain", help="why a workload is not placed: rule by rule, with the numbers (the Explain RPC)"
    )
    sp.add_argument("input", help="a JSON/YAML file or a folder of them (placement.v1 PlaceRequest)")
    sp.add_argument("workload", help="the name of a workload of INPUT")
    sp.add_argument(
        "--plan", metavar="PLAN", help="a plan of INPUT (plan --out): also what keeps it out of it"
    )
    sp.add_argument("--site", metavar="S", help="only the candidates in this site")
    sp.add_argument("--format", choices=["text", "json"], default="text")
    sp.set_defaults(func=cmd_explain)

    sp = sub.add_parser("demo", help="place the bundled mixed fleet and show placements and budgets")
    sp.add_argument("--out", metavar="PLAN", default=None)
    solve_flags(sp)
    sp.set_defaults(func=cmd_demo)

    sp = sub.add_parser("serve", help="run the placement.v1 gRPC service (loopback by default)")
    sp.add_argument("--address", metavar="HOST:PORT", help="bind here (default 127.0.0.1:50051)")
    sp.add_argument("--config", metavar="FILE", help="YAML/JSON file of server.config.ServerConfig fields")
    sp.add_argument("--max-concurrent-solves", type=int)
    sp.add_argument("--max-queued-solves", type=int)
    sp.add_argument("--max-message-bytes", type=int)
    sp.add_argument("--grace", type=float, metavar="SECONDS", help="shutdown grace for in-flight solves")
    sp.add_argument("--tls-cert", metavar="PEM")
    sp.add_argument("--tls-key", metavar="PEM")
    sp.add_argument("--tls-client-ca", metavar="PEM", help="require client certificates from this CA (mTLS)")
    sp.add_argument("--tokens-file", metavar="FILE", help="bearer tokens, one per line")
    sp.add_argument("--tokens-env", metavar="VAR", help="bearer tokens, comma-separated, in this variable")
    sp.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0 any, default off)")
    sp.add_argument("--log-format", choices=["json", "text"], default="json")
    sp.add_argument(
        "--store",
        metavar="URL",
        help="plan store for GetPlan/ListPlans/Rebalance (default $FLEETPLACE_STORE)",
    )
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser(
        "bench", help="engine, heuristics and the pair MIP side by side: results.json, a table, plots"
    )
    sp.add_argument(
        "--size", required=True, metavar="S|M|L|XL|alibaba", help="instance size; several comma-separated"
    )
    sp.add_argument("--out", default="bench-out", metavar="DIR", help="results.json and plots here")
    sp.add_argument(
        "--time-limit", type=float, default=60.0, metavar="SECONDS", help="per method (default 60)"
    )
    sp.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 of each size (default 1)")
    sp.add_argument(
        "--executor", choices=["local", "ray"], default=None, help="also run the partitioned solve on it"
    )
    sp.add_argument(
        "--address", "--ray-address", default=None, metavar="ADDR", help="Ray cluster (--executor ray)"
    )
    sp.add_argument(
        "--methods",
        default=None,
        metavar="M1,M2",
        help="only these methods (default: every one that applies)",
    )
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("generate", help="write a seeded random fleet of about N GPUs")
    sp.add_argument("--gpus", type=int, required=True)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", required=True)
    sp.add_argument(
        "--blast-radius-share",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of workloads given a per-node replica cap of 2, 4, 8, 10 or 16 (default 0: none)",
    )
    sp.set_defaults(func=cmd_generate)

    from fleetplace import cli_ops

    cli_ops.add_parsers(sub, solve_flags)
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
        n = e.count if isinstance(e, RemoteInputError) else len(e.errors)
        listed = e.errors[:MAX_LISTED_PROBLEMS]
        sys.stderr.write(f"fleetplace: invalid input ({n:,} problem{'s' if n != 1 else ''}):\n")
        for err in listed:
            sys.stderr.write(f"  {err.path}: {err.message}\n")
        if n > len(listed):
            sys.stderr.write(f"  ... and {n - len(listed):,} more\n")
        return EXIT_BAD_INPUT
    except RemoteError as e:
        sys.stderr.write(f"fleetplace: server error: {e}\n")
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        sys.stderr.write("fleetplace: interrupted before any verified plan existed; nothing written\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except OSError as e:
        if args.debug:
            raise
        sys.stderr.write(f"fleetplace: {e}\n")
        return EXIT_INTERNAL
    except Exception as e:  # a bug (PlanRejected included): one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(
            f"fleetplace: internal error: {type(e).__name__}: {e} (rerun with --debug for details)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
