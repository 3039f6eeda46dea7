"""Plan store timings: how long recording and reading one plan takes, and where the time goes.

    python benchmarks/store_bench.py --input L.json --plan L-plan.json --store plans.db \
        --store postgresql://fleetplace@127.0.0.1:5432/bench --repeat 5

For each store: ``PlanStore.record`` (build the protobuf bytes of the request and the plan,
compress, one transaction) and ``PlanStore.get`` (one query, decompress, check the checksums,
parse, convert to the domain), medians of ``--repeat`` runs, with the conversion's share measured
apart, and the sizes stored. Prints one JSON object per store.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from pathlib import Path

from fleetplace.store import ZLIB_LEVEL, open_store
from placement.core.domain import Plan, Problem
from wire.convert import plan_from_proto, plan_to_proto, problem_from_request, request_from_problem
from wire.files import load_plan, load_problem
from wire.gen.placement.v1 import placement_pb2 as pb


def _median_s(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--input", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--store", action="append", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    problem = load_problem(Path(args.input))
    plan = plan_from_proto(load_plan(Path(args.plan)))
    input_raw = request_from_problem(problem).SerializeToString(deterministic=True)
    plan_raw = plan_to_proto(plan).SerializeToString(deterministic=True)

    def encode() -> None:
        zlib.compress(request_from_problem(problem).SerializeToString(deterministic=True), ZLIB_LEVEL)
        zlib.compress(plan_to_proto(plan).SerializeToString(deterministic=True), ZLIB_LEVEL)

    def decode() -> None:
        problem_from_request(pb.PlaceRequest.FromString(input_raw))
        plan_from_proto(pb.Plan.FromString(plan_raw))

    encode_s = _median_s(encode, args.repeat)
    decode_s = _median_s(decode, args.repeat)
    for url in args.store:
        _measure(url, problem, plan, input_raw, plan_raw, encode_s, decode_s, args.repeat)


def _measure(
    url: str,
    problem: Problem,
    plan: Plan,
    input_raw: bytes,
    plan_raw: bytes,
    encode_s: float,
    decode_s: float,
    repeat: int,
) -> None:
    store = open_store(url)
    ids: list[int] = []
    record_s = _median_s(lambda: ids.append(store.record(problem, plan, requested_by="cli").id), repeat)
    get_s = _median_s(lambda: store.get(ids[-1]), repeat)
    stored = store.get(ids[-1])
    assert stored.plan == plan and stored.problem == problem
    print(
        json.dumps(
            {
                "store": str(store),
                "replicas": len(plan.placements),
                "gpus": sum(n.gpu_count for n in problem.fleet.nodes),
                "input_bytes": len(input_raw),
                "plan_bytes": len(plan_raw),
                "stored_bytes": len(zlib.compress(input_raw, ZLIB_LEVEL))
                + len(zlib.compress(plan_raw, ZLIB_LEVEL)),
                "record_s": round(record_s, 3),
                "of_which_encode_s": round(encode_s, 3),
                "get_s": round(get_s, 3),
                "of_which_decode_s": round(decode_s, 3),
                "repeat": repeat,
            }
        )
    )
    store.close()


if __name__ == "__main__":
    main()
