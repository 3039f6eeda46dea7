"""Pytest fixtures shared by several test files.

Where shared test code lives: plain builders (GPU types, fleets, problems, plan checks) in
``tests/builders.py``, imported by name; the brute-force oracle in ``tests/oracles.py``;
the validation tests' mutations in ``tests/mutations.py``; a server on loopback in
``tests/server_support.py``; fixtures (set-up with a teardown) here. No test file imports
from another test file (``tests/test_suite_layout.py`` checks it).

Tests that take more than about 5 s each carry ``@pytest.mark.slow``: ``pytest -m "not slow"``
is a quick local loop; ``bash run.sh test`` and CI run everything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """Ray in this process (2 CPUs, no dashboard), shut down after the module's tests."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
