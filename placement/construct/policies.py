"""Scoring policies of the placement loop (``placement.construct.heuristics.Packing``): where the next replica goes.

A policy never checks a rule: the loop offers it the places the rule kernel may accept,
as node *signatures* before and after the replica, and places the replica on the best
one that the kernel (``placement.core.state.FleetState``) accepts.

Notations
---------
* A node signature ``(count, free, partial, cpu, mem)``: its GPU count, its free GPUs (no
  replica on them), the sorted (free milli, free milli-GiB) of each partly used GPU (a
  shared GPU with less than 1000 milli in use), and its free host CPU milli and memory MiB
  (``UNTRACKED`` where the node does not track them; both 0 when the policy does not
  read host resources, ``reads_host``).
* ``R_g``: the free thousandths of GPU ``g`` (1000 for a free GPU, 0 for a full one),
  ``S_n = sum_g R_g``.
* A task class ``m``: a whole-GPU size ``g_m`` or a share ``D_m`` milli, its host CPU and
  memory, the GPU types it may run on; ``p_m`` its weight in the mix.

The policies
------------
* ``FirstFit``: the first place that takes the replica, in fleet order (site, then GPU
  type, then signature as nodes entered it); one partly used GPU per signature at most.
* ``BestFit``: the node whose GPUs are the most allocated afterwards (Kubernetes'
  ``NodeResourcesFit`` with ``MostAllocated``); among shared GPUs the one left fullest,
  a partly used GPU before a free one.
* ``Fragmentation``: fragmentation gradient descent (Weng et al., "Beware of
  Fragmentation", USENIX ATC'23; the definitions are the paper's, the code is ours):

  (F1) ``F_n(m) = S_n`` when ``m`` cannot run on ``n`` (its GPU type may not run it, its
  host CPU or memory is short, no GPU with ``D_m`` free for a share; for a whole-GPU class
  of ``D_m = 1000 g_m``, fewer than ``g_m`` free GPUs, or with ``by_total`` the paper's
  aggregate test ``S_n < D_m``); otherwise ``sum_g R_g [R_g < min(D_m, 1000)]``, the free
  GPU capacity no task of class ``m`` can use.
  (F2) ``F_n = sum_m p_m F_n(m)`` (``Measure``).
  (F3) the replica goes where ``F_n`` grows least; with ``fuller_first``, ties go to the
  node left with the least free GPU capacity.
  (F4) with a ``lean`` w: the score is ``F_n(after) - F_n(before) - w * S_n(after)``, a
  lean towards the node left with more free GPU capacity (``placement.construct.fgd`` online).

  Two mixes: ``Measure.of_replicas`` (the heuristic ``fgd``: classes by GPUs or share
  only, weighted per GPU type by the requested replicas that may run on it, free GPUs
  counted) and ``Measure.of_tasks`` (``placement.construct.fgd``: classes with host resources and
  allowed types, each weighted by its share of all tasks, the paper's "target workload",
  and its aggregate test ``by_total``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from placement.core.budgets import FULL_GPU_MILLI
from placement.core.domain import GpuType, Workload

UNTRACKED = 1 << 60  # free host CPU or memory of a node that does not track it

# (GPU count, free GPUs, sorted (free milli, free milli-GiB) of each partly used GPU, free CPU, free MiB)
Sig = tuple[int, int, tuple[tuple[int, int], ...], int, int]
# where on a signature a replica goes: an index into sig[2] (a partly used GPU), NEW_GPU (a
# fractional replica on a free GPU) or None (a whole-GPU replica on free GPUs)
Option = int | None
NEW_GPU = -1
# a task class: (GPUs, share milli, CPU milli, host MiB, allowed GPU types)
ClassKey = tuple[int, int, int, int, tuple[str, ...]]


def s_free(sig: Sig) -> int:
    """``S_n``: the free GPU thousandths of a signature."""
    return sig[1] * FULL_GPU_MILLI + sum(p[0] for p in sig[2])


class Policy:
    """How the loop scores where one more replica goes; the least score is best.

    ``score(tname, before, after, option, free_milli)``: the replica moves a node of GPU
    type ``tname`` from signature ``before`` to ``after`` through ``option``
    (``free_milli``: what the partly used GPU had free, for a shared option); the loop
    breaks ties by fleet order. With ``first_fit`` the loop takes the first option that
    resolves, in fleet order, and looks at one partly used GPU per signature at most.
    """

    name = ""
    first_fit = False
    reads_host = False  # signatures carry free host CPU and memory

    def score(
        self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int
    ) -> tuple[float, ...]:
        raise NotImplementedError


class FirstFit(Policy):
    name = "first_fit"
    first_fit = True

    def score(
        self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int
    ) -> tuple[float, ...]:
        return (1.0 if option == NEW_GPU else 0.0,)


class BestFit(Policy):
    name = "best_fit"

    def score(
        self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int
    ) -> tuple[float, ...]:
        count, free, partial = after[0], after[1], after[2]
        used_after = (count - free) * FULL_GPU_MILLI - sum(p[0] for p in partial)
        if option is None:
            return (-(used_after / count),)
        return (-(used_after / count) + (1e-3 if option == NEW_GPU else free_milli * 1e-6),)


@dataclass(frozen=True)
class TaskClass:
    gpus: int  # whole GPUs (g_m); 0 for a share
    milli: int  # the share D_m; 0 for whole GPUs
    cpu_milli: int
    host_memory_mib: int
    weight: float  # p_m


class Measure:
    """The expected fragmentation (F1, F2) of a node signature, for one task mix per GPU type."""

    def __init__(self, classes: dict[str, list[TaskClass]], by_total: bool = False) -> None:
        self.classes = classes
        self.by_total = by_total  # a whole-GPU class runs where S_n >= D_m (else: g_m free GPUs)
        self.reads_host = any(c.cpu_milli or c.host_memory_mib for cs in classes.values() for c in cs)
        self._cpu_th = sorted({c.cpu_milli for cs in classes.values() for c in cs})
        self._mem_th = sorted({c.host_memory_mib for cs in classes.values() for c in cs})
        self._cache: dict[tuple[object, ...], float] = {}

    @classmethod
    def of_replicas(
        cls, workloads: Iterable[Workload], types_for: Callable[[Workload], Iterable[str]]
    ) -> Measure:
        """Classes by GPUs or share, each type's weighted by the requested replicas it may run."""
        counts: dict[str, Counter[tuple[str, int]]] = defaultdict(Counter)
        for w in workloads:
            key = ("f", w.gpu_milli) if w.is_fractional else ("w", w.gpus)
            for t in types_for(w):
                counts[t][key] += w.max_replicas
        out: dict[str, list[TaskClass]] = {}
        for t, c in counts.items():
            total = sum(c.values())
            out[t] = [
                TaskClass(0 if kind == "f" else size, size if kind == "f" else 0, 0, 0, n / total)
                for (kind, size), n in sorted(c.items())
            ]
        return cls(out)

    @classmethod
    def of_tasks(cls, types: dict[str, GpuType], counts: Counter[ClassKey]) -> Measure:
        """Classes with host resources and allowed types, each weighted by its share of every task."""
        total = sum(counts.values()) or 1
        out: dict[str, list[TaskClass]] = {t: [] for t in types}
        for (gpus, milli, cpu, mem, allowed), n in sorted(counts.items()):
            c = TaskClass(gpus, milli, cpu, mem, n / total)
            for t, g in types.items():
                if (allowed and t not in allowed) or (gpus == 0 and not g.shareable):
                    continue
                out[t].append(c)
        return cls(out, by_total=True)

    def node(self, tname: str, sig: Sig) -> float:
        """``F_n`` (F2) of a node of GPU type ``tname`` with signature ``sig``."""
        _count, free, partial, cpu, mem = sig
        millis = tuple([p[0] for p in partial])  # ascending
        if self.reads_host:  # F reads host resources through the classes' thresholds only
            key: tuple[object, ...] = (
                tname,
                free,
                millis,
                bisect_right(self._cpu_th, cpu),
                bisect_right(self._mem_th, mem),
            )
        else:
            key = (tname, free, millis)
        got = self._cache.get(key)
        if got is None:
            part = sum(millis)
            s = free * FULL_GPU_MILLI + part
            top = FULL_GPU_MILLI if free else (millis[-1] if millis else 0)
            got = 0.0
            for c in self.classes.get(tname, ()):
                if c.gpus:
                    runs = s >= c.gpus * FULL_GPU_MILLI if self.by_total else free >= c.gpus
                    value = part if runs else s
                else:
                    runs = top >= c.milli
                    value = sum(r for r in millis if r < c.milli) if runs else s
                if runs and (c.cpu_milli > cpu or c.host_memory_mib > mem):
                    value = s  # (F1) the host cannot run it
                got += c.weight * value
            self._cache[key] = got
        return got

    def fleet(self, sigs: Iterable[tuple[str, Sig]]) -> float:
        """The fleet's fragmentation: ``F_n`` summed over nodes (type, signature)."""
        return sum(self.node(t, sig) for t, sig in sigs)


class Fragmentation(Policy):
    """FGD (F1-F4) with a given ``Measure``; see the module docstring."""

    name = "fgd"

    def __init__(self, measure: Measure, lean: float = 0.0, fuller_first: bool = False) -> None:
        self.measure = measure
        self.lean = lean
        self.fuller_first = fuller_first
        self.reads_host = measure.reads_host
        self._before: tuple[str, Sig] | None = None
        self._f_before = 0.0

    def score(
        self, tname: str, before: Sig, after: Sig, option: Option, free_milli: int
    ) -> tuple[float, ...]:
        key = (tname, before)
        if key != self._before:  # the loop scores every option of one node in a row
            self._before, self._f_before = key, self.measure.node(tname, before)
        delta = self.measure.node(tname, after) - self._f_before
        if not self.fuller_first:
            return (delta,)
        s_after = s_free(after)
        return (delta - self.lean * s_after, float(s_after))
