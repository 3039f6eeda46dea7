"""Where the parts of a partitioned solve run: a local process pool, or Ray tasks.

Both executors take ``prepare(slots)``, which returns the part problems with their time
limits once the executor knows how many parts run at once, and ``meanwhile()``, which the
driver runs while the parts solve (the partitioned solve computes its LP bound there). Both
return, in the order of the parts, each part's ``PartResult`` (its verified plan and where it
ran) or the exception it raised: a failed part never stops the others.

* ``run_local``: ``processes`` spawned processes (one part at a time in this process when
  ``processes`` or the number of parts is 1).
* ``run_ray``: one Ray task per part (``num_cpus=1``) on ``ray.init(address=address)``, or
  on a local Ray when ``address`` is None; a Ray already initialised by the caller is used
  as it is and left running, one started here is shut down. A cluster address goes through
  ``connect_ray``: a TCP connection to the head first (refused or unreachable fails at once,
  naming the address), then ``ray.init`` abandoned after ``connect_timeout_s`` (an address
  that answers but is no Ray head would keep it retrying for minutes); both raise
  ``RayUnavailable``, a ``ConnectionError``, before any part runs. The job ships the
  ``placement`` package to the workers (``runtime_env`` ``py_modules``), so a cluster needs
  only the dependencies.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass

from placement.core.domain import Plan, Problem

log = logging.getLogger(__name__)

RAY_CONNECT_TIMEOUT_S = 30.0  # ray.init on an address that answers but is no Ray head can hang


@dataclass(frozen=True)
class PartResult:
    """A part's plan and where it was solved."""

    plan: Plan
    node: str
    pid: int


def solve_part(problem: Problem, on_ray: bool = False) -> PartResult:
    import os

    from placement.run.solve import solve

    node = "local"
    if on_ray:
        import ray

        node = ray.get_runtime_context().get_node_id()
    return PartResult(solve(problem), node, os.getpid())


def solve_part_on_ray(problem: Problem) -> PartResult:
    return solve_part(problem, on_ray=True)


def run_local(
    prepare: Callable[[int], list[Problem]], n_parts: int, processes: int, meanwhile: Callable[[], None]
) -> list[PartResult | BaseException]:
    if processes <= 1 or n_parts <= 1:
        problems = prepare(1)
        meanwhile()
        out: list[PartResult | BaseException] = []
        for p in problems:
            try:
                out.append(solve_part(p))
            except Exception as exc:
                log.exception("a part failed")
                out.append(exc)
        return out
    ctx = multiprocessing.get_context("spawn")
    problems = prepare(min(processes, n_parts))
    with cf.ProcessPoolExecutor(max_workers=min(processes, n_parts), mp_context=ctx) as pool:
        futures = [pool.submit(solve_part, p) for p in problems]
        meanwhile()
        results: list[PartResult | BaseException] = []
        for f in futures:
            try:
                results.append(f.result())
            except Exception as exc:
                log.warning("a part failed: %r", exc)
                results.append(exc)
        return results


class RayUnavailable(ConnectionError):
    """The Ray cluster at the given address could not be reached or joined (an ``OSError``)."""


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` (or ``ray://host:port``) of a cluster address; None for ``auto`` and the like."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def connect_ray(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """``ray.init`` on a cluster address within ``timeout_s``, or ``RayUnavailable`` naming the address.

    First a TCP connection to the head's port (refused or unreachable: fails at once, without
    Ray's own retries), then ``ray.init`` in a daemon thread, abandoned after ``timeout_s``
    (an address that accepts connections but is no Ray head makes it wait for minutes). The
    workers get this package through the job's runtime environment, so a cluster needs only
    the dependencies. A cluster with token authentication needs ``RAY_AUTH_MODE=token`` and its
    token (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``) in the driver's environment.
    """
    import socket
    import threading

    import ray

    import placement

    hp = _host_port(address)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=min(timeout_s, 5.0)).close()
        except OSError as e:
            raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {e}") from None
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            ray.init(
                address=address,
                runtime_env={"py_modules": [placement]},
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            outcome.append(None)
        except BaseException as e:  # handed to the caller's thread
            outcome.append(e)

    t = threading.Thread(target=run, name="ray-connect", daemon=True)
    t.start()
    t.join(timeout_s)
    if not outcome:
        raise RayUnavailable(f"no Ray cluster answered at {address} within {timeout_s:g} s")
    err = outcome[0]
    if err is not None:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RayUnavailable(f"cannot join the Ray cluster at {address}: {first}") from err
    log.info("connected to the Ray cluster at %s: %s", address, ray.cluster_resources())


def run_ray(
    prepare: Callable[[int], list[Problem]],
    address: str | None,
    meanwhile: Callable[[], None],
    connect_timeout_s: float,
) -> list[PartResult | BaseException]:
    import ray

    started = False
    if not ray.is_initialized():
        if address is None:
            ray.init(include_dashboard=False, log_to_driver=False)
        else:  # a cluster: ship this package to its workers
            connect_ray(address, connect_timeout_s)
        started = True
    try:
        problems = prepare(max(1, int(ray.cluster_resources().get("CPU", 1))))
        remote = ray.remote(num_cpus=1)(solve_part_on_ray)
        refs = [remote.remote(p) for p in problems]
        meanwhile()
        out: list[PartResult | BaseException] = []
        for ref in refs:
            try:
                out.append(ray.get(ref))
            except Exception as exc:
                log.warning("a part failed on Ray: %r", exc)
                out.append(exc)
        return out
    finally:
        if started:
            ray.shutdown()
