"""The placement formulation: integer counts of identical replicas, not one binary per replica.

One binary per (replica, node) does not scale (2,000 replicas on 300 nodes: no feasible
plan in 30 s in any solver), so replicas of one workload are aggregated: the model
decides how many replicas of workload w run on node n at power level l. GPU indices
are chosen afterwards (``placement.exact.decode``). The builder reads prepared data only
(``placement.core.candidates.Prepared``) and does no cleaning.

Sets
----
W            workloads with at least one candidate (placeable after the filter)
N            nodes that are a candidate of some workload
C(w)         candidate nodes of w;  L(w, n) allowed power levels of w on n (whole GPU)
J(n)         shared-GPU slots of n: min(free GPUs, slots the fractional candidates could fill)
Q(n)         GPUs of n that pinned fractional replicas share (pinned milli pm_{n,q}, memory pmem_{n,q})
D, S         power domains and sites; N(d), N(s) their nodes
E(w)         entities of w's spread level (site, power domain or node) holding a candidate

Data
----
g_w                GPUs per replica (whole) or m_w = gpu_milli (fractional)
mem_w              memory per replica, MEM_n GPU memory: whole milli-GiB (``domain.memory_milli_gib``)
G_n                gpu_count;  P^on_n = host_power_w + G_n * idle_power_w
cap_l              power cap of level l;  idle_n, max_n idle and maximum GPU power
U_d, U_s           usable power (redundancy applied) of domain d and site s
cpu_w, hm_w        host requests;  CPU_n, HM_n host capacity (0: not tracked)
min_w, max_w       replica bounds;  md_w spread min_distinct;  S_w survivors_required
kn_w, kd_w         blast radius: max_per_node, max_per_power_domain (0: no limit)
cur_{w,n}          current replicas of w on n
work_{w,l}         priority * work_milli * relative_throughput_pct(l) (fractional: top level)
coef_s             energy_coefficient(s, metric)

Variables
---------
y[w,n,l] in 0..floor(G_n / g_w) (tightened by host and power)   whole-GPU replicas at level l
u[w,n,j] in 0..floor(1000 / m_w) (and memory)                    fractional replicas on slot j
v[w,n,q] in 0..floor((1000 - pm_{n,q}) / m_w) (and memory)       fractional replicas beside pinned ones on GPU q
s[n,j]   binary  slot j of n is a shared GPU in use (uncapped)
o[n]     binary  node n is powered (hosts at least one replica)
z[w]     binary  workload w is placed
a[w,e]   binary  w has a replica in spread entity e
k[w,n]   in 0..cur_{w,n}  current replicas of w kept on n

r_{w,n} = sum_l y[w,n,l] + sum_j u[w,n,j] + sum_q v[w,n,q];   r_w = sum_n r_{w,n}
P_n = P^on_n o[n] + sum_{w,l} g_w (cap_l - idle_n) y[w,n,l] + (max_n - idle_n) sum_j s[n,j]   (rule 7)

Constraints (numbers match the rules of docs/ARCHITECTURE.md where they coincide)
-------------------------------------------------------------------------------
C1, C2 (node state, GPU type), C6 (power-cap floor), C8 (latency), C9 (backup):
        by the candidate filter; no variable exists outside the candidates.
C3      sum_w mem_w u[w,n,j] <= MEM_n                      per shared slot
        sum_w mem_w v[w,n,q] <= MEM_n - pmem_{n,q}          per GPU pinned shares hold (C3')
        (whole GPU: mem_w / g_w <= GPU memory, by the filter)
C4      sum_{w,l} g_w y[w,n,l] + sum_j s[n,j] <= G_n o[n]   whole + shared GPUs; use powers n on
        sum_w m_w u[w,n,j] <= 1000 s[n,j];  s[n,j] <= sum_w u[w,n,j];  s[n,j] >= s[n,j+1]
        sum_w m_w v[w,n,q] <= 1000 - pm_{n,q}               (C4'; the GPU is on and shared already)
C5      sum_w cpu_w r_{w,n} <= CPU_n,  sum_w hm_w r_{w,n} <= HM_n   where tracked
C7      sum_{n in N(d)} P_n <= U_d  for every d;  sum_{n in N(s)} P_n <= U_s  for every s
        o[n] <= sum_w r_{w,n}   (an empty node is off; with C4, o[n] = 1 exactly when n hosts)
C10     min_w z[w] <= r_w <= max_w z[w]
C11     a[w,e] <= sum_{n in e} r_{w,n};  sum_e a[w,e] >= md_w z[w]
C12     r_w - sum_{n in s} r_{w,n} >= S_w z[w]   for every site s holding a candidate of w
C13     k[w,n] <= r_{w,n}
C14     disruption budgets on the unforced moves cur_{w,n} - k[w,n]: in total, per site, per
        power domain, per workload (``families/disruption.py``)
C15     z[w] = 1 for a running workload nothing of higher priority could evict (same module)
C16     r_{w,n} <= kn_w for every n;  sum_{n in N(d)} r_{w,n} <= kd_w for every d   where set
        (``families/blast.py``; the filter caps each node's count at min(max_w, kn_w, kd_w) too)

Objectives (lexicographic, ``IntegerProgram.objectives`` in this order)
-----------------------------------------------------------------------
T1 placed_work   max  sum work_{w,l} y[w,n,l] + sum work_{w,top} (u[w,n,j] + v[w,n,q])
T2 energy        min  sum_s coef_s sum_{n in N(s)} P_n
T3 moves         min  sum_w move_cost_w (|current(w)| - sum_n k[w,n])
   (with running workloads T3 comes before T2: ``registry.tiers_for``)
T4 fragmentation min  sum_n o[n] + sum_{n,j} s[n,j]

Notes
-----
* Upper bounds are tightened from the data: y[w,n,l] <= what the node's GPUs, host
  resources and its domain/site caps allow with the node alone; u by milli, memory
  and host resources. C5 and C7 rows that can never bind at those bounds are omitted.
* Shared slots are symmetric GPUs; decoding maps them to real indices (a fractional
  replica's current GPU where free). Memory is compared in whole milli-GiB, the unit the
  verifier reads rule 3 in (``domain.memory_milli_gib``), so the model is exactly rule 3.
* The model admits every valid plan (every bound and row above is implied by the rules, and
  J(n) slots hold the shared replicas of any plan: each workload's own replicas on n fit
  ceil(r_{w,n} / per-GPU count) GPUs), so a tier the solver proves optimal is optimal for
  the problem (``solve.claim``). The exact oracle (``tests/test_mip_oracle.py``) checks it.
* k[w,n] is pushed up only by T3; ``Container.tighten`` sets it to min(cur, r) so the
  value held after each tier is the exact number of moves.

* Pinned workloads (``Workload.pinned``, ``placement.core.pinned``) get no variables: their
  GPUs are taken out of C4 and of the shared slots, their nodes have o[n] = 1 (C7's
  node_on row is dropped for them), their draw comes off the C7 right-hand sides, and
  their work, energy and fragmentation are objective constants (they are never moves).
  A GPU pinned fractional replicas share takes more fractional replicas up to what they
  leave (v, C3', C4'): it is powered and counted as shared already, so v adds no draw.

Each tier's value equals ``placement.core.objective.evaluate`` of the decoded plan to the
unit (same helpers from ``placement.core.energy``). Every family lives in
``placement.exact.model.families`` and is listed, in order, in ``placement.exact.model.registry``.

Where the model is not built
----------------------------
The per-node model above is exact and is what small and medium instances get (the
brute-force oracle checks it). Past ``solve.MODEL_MAX_VARS`` estimated variables, or when
its estimated build time does not fit the time box, it is not built; the plan then comes
from the methods that every solve runs anyway (``placement.run.methods``, scheduled by
``placement.run.solve`` and ``placement.run.portfolio``): the greedy over node groups
(``placement.construct.greedy``), the heuristics (``placement.construct.heuristics``), the
LP-guided plan (``placement.construct.guided``) and the polish (``placement.improve.polish``),
all through ``placement.core.state.FleetState``, with bounds from ``placement.bounds``. The
candidate filter (``placement.core.candidates``) works over groups of alike nodes in (site,
GPU type) cells, so its cost grows with workloads x cells, not x nodes; per-node candidates
and rejections are expanded only on demand (this model, ``explain``).

There is no aggregated integer model over node groups: its LP relaxation is the node-group
LP (``placement.bounds.bound.group_lp``), which gives the bound and which the LP-guided
greedy rounds.
"""

