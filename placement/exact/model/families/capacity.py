"""C3-C5 and the on/off link of C7: GPU count and shares, shared-GPU memory, host resources.

GPUs that pinned fractional replicas share take more fractional replicas (``v``) up to what
the pinned ones leave of their 1000 milli and memory (C3', C4').
"""

from __future__ import annotations

from placement.core.domain import memory_milli_gib
from placement.exact.model.container import Container, ObjectiveTerms
from placement.exact.model.ir import Sense


class Capacity:
    name = "capacity"
    tier = "hard"

    def add(self, c: Container) -> ObjectiveTerms | None:
        p = c.prepared
        ip = c.program
        wl = p.problem.workloads
        for n in c.candidate_nodes():
            info = p.nodes[n]
            node = info.node
            o = c.o[n]
            # C4: whole GPUs + shared GPUs <= gpu_count * o[n] (also: any use powers the node on)
            terms = c.gpu_terms(n)
            terms[o] = -c.free_gpu_count(n)  # GPUs pinned replicas hold are not the model's
            ip.add(f"C4 gpu_count[{node.name}]", terms, Sense.LE, 0)
            # C7 (rule 7: an empty node is off): o[n] <= total replicas on n (pinned ones hold it on)
            on: dict[int, int] = {o: 1}
            for cand in c.cands_on[n]:
                for v in c.replicas_on(cand.workload, n):
                    on[v] = on.get(v, 0) - 1
            if n not in c.pinned_used:
                ip.add(f"C7 node_on[{node.name}]", on, Sense.LE, 0)
            # C3 / C4 per shared slot: milli <= 1000 s, memory <= gpu memory, s exact, symmetry
            cap_mem = memory_milli_gib(info.gpu.memory_gib)
            for j in range(c.slots.get(n, 0)):
                s = c.s[(n, j)]
                pairs = c.shared_slot_terms(n, j)
                milli = {v: wl[w].gpu_milli for w, v in pairs}
                milli[s] = -1000
                ip.add(f"C4 gpu_share[{node.name},{j}]", milli, Sense.LE, 0)
                mem = {v: memory_milli_gib(wl[w].memory_gib) for w, v in pairs}
                if any(mem.values()):
                    ip.add(f"C3 gpu_memory[{node.name},{j}]", mem, Sense.LE, cap_mem)
                used = {v: -1 for _, v in pairs}
                used[s] = 1
                ip.add(f"C4 shared_in_use[{node.name},{j}]", used, Sense.LE, 0)
                if j > 0:
                    ip.add(
                        f"C4 slot_order[{node.name},{j}]", {c.s[(n, j)]: 1, c.s[(n, j - 1)]: -1}, Sense.LE, 0
                    )
            # C3 / C4 on each GPU pinned fractional replicas share: what their milli and memory leave
            for j, (used_milli, used_mem) in sorted(c.pinned_share_use.get(n, {}).items()):
                pairs = c.beside_pinned_terms(n, j)
                if not pairs:
                    continue
                milli = {v: wl[w].gpu_milli for w, v in pairs}
                if sum(k * ip.upper[v] for v, k in milli.items()) > 1000 - used_milli:
                    ip.add(f"C4 gpu_share[{node.name},gpu{j}]", milli, Sense.LE, 1000 - used_milli)
                mem = {v: memory_milli_gib(wl[w].memory_gib) for w, v in pairs}
                if sum(k * ip.upper[v] for v, k in mem.items()) > cap_mem - used_mem:
                    ip.add(f"C3 gpu_memory[{node.name},gpu{j}]", mem, Sense.LE, cap_mem - used_mem)
            # C5: host resources where tracked
            for field, node_cap, pinned in (
                ("cpu_milli", node.cpu_milli, c.pinned_cpu.get(n, 0)),
                ("host_memory_mib", node.host_memory_mib, c.pinned_hmem.get(n, 0)),
            ):
                if node_cap <= 0:
                    continue
                node_cap -= pinned
                host: dict[int, int] = {}
                for cand in c.cands_on[n]:
                    req = getattr(wl[cand.workload], field)
                    if req > 0:
                        for v in c.replicas_on(cand.workload, n):
                            host[v] = req
                if host and sum(host[v] * ip.upper[v] for v in host) > node_cap:
                    ip.add(f"C5 {field}[{node.name}]", host, Sense.LE, node_cap)
        return None
