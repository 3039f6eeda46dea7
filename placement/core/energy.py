"""Shared power and energy arithmetic, so that model, budgets and verifier agree exactly.

Tier 2 of the objective is an integer: facility energy of the plan in
nano-currency per hour (COST) or micrograms of CO2 per hour (CARBON). Each site
contributes ``coefficient(site) * it_w(site)``, where the coefficient is rounded to
a whole number of units per IT watt:

    COST:   round(energy_price_per_kwh * pue * 1e6)   [n$/h per W]
    CARBON: round(carbon_g_per_kwh * pue * 1e3)        [ug/h per W]
"""

from __future__ import annotations

from placement.core.domain import EnergyMetric, GpuType, Site, Workload


def energy_coefficient(site: Site, metric: EnergyMetric) -> int:
    if metric is EnergyMetric.CARBON:
        return round(site.carbon_g_per_kwh * site.pue * 1e3)
    return round(site.energy_price_per_kwh * site.pue * 1e6)


def node_on_power_w(host_power_w: int, gpu_count: int, gpu: GpuType) -> int:
    """IT draw of a powered node whose GPUs are all idle."""
    return host_power_w + gpu_count * gpu.idle_power_w


def shared_gpu_power_w(gpu: GpuType) -> int:
    """A GPU shared by fractional replicas is budgeted uncapped: its tenants cannot agree on one cap."""
    return gpu.max_power_w


def allowed_levels(workload: Workload, gpu: GpuType) -> list[int]:
    """Indices into gpu.power_levels that the workload accepts (ascending power)."""
    floor_w = workload.min_power_cap_pct * gpu.max_power_w / 100.0
    return [i for i, lv in enumerate(gpu.power_levels) if lv.power_cap_w + 1e-9 >= floor_w]


def replica_work(workload: Workload, throughput_pct: int) -> int:
    """Tier-1 value of one placed replica."""
    return workload.priority * workload.work_milli * throughput_pct
