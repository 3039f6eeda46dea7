"""The GPU catalog: current data-centre GPU types as domain ``GpuType`` objects.

Figures
-------
Memory and maximum board power come from ``shared/datasets/gpu-catalog/gpu_catalog_sourced.csv``
(compiled from vendor documents and MLPerf system files; the quote and URL of each figure are
in that file). They are copied here as constants: the product never reads ``shared/`` at run time.

=========  ==========================  ========  =======  ==================================================
name       part                        memory    max W    source of memory / power (as cited in the CSV)
=========  ==========================  ========  =======  ==================================================
H100       H100 SXM5 80GB HBM3         80 GiB    700      gpu.blog/gpus/nvidia-h100-sxm ("Up to 700W")
H200       H200 SXM5 141GB HBM3e       141 GiB   700      NVIDIA MLPerf v4.1 H200-SXM-141GBx8_TRT_MaxQ.json
B200       B200 HGX/DGX SXM 180GB      180 GiB   1000     DGX B200 user guide (1,440 GB / 8); HGX TDP 1000 W
GB200      GB200 NVL72, per GPU        186 GiB   1200     MLPerf v6.1 Crusoe GB200-NVL72 system file; 1200 W
MI300X     MI300X OAM 192GB HBM3       192 GiB   750      AMD MLPerf v4.1 "MI300X-NPS1-SPX-192GB-750W"
MI325X     MI325X OAM 256GB HBM3E      256 GiB   1000     ROCm gpu-specs (256 GiB); ~1000 W (secondary)
A100       A100 SXM4 80GB HBM2e        80 GiB    400      glennklockwood.com/garden/processors/A100
L40S       L40S PCIe 48GB GDDR6        48 GiB    350      vendor spec sheets ("350W (L40S)")
L4         L4 PCIe 24GB GDDR6          24 GiB    72       "a low-power 72 W GPU"
=========  ==========================  ========  =======  ==================================================

Memory in GiB: vendors quote "GB", but GPU memory is built from power-of-two dies and
stacks, and the figures are binary capacities (80 GB = 5 x 16 GiB HBM3 stacks; AMD's ROCm
gpu-specs list the MI300X as 192 GiB and the MI325X as 256 GiB; nvidia-smi reports an
H200 as 143,771 MiB = 140.4 GiB). We therefore take the vendor's GB figure as GiB (1 GB
quoted = 1 GiB). The driver reserves a little (about 0.5 GiB); a workload's ``memory_gib``
should include its own headroom.

Minimum power cap
-----------------
* H100, H200, B200, GB200: 200 W, the ``AllowableMin`` of the GPU power limit in NVIDIA's
  DGX H100/H200 and DGX B200 user guides (Redfish power-capping example,
  docs.nvidia.com/dgx/dgxb200-user-guide/power-capping.html).
* A100: 100 W, the nvidia-smi minimum power limit of the A100 SXM4 (assumption: commonly
  reported, not found in a vendor document here).
* Others (MI300X, MI325X, L40S, L4): no published minimum found; assumed 40% of the board
  maximum (conservative: boards usually accept lower caps).

Idle power (draw of an unused GPU in a powered node)
---------------------------------------------------
* A100: 60 W, measured: the lowest percentiles of single-A100 power in the AcmeTrace
  production clusters are 58-60 W (``shared/datasets/acmetrace-power/gpu_power_*_cdf.csv``,
  InternLM/AcmeTrace, NSDI'24, CC-BY-4.0).
* H100: 65 W, the idle ``Reading`` of 64.4 W in NVIDIA's DGX Redfish power-limit example.
* L4: 16 W (assumption: the idle draw commonly reported by nvidia-smi for an L4).
* Others: assumed 10% of the board maximum (H200 70, B200 100, GB200 120, MI300X 75,
  MI325X 100, L40S 35).

Power levels and throughput (an assumption, stated)
---------------------------------------------------
Each type offers three caps: 60%, 80% and 100% of the board maximum (rounded to 5 W, or to
1 W for boards under 200 W; never below the minimum cap). The throughput kept at a cap follows a square-root model near the
top of the power curve, ``relative_throughput_pct = round(100 * sqrt(cap / max))``:
60% -> 77%, 80% -> 89%, 100% -> 100%. Inference is largely memory-bandwidth bound, so it
loses less than compute-bound training, for which public reports put the loss of an H100
capped at 600 W (86%) at 10-15% (factryze.ai scale-atlas, "Power capping"); the square
root gives 7% there. The model is a planning assumption; replace it with measured curves
per type where available.

Sharing
-------
``shareable`` is True for the types with MIG partitioning (A100, H100, H200, B200, GB200)
and for L4 and L40S, which are shared by time-slicing in practice (no memory isolation,
but the placement model enforces the memory sum per GPU itself). The AMD MI300X/MI325X
are False: their compute partitioning (CPX/NPS modes) is a node-level mode, not a
per-tenant share, so we do not place fractional replicas on them.
"""

from __future__ import annotations

import math

from placement.core.domain import GpuType, PowerLevel

