"""Mutations of a valid Problem for the validation tests: each replaces fields of one item.

``gpu(0, memory_gib=-1.0)`` is a function Problem -> Problem that breaks fleet.gpuTypes[0];
``both(...)`` chains several. The valid instance they start from is
``tests.builders.sample_problem``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from placement.core import domain as d

Mutation = Callable[[d.Problem], d.Problem]


def fleet(**kw: Any) -> Mutation:
    return lambda p: dataclasses.replace(p, fleet=dataclasses.replace(p.fleet, **kw))


def item(kind: str, i: int, **kw: Any) -> Mutation:
    """Replace fields of fleet.<kind>[i]."""

    def mutate(p: d.Problem) -> d.Problem:
        items = list(getattr(p.fleet, kind))
        items[i] = dataclasses.replace(items[i], **kw)
        return dataclasses.replace(p, fleet=dataclasses.replace(p.fleet, **{kind: tuple(items)}))

    return mutate


def add(kind: str, i: int, **kw: Any) -> Mutation:
    """Append a copy of fleet.<kind>[i] with some fields replaced."""

    def mutate(p: d.Problem) -> d.Problem:
        items = getattr(p.fleet, kind)
        new = dataclasses.replace(items[i], **kw)
        return dataclasses.replace(p, fleet=dataclasses.replace(p.fleet, **{kind: (*items, new)}))

    return mutate


def gpu(i: int, **kw: Any) -> Mutation:
    return item("gpu_types", i, **kw)


def site(i: int, **kw: Any) -> Mutation:
    return item("sites", i, **kw)


def pdom(i: int, **kw: Any) -> Mutation:
    return item("power_domains", i, **kw)


def node(i: int, **kw: Any) -> Mutation:
    return item("nodes", i, **kw)


def link(i: int, **kw: Any) -> Mutation:
    return item("links", i, **kw)


def levels(i: int, *pairs: tuple[int, int]) -> Mutation:
    return gpu(i, power_levels=tuple(d.PowerLevel(w, pct) for w, pct in pairs))


def wl(i: int, **kw: Any) -> Mutation:
    def mutate(p: d.Problem) -> d.Problem:
        items = list(p.workloads)
        items[i] = dataclasses.replace(items[i], **kw)
        return dataclasses.replace(p, workloads=tuple(items))

    return mutate


def opts(**kw: Any) -> Mutation:
    return lambda p: dataclasses.replace(p, options=dataclasses.replace(p.options, **kw))


def both(*ms: Mutation) -> Mutation:
    def mutate(p: d.Problem) -> d.Problem:
        for m in ms:
            p = m(p)
        return p

    return mutate
