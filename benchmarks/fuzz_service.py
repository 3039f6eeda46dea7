"""Fuzz and load run against ``fleetplace serve`` on loopback (a script, not a test).

    .venv/bin/python benchmarks/fuzz_service.py [--mutated 3000] [--clients 32] [--seconds 60]

The server runs as its own process (``python -m fleetplace.cli serve``), so that its RSS and
its health latency are its own, not this load generator's. Phases:

1. fuzz: ``--mutated`` requests to Place, Verify and Explain (the tiny and mixed datasets
   with scalar fields set to random values of any type, entries deleted or duplicated,
   serialized bytes truncated or flipped, and plain random bytes); every status code is
   counted; every plan that comes back is checked with ``placement.verify``;
2. load: ``--clients`` threads for ``--seconds``: Place (tiny, 0.5 s limit, 2 s deadline;
   mixed, 2 s limit, 5 s deadline; mixed with a 0.3 s deadline), Verify, Explain and health
   checks; "late" is a call whose deadline fired at the client without an answer from the
   server (an answer the server sent, DEADLINE_EXCEEDED included, is not late);
3. large: health checked every 20 ms while a 1,000,000-GPU request (40 KB) is sent to
   Place, Verify and Explain (refused: fleet limits), then a 200,000-GPU Verify with a full
   plan (answered by a checker process within its deadline): health p50/p99/max, server RSS.

At the end: the server's own counts (``/metrics``) beside the client's, and RSS (the server
process and its worker processes) at start, peak and end.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from placement.core.domain import StopReason  # noqa: E402
from placement.core.verify import verify  # noqa: E402
from server.answers import no_solution_plan  # noqa: E402
from server.client import from_server  # noqa: E402
from wire import convert  # noqa: E402
from wire.files import load_request  # noqa: E402
from wire.gen.placement.v1 import placement_pb2 as pb  # noqa: E402
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc  # noqa: E402


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- mutations


def scalar_fields(message: object) -> list[tuple[object, str]]:
    out: list[tuple[object, str]] = []
    for fd in message.DESCRIPTOR.fields:  # type: ignore[attr-defined]
        value = getattr(message, fd.name)
        if fd.message_type is not None:
            for item in list(value) if fd.is_repeated else [value]:
                out += scalar_fields(item)
        elif not fd.is_repeated:
            out.append((message, fd.name))
    return out


VALUES: list[object] = [0, -1, 1, 2**31 - 1, -(2**31), 2**62, 0.0, -0.5, 1e308, -1e308, float("nan"), float("inf"),
                        "", "x", "é" * 300, "\x00", True, False]  # fmt: skip


def mutate(rng: random.Random, base: pb.PlaceRequest) -> pb.PlaceRequest:
    r = pb.PlaceRequest()
    r.CopyFrom(base)
    fields = scalar_fields(r)
    for _ in range(rng.randint(1, 5)):
        target, name = rng.choice(fields)
        value = rng.choice(VALUES)
        if isinstance(value, bool) != isinstance(getattr(target, name), bool):
            continue  # protobuf deprecates bools in number fields
        with contextlib.suppress(TypeError, ValueError):
            setattr(target, name, value)
    lists: tuple[Any, ...] = (r.workloads, r.fleet.nodes, r.fleet.sites, r.fleet.power_domains, r.fleet.links)
    for repeated in lists:
        if repeated and rng.random() < 0.15:
            del repeated[rng.randrange(len(repeated))]
        if repeated and rng.random() < 0.1:
            repeated.add().CopyFrom(repeated[rng.randrange(len(repeated))])  # a duplicate name
    if not (0 < r.options.time_limit_s <= 1):
        r.options.time_limit_s = 0.5
    return r


def mutated_call(rng: random.Random, tiny: pb.PlaceRequest, mixed: pb.PlaceRequest) -> tuple[str, bytes]:
    """(method, request bytes)."""
    request = mutate(rng, rng.choice((tiny, tiny, mixed)))
    method = rng.choice(("Place", "Verify", "Explain"))
    if method == "Verify":
        data = pb.VerifyRequest(request=request).SerializeToString()
    elif method == "Explain":
        names = [w.name for w in request.workloads] + ["", "nope"]
        data = pb.ExplainRequest(request=request, workload=rng.choice(names)).SerializeToString()
    else:
        data = request.SerializeToString()
    kind = rng.random()
    if kind < 0.05:
        data = data[: rng.randrange(max(1, len(data)))]  # truncated
    elif kind < 0.1 and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        data = bytes(b)
    elif kind < 0.13:
        data = rng.randbytes(rng.randint(1, 400))
    return method, data


# ----------------------------------------------------------------------------- the run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mutated", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--server-root", default=str(ROOT), help="run the server of this checkout (to compare)")
    args = ap.parse_args()

    metrics_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetplace.cli", "serve", "--address", "127.0.0.1:0", "--metrics-port",
         str(metrics_port), "--max-queued-solves", "8", "--log-format", "text"],
        cwd=args.server_root, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=args.server_root),
    )  # fmt: skip
    assert proc.stderr is not None
    line = ""
    while not line.startswith("fleetplace: serving placement.v1 on"):
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("the server did not start")
    address = line.strip().rsplit(" ", 1)[-1]
    log_lines: list[str] = []
    threading.Thread(target=lambda: log_lines.extend(proc.stderr), daemon=True).start()  # type: ignore[arg-type]
    rss = {"start": rss_mib(proc.pid), "peak": 0.0, "kids_peak": 0.0}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.1):
            rss["peak"] = max(rss["peak"], rss_mib(proc.pid))
            rss["kids_peak"] = max(rss["kids_peak"], sum(rss_mib(k) for k in children(proc.pid)))

    threading.Thread(target=sample, daemon=True).start()
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 256 * 2**20)])
    stub = pb_grpc.PlacementServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    tiny = load_request(ROOT / "datasets/tiny")
    tiny.options.time_limit_s = 0.5
    mixed = load_request(ROOT / "datasets/mixed")
    mixed.options.time_limit_s = 2
    print(f"server pid {proc.pid} on {address}; RSS at start {rss['start']:.0f} MiB "
          f"(+{sum(rss_mib(k) for k in children(proc.pid)):.0f} MiB in {len(children(proc.pid))} workers)")  # fmt: skip

    # 1. fuzz
    rng = random.Random(args.seed)
    calls = [mutated_call(rng, tiny, mixed) for _ in range(args.mutated)]
    codes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    unverified: list[str] = []
    lock = threading.Lock()
    by_method: dict[str, Any] = {
        "Place": pb.PlaceRequest,
        "Verify": pb.VerifyRequest,
        "Explain": pb.ExplainRequest,
    }

    def fuzz(call: tuple[str, bytes]) -> None:
        method, data = call
        raw = channel.unary_unary(f"/placement.v1.PlacementService/{method}")
        try:
            answer = raw(data, timeout=15)
            code = "OK"
        except grpc.RpcError as e:
            code = e.code().name  # type: ignore[attr-defined]
        if code == "OK" and method == "Place":
            request = pb.PlaceRequest.FromString(data)
            plan = convert.plan_from_proto(pb.PlaceResponse.FromString(answer).plan)
            bad = verify(convert.problem_from_request(request), plan)
            if bad:
                with lock:
                    unverified.append(str(bad[:2]))
        with lock:
            codes[method][code] += 1
            parses = True
            try:
                by_method[method].FromString(data)
            except Exception:
                parses = False
            if not parses:
                codes[method + " (unparsable bytes)"][code] += 1

    t0 = time.monotonic()
    with futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(fuzz, calls))
    internal = sum(c["INTERNAL"] for c in codes.values() if c)
    print(f"fuzz: {args.mutated} mutated requests in {time.monotonic() - t0:.0f} s; codes "
          f"{ {m: dict(c) for m, c in codes.items()} }; INTERNAL {internal}; plans failing verification "
          f"{len(unverified)}")  # fmt: skip

    # 2. load
    load: collections.Counter[tuple[str, str]] = collections.Counter()
    late: collections.Counter[str] = collections.Counter()
    lats: dict[str, list[float]] = collections.defaultdict(list)
    health_load: list[float] = []
    end = time.monotonic() + args.seconds
    short = pb.PlaceRequest()
    short.CopyFrom(mixed)
    short.options.time_limit_s = 30
    verify_mixed = pb.VerifyRequest(request=mixed)
    explain_mixed = pb.ExplainRequest(request=mixed, workload=mixed.workloads[0].name)
    mix = [  # name, method, request, deadline s
        ("Place tiny", stub.Place, tiny, 2.0),
        ("Place mixed", stub.Place, mixed, 5.0),
        ("Place mixed 0.3 s", stub.Place, short, 0.3),
        ("Verify", stub.Verify, verify_mixed, 2.0),
        ("Explain", stub.Explain, explain_mixed, 2.0),
    ]
    late_ids: list[str] = []

    def client(i: int) -> None:
        k = i
        while time.monotonic() < end:
            name, method, request, deadline_s = mix[k % len(mix)]
            k += 1
            rid = f"load-{i}-{k}"
            t = time.monotonic()
            try:
                answer = method(request, timeout=deadline_s, metadata=(("x-request-id", rid),))
                code = "OK"
                if isinstance(answer, pb.PlaceResponse):
                    code = "OK " + pb.SolveStatus.Name(answer.plan.info.status).removeprefix("SOLVE_STATUS_")
            except grpc.RpcError as e:
                code = e.code().name  # type: ignore[attr-defined]
                if code == "DEADLINE_EXCEEDED" and not from_server(e):
                    with lock:
                        late[name] += 1
                        late_ids.append(rid)
                if code == "RESOURCE_EXHAUSTED":
                    time.sleep(0.05)
            took = time.monotonic() - t
            with lock:
                load[name, code] += 1
                lats[name].append(took)
            if i == 0:
                t = time.monotonic()
                health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                health_load.append((time.monotonic() - t) * 1000)

    rss_before_load = rss_mib(proc.pid)
    t0 = time.monotonic()
    with futures.ThreadPoolExecutor(args.clients) as ex:
        list(ex.map(client, range(args.clients)))
    wall = time.monotonic() - t0
    total = sum(load.values())
    print(f"load: {args.clients} clients for {wall:.0f} s: {total} responses ({total / wall:.0f}/s), late "
          f"(client deadline fired, no answer) {sum(late.values())} {dict(late)}")  # fmt: skip
    for name, xs in lats.items():
        print(f"  {name}: n={len(xs)} p50 {pct(xs, 50) * 1000:.0f} ms, p99 {pct(xs, 99) * 1000:.0f} ms; "
              + ", ".join(f"{code} {v}" for (n, code), v in sorted(load.items()) if n == name))  # fmt: skip
    for rid in late_ids[:3]:  # what the server did with them
        lines = [ln.strip() for ln in log_lines if f" {rid} " in ln]
        print(f"  late {rid}: " + " | ".join(ln[11:23] + ln[28:].replace(rid, "", 1)[:90] for ln in lines))
    print(f"  health during the load: p50 {pct(health_load, 50):.1f} ms, p99 {pct(health_load, 99):.1f} ms, "
          f"max {max(health_load, default=float('nan')):.1f} ms")  # fmt: skip

    # 3. large requests, health probed meanwhile
    million = pb.PlaceRequest()
    million.CopyFrom(tiny)
    template = pb.Node()
    template.CopyFrom(tiny.fleet.nodes[0])
    del million.fleet.nodes[:]
    for w in million.workloads:
        del w.current[:]
    for i in range(1000):
        n = million.fleet.nodes.add()
        n.CopyFrom(template)
        n.name, n.gpu_count = f"n{i:04d}", 1000
    flat = pb.PlaceRequest()
    flat.CopyFrom(million)
    del flat.fleet.nodes[200:]  # 200,000 GPUs: the limit
    full_plan = convert.plan_to_proto(
        no_solution_plan(convert.problem_from_request(flat), "fuzz", StopReason.TIME_LIMIT)
    )
    probes: list[float] = []
    probing = threading.Event()

    def probe() -> None:
        while not probing.is_set():
            t = time.monotonic()
            with contextlib.suppress(grpc.RpcError):
                health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            probes.append((time.monotonic() - t) * 1000)
            time.sleep(0.02)

    big_codes: collections.Counter[str] = collections.Counter()
    rss_before_big = rss_mib(proc.pid)
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    t0 = time.monotonic()
    big_calls = [
        ("Place 1M GPUs", lambda: stub.Place(million, timeout=5)),
        ("Verify 1M GPUs", lambda: stub.Verify(pb.VerifyRequest(request=million), timeout=5)),
        ("Explain 1M GPUs", lambda: stub.Explain(pb.ExplainRequest(request=million, workload="x"), timeout=5)),
        ("Verify 200k GPUs + plan, 30 s", lambda: stub.Verify(pb.VerifyRequest(request=flat, plan=full_plan), timeout=30)),
        ("Verify 200k GPUs + plan, 1 s", lambda: stub.Verify(pb.VerifyRequest(request=flat, plan=full_plan), timeout=1)),
    ]  # fmt: skip
    for _ in range(3):
        for name, fn in big_calls:
            t = time.monotonic()
            try:
                fn()
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name  # type: ignore[attr-defined]
            big_codes[f"{name}: {code}"] += 1
            print(f"  {name}: {code} in {time.monotonic() - t:.2f} s")
    probing.set()
    prober.join()
    time.sleep(3)  # let the checker processes be replaced
    print(f"large: {sum(big_codes.values())} calls in {time.monotonic() - t0 - 3:.0f} s: {dict(big_codes)}; "
          f"health meanwhile n={len(probes)} p50 {pct(probes, 50):.1f} ms, p99 {pct(probes, 99):.1f} ms, "
          f"max {max(probes):.1f} ms; server RSS {rss_before_big:.0f} MiB before, {rss_mib(proc.pid):.0f} MiB after")  # fmt: skip

    # the server's own counts
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    counted = [
        ln
        for ln in text.splitlines()
        if ln.startswith(("fleetplace_requests_total", "fleetplace_refused_requests_total"))
    ]
    print("server counts: " + "; ".join(ln.replace("fleetplace_", "") for ln in counted))
    sampling.set()
    kids = children(proc.pid)
    print(f"server RSS: start {rss['start']:.0f} MiB, before load {rss_before_load:.0f} MiB, peak {rss['peak']:.0f} "
          f"MiB, end {rss_mib(proc.pid):.0f} MiB; workers now {', '.join(f'{rss_mib(k):.0f}' for k in kids)} MiB, "
          f"their peak sum {rss['kids_peak']:.0f} MiB")  # fmt: skip
    channel.close()
    proc.send_signal(signal.SIGTERM)
    print(f"SIGTERM: exit {proc.wait(timeout=60)}")
    warnings = [ln for ln in log_lines if " ERROR " in ln or "Traceback" in ln]
    print(
        f"server log: {len(log_lines)} lines, {len(warnings)} errors"
        + (f": {warnings[:3]}" if warnings else "")
    )


if __name__ == "__main__":
    main()
