"""A pool worker's ``kill`` is called by several threads at once when the service stops (the
pool's close beside a retiring or warming thread): each call returns without error, the
process is gone and both pipes are closed once."""

from __future__ import annotations

import multiprocessing as mp
import threading

from server.pool import _Worker


def test_kill_from_many_threads_at_once_closes_each_pipe_once() -> None:
    worker = _Worker(mp.get_context("spawn"), 0, 1, "test", solver=False)
    assert worker.wait_ready(120)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def kill() -> None:
        start.wait()
        try:
            worker.kill()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=kill) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert not worker.process.is_alive()
    assert worker.jobs_parent.closed and worker.events.closed
    worker.kill()  # and once more, after the others: nothing left to do, no error
