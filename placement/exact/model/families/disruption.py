"""C14 disruption budgets and C15 upward-only preemption (issue 15, items 2-3), over k[w, n].

Moves off a node are ``cur_{w,n} - k[w,n]``; those off the nodes ``state.forced_nodes`` names
(and off nodes that are no candidate: no k there) are forced and outside every budget. With F(w)
the forced nodes of w and R the running workloads (current replicas, not pinned):

C14a  sum_{w in R, n not in F(w)} (cur_{w,n} - k[w,n]) <= max_moves
C14b  the same over the nodes of each site s <= max_moves_per_site
C14c  the same over the nodes of each power domain d <= max_moves_per_power_domain
C14d  sum_{n not in F(w)} (cur_{w,n} - k[w,n]) <= max_unavailable(w)   for each w in R
C15   z[w] = 1 for w in R with no forced node where no workload of higher priority has a
      candidate in the power domains of w's current nodes (nothing may take its place)

C15 is a restriction where a higher-priority workload could take the place: the model may then
leave w out, and a plan that does so without an evictor breaks the verifier's ``preemption``
rule and is not taken (the plan in hand stands).
"""

from __future__ import annotations

from collections import defaultdict

from placement.core.state import forced_nodes, workload_short
from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Sense


class Disruption:
    name = "disruption"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        wl = p.problem.workloads
        if not any(w.running for w in wl):
            return None
        opts = p.problem.options
        forced = forced_nodes(p)
        ip = c.program
        total: dict[int, int] = {}
        total_cur = 0
        site: dict[str, tuple[dict[int, int], list[int]]] = defaultdict(lambda: ({}, [0]))
        dom: dict[tuple[str, str], tuple[dict[int, int], list[int]]] = defaultdict(lambda: ({}, [0]))
        mine: dict[int, tuple[dict[int, int], list[int]]] = defaultdict(lambda: ({}, [0]))
        for w, wk in enumerate(wl):
            if not wk.running:
                continue
            for n in {p.node_index[cr.node] for cr in wk.current if cr.node in p.node_index}:
                if n in forced.get(w, ()):
                    continue
                cur = p.current.get((w, n), 0)
                kv = c.k.get((w, n))
                info = p.nodes[n]
                for terms, rhs in (site[info.site.name], dom[info.domain_key], mine[w]):
                    rhs[0] += cur
                    if kv is not None:
                        terms[kv] = 1
                total_cur += cur
                if kv is not None:
                    total[kv] = 1
        # moves <= B  <=>  sum k >= sum cur - B
        if opts.max_moves is not None:
            ip.add("C14a max_moves", total, Sense.GE, total_cur - opts.max_moves)
        if opts.max_moves_per_site is not None:
            for s, (terms, cur_s) in sorted(site.items()):
                ip.add(f"C14b max_moves[{s}]", terms, Sense.GE, cur_s[0] - opts.max_moves_per_site)
        if opts.max_moves_per_power_domain is not None:
            for (s, d), (terms, cur_d) in sorted(dom.items()):
                ip.add(
                    f"C14c max_moves[{s}/{d}]", terms, Sense.GE, cur_d[0] - opts.max_moves_per_power_domain
                )
        for w, (terms, cur_w) in sorted(mine.items()):
            limit = wl[w].max_unavailable
            if limit is not None:
                ip.add(f"C14d max_unavailable[{wl[w].name}]", terms, Sense.GE, cur_w[0] - limit)
        # C15: nothing of higher priority can take a running workload's place: it stays
        cand_domains: dict[int, set[tuple[str, str]]] = {}
        for v, vopts in p.options.items():
            cand_domains[v] = {
                p.nodes[n].domain_key for o in vopts for f in o.fits for n in p.groups[f.group].nodes
            }
        for w, z in sorted(c.z.items()):
            wk = wl[w]
            if not wk.protected(opts) or forced.get(w):
                continue
            here = [p.node_index[cr.node] for cr in wk.current if cr.node in p.node_index]
            if workload_short(p, wk, here) is not None:  # it cannot stay as it runs: the input decides
                continue
            mine_d = {
                p.nodes[p.node_index[cr.node]].domain_key for cr in wk.current if cr.node in p.node_index
            }
            if not any(
                wl[v].priority > wk.priority and cand_domains[v] & mine_d for v in cand_domains if v != w
            ):
                ip.add(f"C15 keep_running[{wk.name}]", {z: 1}, Sense.GE, 1)
        return None