H100 = "H100"
H200 = "H200"
B200 = "B200"
GB200 = "GB200"
MI300X = "MI300X"
MI325X = "MI325X"
A100 = "A100"
L40S = "L40S"
L4 = "L4"

LEVEL_FRACTIONS: tuple[float, ...] = (0.6, 0.8, 1.0)


def throughput_pct(cap_w: int, max_w: int) -> int:
    """Throughput kept at a power cap (percent of uncapped): the square-root model above."""
    return max(1, min(100, round(100.0 * math.sqrt(cap_w / max_w))))


def power_levels(
    max_w: int, min_cap_w: int, fractions: tuple[float, ...] = LEVEL_FRACTIONS
) -> tuple[PowerLevel, ...]:
    """Caps at ``fractions`` of ``max_w`` (5 W steps, at least ``min_cap_w``), ascending and distinct."""
    caps: list[int] = []
    for f in fractions:
        step = 5 if max_w >= 200 else 1
        cap = max_w if f >= 1.0 else max(min_cap_w, round(max_w * f / step) * step)
        if not caps or cap > caps[-1]:
            caps.append(cap)
    if caps[-1] != max_w:
        caps.append(max_w)
    return tuple(PowerLevel(power_cap_w=c, relative_throughput_pct=throughput_pct(c, max_w)) for c in caps)


def make_gpu_type(
    name: str,
    memory_gib: float,
    max_power_w: int,
    min_power_cap_w: int,
    idle_power_w: int,
    shareable: bool,
) -> GpuType:
    return GpuType(
        name=name,
        memory_gib=memory_gib,
        max_power_w=max_power_w,
        min_power_cap_w=min_power_cap_w,
        idle_power_w=idle_power_w,
        power_levels=power_levels(max_power_w, min_power_cap_w),
        shareable=shareable,
    )


def _pct(max_w: int, pct: int) -> int:
    return round(max_w * pct / 100.0)


CATALOG: tuple[GpuType, ...] = (
    make_gpu_type(H100, 80.0, 700, 200, 65, True),
    make_gpu_type(H200, 141.0, 700, 200, 70, True),
    make_gpu_type(B200, 180.0, 1000, 200, 100, True),
    make_gpu_type(GB200, 186.0, 1200, 200, 120, True),
    make_gpu_type(MI300X, 192.0, 750, _pct(750, 40), 75, False),
    make_gpu_type(MI325X, 256.0, 1000, _pct(1000, 40), 100, False),
    make_gpu_type(A100, 80.0, 400, 100, 60, True),
    make_gpu_type(L40S, 48.0, 350, _pct(350, 40), 35, True),
    make_gpu_type(L4, 24.0, 72, _pct(72, 40), 16, True),
)

_BY_NAME = {g.name: g for g in CATALOG}


def gpu_type(name: str) -> GpuType:
    """The catalog entry called ``name`` (KeyError if unknown)."""
    return _BY_NAME[name]


# --------------------------------------------------------------------------- host power
# Non-GPU draw of an 8-GPU server at full load, from shared/datasets/gpu-catalog/
# node_power_sourced.csv (system maximum minus 8 x GPU board power):
#   DGX A100   6,500 - 3,200 = 3,300 W   (NVIDIA DGX A100 docs, via pcnews.ru)
#   DGX H100/H200 10,200 - 5,600 = 4,600 W  (NVIDIA DGX H100 user guide figure)
#   DGX B200  14,300 - 8,000 = 6,300 W   (docs.nvidia.com/dgx/dgxb200-user-guide)
#   GB200 NVL72 ~120 kW - 72 x 1,200 W = ~33.6 kW per 72 GPUs = ~467 W per GPU (Grace CPUs,
#     NVLink switches; secondary sources, low-medium confidence)
# Assumptions where no system figure exists: MI300X/MI325X 8-GPU OAM servers as DGX H100
# (4,600 W: two CPUs, eight NICs, switches); L40S/L4 PCIe servers: two AMD Genoa CPUs
# (2 x 290 W) + 2U fans (112.5 W) + NIC (19 W) + misc (35 W) ~ 750 W, from the GreenSKU
# component table (shared/datasets/datacenter-power-params/README.md, CC-BY-4.0).
HOST_POWER_8GPU_W: dict[str, int] = {
    H100: 4600,
    H200: 4600,
    B200: 6300,
    GB200: 3736,  # 8 x 467 W
    MI300X: 4600,
    MI325X: 4600,
    A100: 3300,
    L40S: 750,
    L4: 750,
}


def host_power_w(gpu_type_name: str, gpu_count: int) -> int:
    """Host (non-GPU) draw of a node with ``gpu_count`` GPUs.

    GB200 scales per GPU (compute trays share nothing but the rack). Other types: a fixed
    30% of the 8-GPU figure (CPUs, fans, board) plus 70% scaled by GPUs (NICs, switches,
    per-GPU cooling): ``round(h8 * (0.3 + 0.7 * gpu_count / 8))``; an assumption.
    """
    h8 = HOST_POWER_8GPU_W[gpu_type_name]
    if gpu_type_name == GB200:
        return round(h8 * gpu_count / 8)
    return round(h8 * (0.3 + 0.7 * gpu_count / 8))