from __future__ import annotations

import logging

from placement.core.candidates import Prepared
from placement.exact.model.container import Container, ObjectiveTerms, add_terms
from placement.exact.model.ir import Direction, IntegerProgram
from placement.exact.model.registry import FAMILIES, tiers_for

log = logging.getLogger(__name__)

__all__ = ["Container", "build"]


def build(prepared: Prepared) -> Container:
    """Create the variables and add every family; ``container.program.objectives`` follow
    ``registry.tiers_for`` (moves above energy when current replicas run)."""
    c = Container.create(prepared)
    shares: dict[str, ObjectiveTerms] = {}
    for fam in FAMILIES:
        got = fam.add(c)
        if got is None:
            continue
        prev = shares.get(got.tier)
        if prev is None:
            shares[got.tier] = got
        else:
            terms = add_terms(dict(prev.terms), got.terms)
            shares[got.tier] = ObjectiveTerms(got.tier, got.direction, terms, prev.constant + got.constant)
    ip: IntegerProgram = c.program
    for tier in tiers_for(prepared.problem):
        share = shares.get(tier)
        if share is None:
            direction = Direction.MAXIMIZE if tier == "placed_work" else Direction.MINIMIZE
            share = ObjectiveTerms(tier, direction, {})
        ip.add_objective(tier, share.direction, share.terms, share.constant)
    log.debug("model: %d variables, %d constraints", ip.num_vars, len(ip.constraints))
    return c
