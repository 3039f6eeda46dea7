"""Load benchmark of the placement.v1 service on loopback (a script, not a test).

    .venv/bin/python benchmarks/load_test.py [--seconds 60] [--clients 32] [--malformed 1000]

Phases, each bounded in time and count, loopback only:
1. health latency while two large solves run (p50/p99/max of Health.Check);
2. deadline overrun: a large instance with a 2 s deadline (answer time - deadline);
3. cancel-to-free: cancel a running solve, time until a new solve gets the worker;
4. load: ``--clients`` threads send small (tiny) and medium (mixed) Place requests for
   ``--seconds``, then ``--malformed`` malformed requests (invalid fields).
Prints throughput, p50/p99 latency, responses by status code and the server's RSS
(start, peak, end; the server process and its solver processes).
"""

from __future__ import annotations

import argparse
import collections
import os
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from placement.generator import generate
from server.app import create_server
from server.config import ServerConfig
from wire import convert
from wire.files import load_request
from wire.gen.placement.v1 import placement_pb2 as pb
from wire.gen.placement.v1 import placement_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--malformed", type=int, default=1000)
    args = ap.parse_args()

    server, port = create_server(ServerConfig(address="127.0.0.1:0", max_queued_solves=8))
    server.start()
    address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.PlacementServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    me = os.getpid()
    rss = {"start": rss_mib(me), "peak": rss_mib(me)}
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.2):
            rss["peak"] = max(rss["peak"], rss_mib(me))

    threading.Thread(target=sample, daemon=True).start()

    big = convert.request_from_problem(generate(2000, seed=3))
    big.options.time_limit_s = 8
    # 1. health while two large solves run
    with futures.ThreadPoolExecutor(2) as ex:
        solves = [ex.submit(stub.Place, big, timeout=12) for _ in range(2)]
        time.sleep(0.3)
        lat: list[float] = []
        while not all(f.done() for f in solves) and len(lat) < 400:
            t = time.monotonic()
            health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            lat.append((time.monotonic() - t) * 1000)
            time.sleep(0.02)
        for f in solves:
            f.result()
    print(f"health under 2 large solves: n={len(lat)} p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
          f"max {max(lat):.1f} ms")  # fmt: skip

    # 2. deadline overrun with a 2 s deadline
    over = []
    for n in (2000, 8000):
        req = convert.request_from_problem(generate(n, seed=1))
        req.options.time_limit_s = 30
        t = time.monotonic()
        try:
            answer = pb.SolveStatus.Name(stub.Place(req, timeout=2.0).plan.info.status)
        except grpc.RpcError as e:  # a large fleet without a plan in time: DEADLINE_EXCEEDED
            answer = e.code().name  # type: ignore[attr-defined]
        took = time.monotonic() - t
        over.append(took - 2.0)
        print(f"{n} GPUs, 2 s deadline: answered in {took:.3f} s ({answer})")
    time.sleep(3)  # let killed workers be replaced

    # 3. cancel-to-free
    tiny = load_request(ROOT / "datasets/tiny")
    tiny.options.time_limit_s = 0.5
    mixed = load_request(ROOT / "datasets/mixed")
    mixed.options.time_limit_s = 2
    frees = []
    for _ in range(3):
        calls = [stub.Place.future(big, timeout=60) for _ in range(2)]
        time.sleep(1.5)
        t = time.monotonic()
        for c in calls:
            c.cancel()
        while server.pool.running:
            time.sleep(0.005)
        plan = stub.Place(tiny, timeout=30).plan  # waits in the queue until a worker is free
        frees.append(time.monotonic() - t - plan.info.wall_s)
    print(
        f"cancel -> worker free (incl. the kill and restart of a stuck worker): {', '.join(f'{x:.2f} s' for x in frees)}"
    )

    # 4. load
    codes: collections.Counter[str] = collections.Counter()
    lats: list[float] = []
    ok_lats: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + args.seconds

    def client(i: int) -> None:
        k = 0
        while time.monotonic() < end:
            req = mixed if (i + k) % 4 == 0 else tiny
            k += 1
            t = time.monotonic()
            try:
                stub.Place(req, timeout=30)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name  # type: ignore[attr-defined]
                if code == "RESOURCE_EXHAUSTED":
                    time.sleep(0.05)
            with lock:
                codes[code] += 1
                lats.append(time.monotonic() - t)
                if code == "OK":
                    ok_lats.append(time.monotonic() - t)

    rss_before_load = rss_mib(me)
    t0 = time.monotonic()
    with futures.ThreadPoolExecutor(args.clients) as ex:
        list(ex.map(client, range(args.clients)))
    wall = time.monotonic() - t0
    ok = ok_lats
    print(f"load: {args.clients} clients, {wall:.0f} s: {sum(codes.values())} responses, "
          f"{sum(codes.values()) / wall:.0f} responses/s, {codes['OK'] / wall:.1f} plans/s; "
          f"all responses p50 {pct(lats, 50) * 1000:.0f} ms, p99 {pct(lats, 99) * 1000:.0f} ms; plans p50 {pct(ok, 50) * 1000:.0f} ms, p99 {pct(ok, 99) * 1000:.0f} ms; "
          f"by code {dict(codes)}")  # fmt: skip

    bad_codes: collections.Counter[str] = collections.Counter()
    t0 = time.monotonic()
    for i in range(args.malformed):
        bad = pb.PlaceRequest()
        bad.CopyFrom(tiny)
        bad.fleet.nodes[i % len(bad.fleet.nodes)].gpu_count = -(i + 1)
        bad.workloads[i % len(bad.workloads)].memory_gib = -1.0
        try:
            stub.Place(bad, timeout=10)
            bad_codes["OK"] += 1
        except grpc.RpcError as e:
            bad_codes[e.code().name] += 1  # type: ignore[attr-defined]
    print(f"malformed: {args.malformed} in {time.monotonic() - t0:.1f} s: {dict(bad_codes)}")
    stop_sampling.set()
    kids = [w.process.pid for w in server.pool._all if w.process.pid is not None]
    print(f"server RSS: start {rss['start']:.0f} MiB, before load {rss_before_load:.0f} MiB, peak {rss['peak']:.0f} MiB, "
          f"end {rss_mib(me):.0f} MiB; solver processes {', '.join(f'{rss_mib(k):.0f}' for k in kids)} MiB")  # fmt: skip
    channel.close()
    server.stop(grace_s=2)


if __name__ == "__main__":
    main()
