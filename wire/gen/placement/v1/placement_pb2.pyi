from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SiteKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SITE_KIND_UNSPECIFIED: _ClassVar[SiteKind]
    SITE_KIND_DATACENTER: _ClassVar[SiteKind]
    SITE_KIND_EDGE: _ClassVar[SiteKind]

class Redundancy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REDUNDANCY_UNSPECIFIED: _ClassVar[Redundancy]
    REDUNDANCY_N: _ClassVar[Redundancy]
    REDUNDANCY_N_PLUS_1: _ClassVar[Redundancy]
    REDUNDANCY_TWO_N: _ClassVar[Redundancy]

class NodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATE_UNSPECIFIED: _ClassVar[NodeState]
    NODE_STATE_READY: _ClassVar[NodeState]
    NODE_STATE_DRAINING: _ClassVar[NodeState]
    NODE_STATE_DOWN: _ClassVar[NodeState]

class SpreadLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPREAD_LEVEL_UNSPECIFIED: _ClassVar[SpreadLevel]
    SPREAD_LEVEL_SITE: _ClassVar[SpreadLevel]
    SPREAD_LEVEL_POWER_DOMAIN: _ClassVar[SpreadLevel]
    SPREAD_LEVEL_NODE: _ClassVar[SpreadLevel]

class EnergyMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENERGY_METRIC_UNSPECIFIED: _ClassVar[EnergyMetric]
    ENERGY_METRIC_COST: _ClassVar[EnergyMetric]
    ENERGY_METRIC_CARBON: _ClassVar[EnergyMetric]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_ORTOOLS: _ClassVar[Backend]
    BACKEND_PULP: _ClassVar[Backend]

class SolveStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOLVE_STATUS_UNSPECIFIED: _ClassVar[SolveStatus]
    SOLVE_STATUS_OPTIMAL: _ClassVar[SolveStatus]
    SOLVE_STATUS_FEASIBLE: _ClassVar[SolveStatus]
    SOLVE_STATUS_INFEASIBLE: _ClassVar[SolveStatus]
    SOLVE_STATUS_NO_SOLUTION: _ClassVar[SolveStatus]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_NONE: _ClassVar[StopReason]
    STOP_REASON_TIME_LIMIT: _ClassVar[StopReason]
    STOP_REASON_INTERRUPTED: _ClassVar[StopReason]
    STOP_REASON_WORK_LIMIT: _ClassVar[StopReason]

class StepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_KIND_UNSPECIFIED: _ClassVar[StepKind]
    STEP_KIND_START: _ClassVar[StepKind]
    STEP_KIND_WAIT_READY: _ClassVar[StepKind]
    STEP_KIND_STOP: _ClassVar[StepKind]
    STEP_KIND_SET_CAP: _ClassVar[StepKind]
SITE_KIND_UNSPECIFIED: SiteKind
SITE_KIND_DATACENTER: SiteKind
SITE_KIND_EDGE: SiteKind
REDUNDANCY_UNSPECIFIED: Redundancy
REDUNDANCY_N: Redundancy
REDUNDANCY_N_PLUS_1: Redundancy
REDUNDANCY_TWO_N: Redundancy
NODE_STATE_UNSPECIFIED: NodeState
NODE_STATE_READY: NodeState
NODE_STATE_DRAINING: NodeState
NODE_STATE_DOWN: NodeState
SPREAD_LEVEL_UNSPECIFIED: SpreadLevel
SPREAD_LEVEL_SITE: SpreadLevel
SPREAD_LEVEL_POWER_DOMAIN: SpreadLevel
SPREAD_LEVEL_NODE: SpreadLevel
ENERGY_METRIC_UNSPECIFIED: EnergyMetric
ENERGY_METRIC_COST: EnergyMetric
ENERGY_METRIC_CARBON: EnergyMetric
BACKEND_UNSPECIFIED: Backend
BACKEND_ORTOOLS: Backend
BACKEND_PULP: Backend
SOLVE_STATUS_UNSPECIFIED: SolveStatus
SOLVE_STATUS_OPTIMAL: SolveStatus
SOLVE_STATUS_FEASIBLE: SolveStatus
SOLVE_STATUS_INFEASIBLE: SolveStatus
SOLVE_STATUS_NO_SOLUTION: SolveStatus
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_NONE: StopReason
STOP_REASON_TIME_LIMIT: StopReason
STOP_REASON_INTERRUPTED: StopReason
STOP_REASON_WORK_LIMIT: StopReason
STEP_KIND_UNSPECIFIED: StepKind
STEP_KIND_START: StepKind
STEP_KIND_WAIT_READY: StepKind
STEP_KIND_STOP: StepKind
STEP_KIND_SET_CAP: StepKind

class PowerLevel(_message.Message):
    __slots__ = ("power_cap_w", "relative_throughput_pct")
    POWER_CAP_W_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_THROUGHPUT_PCT_FIELD_NUMBER: _ClassVar[int]
    power_cap_w: int
    relative_throughput_pct: int
    def __init__(self, power_cap_w: _Optional[int] = ..., relative_throughput_pct: _Optional[int] = ...) -> None: ...

class GpuType(_message.Message):
    __slots__ = ("name", "memory_gib", "max_power_w", "min_power_cap_w", "idle_power_w", "power_levels", "shareable")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GIB_FIELD_NUMBER: _ClassVar[int]
    MAX_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MIN_POWER_CAP_W_FIELD_NUMBER: _ClassVar[int]
    IDLE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    POWER_LEVELS_FIELD_NUMBER: _ClassVar[int]
    SHAREABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    memory_gib: float
    max_power_w: int
    min_power_cap_w: int
    idle_power_w: int
    power_levels: _containers.RepeatedCompositeFieldContainer[PowerLevel]
    shareable: bool
    def __init__(self, name: _Optional[str] = ..., memory_gib: _Optional[float] = ..., max_power_w: _Optional[int] = ..., min_power_cap_w: _Optional[int] = ..., idle_power_w: _Optional[int] = ..., power_levels: _Optional[_Iterable[_Union[PowerLevel, _Mapping]]] = ..., shareable: _Optional[bool] = ...) -> None: ...

class Site(_message.Message):
    __slots__ = ("name", "kind", "region", "capacity_kw", "pue", "redundancy", "modules", "battery_minutes", "has_generator", "energy_price_per_kwh", "carbon_g_per_kwh")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KW_FIELD_NUMBER: _ClassVar[int]
    PUE_FIELD_NUMBER: _ClassVar[int]
    REDUNDANCY_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    BATTERY_MINUTES_FIELD_NUMBER: _ClassVar[int]
    HAS_GENERATOR_FIELD_NUMBER: _ClassVar[int]
    ENERGY_PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    CARBON_G_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: SiteKind
    region: str
    capacity_kw: float
    pue: float
    redundancy: Redundancy
    modules: int
    battery_minutes: float
    has_generator: bool
    energy_price_per_kwh: float
    carbon_g_per_kwh: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[SiteKind, str]] = ..., region: _Optional[str] = ..., capacity_kw: _Optional[float] = ..., pue: _Optional[float] = ..., redundancy: _Optional[_Union[Redundancy, str]] = ..., modules: _Optional[int] = ..., battery_minutes: _Optional[float] = ..., has_generator: _Optional[bool] = ..., energy_price_per_kwh: _Optional[float] = ..., carbon_g_per_kwh: _Optional[float] = ...) -> None: ...

class PowerDomain(_message.Message):
    __slots__ = ("name", "site", "capacity_kw", "redundancy", "modules")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KW_FIELD_NUMBER: _ClassVar[int]
    REDUNDANCY_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    name: str
    site: str
    capacity_kw: float
    redundancy: Redundancy
    modules: int
    def __init__(self, name: _Optional[str] = ..., site: _Optional[str] = ..., capacity_kw: _Optional[float] = ..., redundancy: _Optional[_Union[Redundancy, str]] = ..., modules: _Optional[int] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("name", "site", "power_domain", "gpu_type", "gpu_count", "host_power_w", "state", "cpu_milli", "host_memory_mib")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    POWER_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    GPU_TYPE_FIELD_NUMBER: _ClassVar[int]
    GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    HOST_POWER_W_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    HOST_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    name: str
    site: str
    power_domain: str
    gpu_type: str
    gpu_count: int
    host_power_w: int
    state: NodeState
    cpu_milli: int
    host_memory_mib: int
    def __init__(self, name: _Optional[str] = ..., site: _Optional[str] = ..., power_domain: _Optional[str] = ..., gpu_type: _Optional[str] = ..., gpu_count: _Optional[int] = ..., host_power_w: _Optional[int] = ..., state: _Optional[_Union[NodeState, str]] = ..., cpu_milli: _Optional[int] = ..., host_memory_mib: _Optional[int] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("a", "b", "latency_ms")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    latency_ms: float
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class Fleet(_message.Message):
    __slots__ = ("gpu_types", "sites", "power_domains", "nodes", "regions", "links")
    GPU_TYPES_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    POWER_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    gpu_types: _containers.RepeatedCompositeFieldContainer[GpuType]
    sites: _containers.RepeatedCompositeFieldContainer[Site]
    power_domains: _containers.RepeatedCompositeFieldContainer[PowerDomain]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    regions: _containers.RepeatedScalarFieldContainer[str]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    def __init__(self, gpu_types: _Optional[_Iterable[_Union[GpuType, _Mapping]]] = ..., sites: _Optional[_Iterable[_Union[Site, _Mapping]]] = ..., power_domains: _Optional[_Iterable[_Union[PowerDomain, _Mapping]]] = ..., nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., regions: _Optional[_Iterable[str]] = ..., links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ...) -> None: ...

class Spread(_message.Message):
    __slots__ = ("level", "min_distinct")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MIN_DISTINCT_FIELD_NUMBER: _ClassVar[int]
    level: SpreadLevel
    min_distinct: int
    def __init__(self, level: _Optional[_Union[SpreadLevel, str]] = ..., min_distinct: _Optional[int] = ...) -> None: ...

class CurrentReplica(_message.Message):
    __slots__ = ("node", "gpu_indices", "power_cap_w")
    NODE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    POWER_CAP_W_FIELD_NUMBER: _ClassVar[int]
    node: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    power_cap_w: int
    def __init__(self, node: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., power_cap_w: _Optional[int] = ...) -> None: ...

class Workload(_message.Message):
    __slots__ = ("name", "gpus", "gpu_milli", "memory_gib", "allowed_gpu_types", "min_replicas", "max_replicas", "spread", "survive_site_loss_pct", "backup_minutes", "user_region", "max_latency_ms", "priority", "min_power_cap_pct", "cpu_milli", "host_memory_mib", "current", "pinned", "move_cost", "max_unavailable_count", "max_unavailable_pct", "max_per_node", "max_per_power_domain")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    GPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GIB_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_GPU_TYPES_FIELD_NUMBER: _ClassVar[int]
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    SURVIVE_SITE_LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    BACKUP_MINUTES_FIELD_NUMBER: _ClassVar[int]
    USER_REGION_FIELD_NUMBER: _ClassVar[int]
    MAX_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MIN_POWER_CAP_PCT_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    HOST_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    MOVE_COST_FIELD_NUMBER: _ClassVar[int]
    MAX_UNAVAILABLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_UNAVAILABLE_PCT_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_NODE_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_POWER_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    gpus: int
    gpu_milli: int
    memory_gib: float
    allowed_gpu_types: _containers.RepeatedScalarFieldContainer[str]
    min_replicas: int
    max_replicas: int
    spread: Spread
    survive_site_loss_pct: int
    backup_minutes: float
    user_region: str
    max_latency_ms: float
    priority: int
    min_power_cap_pct: int
    cpu_milli: int
    host_memory_mib: int
    current: _containers.RepeatedCompositeFieldContainer[CurrentReplica]
    pinned: bool
    move_cost: int
    max_unavailable_count: int
    max_unavailable_pct: int
    max_per_node: int
    max_per_power_domain: int
    def __init__(self, name: _Optional[str] = ..., gpus: _Optional[int] = ..., gpu_milli: _Optional[int] = ..., memory_gib: _Optional[float] = ..., allowed_gpu_types: _Optional[_Iterable[str]] = ..., min_replicas: _Optional[int] = ..., max_replicas: _Optional[int] = ..., spread: _Optional[_Union[Spread, _Mapping]] = ..., survive_site_loss_pct: _Optional[int] = ..., backup_minutes: _Optional[float] = ..., user_region: _Optional[str] = ..., max_latency_ms: _Optional[float] = ..., priority: _Optional[int] = ..., min_power_cap_pct: _Optional[int] = ..., cpu_milli: _Optional[int] = ..., host_memory_mib: _Optional[int] = ..., current: _Optional[_Iterable[_Union[CurrentReplica, _Mapping]]] = ..., pinned: _Optional[bool] = ..., move_cost: _Optional[int] = ..., max_unavailable_count: _Optional[int] = ..., max_unavailable_pct: _Optional[int] = ..., max_per_node: _Optional[int] = ..., max_per_power_domain: _Optional[int] = ...) -> None: ...

class SolveOptions(_message.Message):
    __slots__ = ("backend", "time_limit_s", "seed", "workers", "energy_metric", "optimise_energy", "optimise_moves", "optimise_fragmentation", "deterministic", "max_moves", "max_moves_per_site", "max_moves_per_power_domain", "price_moves")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_METRIC_FIELD_NUMBER: _ClassVar[int]
    OPTIMISE_ENERGY_FIELD_NUMBER: _ClassVar[int]
    OPTIMISE_MOVES_FIELD_NUMBER: _ClassVar[int]
    OPTIMISE_FRAGMENTATION_FIELD_NUMBER: _ClassVar[int]
    DETERMINISTIC_FIELD_NUMBER: _ClassVar[int]
    MAX_MOVES_FIELD_NUMBER: _ClassVar[int]
    MAX_MOVES_PER_SITE_FIELD_NUMBER: _ClassVar[int]
    MAX_MOVES_PER_POWER_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PRICE_MOVES_FIELD_NUMBER: _ClassVar[int]
    backend: Backend
    time_limit_s: float
    seed: int
    workers: int
    energy_metric: EnergyMetric
    optimise_energy: bool
    optimise_moves: bool
    optimise_fragmentation: bool
    deterministic: bool
    max_moves: int
    max_moves_per_site: int
    max_moves_per_power_domain: int
    price_moves: bool
    def __init__(self, backend: _Optional[_Union[Backend, str]] = ..., time_limit_s: _Optional[float] = ..., seed: _Optional[int] = ..., workers: _Optional[int] = ..., energy_metric: _Optional[_Union[EnergyMetric, str]] = ..., optimise_energy: _Optional[bool] = ..., optimise_moves: _Optional[bool] = ..., optimise_fragmentation: _Optional[bool] = ..., deterministic: _Optional[bool] = ..., max_moves: _Optional[int] = ..., max_moves_per_site: _Optional[int] = ..., max_moves_per_power_domain: _Optional[int] = ..., price_moves: _Optional[bool] = ...) -> None: ...

class PlaceRequest(_message.Message):
    __slots__ = ("fleet", "workloads", "options")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    fleet: Fleet
    workloads: _containers.RepeatedCompositeFieldContainer[Workload]
    options: SolveOptions
    def __init__(self, fleet: _Optional[_Union[Fleet, _Mapping]] = ..., workloads: _Optional[_Iterable[_Union[Workload, _Mapping]]] = ..., options: _Optional[_Union[SolveOptions, _Mapping]] = ...) -> None: ...

class ReplicaPlacement(_message.Message):
    __slots__ = ("workload", "replica", "site", "power_domain", "node", "gpu_indices", "gpu_milli", "power_cap_w")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    POWER_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    GPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    POWER_CAP_W_FIELD_NUMBER: _ClassVar[int]
    workload: str
    replica: int
    site: str
    power_domain: str
    node: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    gpu_milli: int
    power_cap_w: int
    def __init__(self, workload: _Optional[str] = ..., replica: _Optional[int] = ..., site: _Optional[str] = ..., power_domain: _Optional[str] = ..., node: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., gpu_milli: _Optional[int] = ..., power_cap_w: _Optional[int] = ...) -> None: ...

class GpuBudget(_message.Message):
    __slots__ = ("node", "index", "power_cap_w", "used_milli", "workloads")
    NODE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    POWER_CAP_W_FIELD_NUMBER: _ClassVar[int]
    USED_MILLI_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    node: str
    index: int
    power_cap_w: int
    used_milli: int
    workloads: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node: _Optional[str] = ..., index: _Optional[int] = ..., power_cap_w: _Optional[int] = ..., used_milli: _Optional[int] = ..., workloads: _Optional[_Iterable[str]] = ...) -> None: ...

class NodeBudget(_message.Message):
    __slots__ = ("node", "site", "power_domain", "on", "host_w", "gpu_w", "it_w")
    NODE_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    POWER_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    HOST_W_FIELD_NUMBER: _ClassVar[int]
    GPU_W_FIELD_NUMBER: _ClassVar[int]
    IT_W_FIELD_NUMBER: _ClassVar[int]
    node: str
    site: str
    power_domain: str
    on: bool
    host_w: int
    gpu_w: int
    it_w: int
    def __init__(self, node: _Optional[str] = ..., site: _Optional[str] = ..., power_domain: _Optional[str] = ..., on: _Optional[bool] = ..., host_w: _Optional[int] = ..., gpu_w: _Optional[int] = ..., it_w: _Optional[int] = ...) -> None: ...

class PowerBudget(_message.Message):
    __slots__ = ("kind", "name", "site", "redundancy", "feeds", "capacity_kw", "usable_kw", "it_kw", "facility_kw", "headroom_kw", "utilisation_pct", "feed_rating_kw", "feed_load_kw", "failure_feed_load_kw", "survives_failure")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    REDUNDANCY_FIELD_NUMBER: _ClassVar[int]
    FEEDS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_KW_FIELD_NUMBER: _ClassVar[int]
    USABLE_KW_FIELD_NUMBER: _ClassVar[int]
    IT_KW_FIELD_NUMBER: _ClassVar[int]
    FACILITY_KW_FIELD_NUMBER: _ClassVar[int]
    HEADROOM_KW_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_PCT_FIELD_NUMBER: _ClassVar[int]
    FEED_RATING_KW_FIELD_NUMBER: _ClassVar[int]
    FEED_LOAD_KW_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FEED_LOAD_KW_FIELD_NUMBER: _ClassVar[int]
    SURVIVES_FAILURE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    site: str
    redundancy: Redundancy
    feeds: int
    capacity_kw: float
    usable_kw: float
    it_kw: float
    facility_kw: float
    headroom_kw: float
    utilisation_pct: float
    feed_rating_kw: float
    feed_load_kw: float
    failure_feed_load_kw: float
    survives_failure: bool
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., site: _Optional[str] = ..., redundancy: _Optional[_Union[Redundancy, str]] = ..., feeds: _Optional[int] = ..., capacity_kw: _Optional[float] = ..., usable_kw: _Optional[float] = ..., it_kw: _Optional[float] = ..., facility_kw: _Optional[float] = ..., headroom_kw: _Optional[float] = ..., utilisation_pct: _Optional[float] = ..., feed_rating_kw: _Optional[float] = ..., feed_load_kw: _Optional[float] = ..., failure_feed_load_kw: _Optional[float] = ..., survives_failure: _Optional[bool] = ...) -> None: ...

class PowerBudgets(_message.Message):
    __slots__ = ("gpus", "nodes", "power_domains", "sites", "energy_cost_per_h", "carbon_kg_per_h")
    GPUS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    POWER_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    ENERGY_COST_PER_H_FIELD_NUMBER: _ClassVar[int]
    CARBON_KG_PER_H_FIELD_NUMBER: _ClassVar[int]
    gpus: _containers.RepeatedCompositeFieldContainer[GpuBudget]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeBudget]
    power_domains: _containers.RepeatedCompositeFieldContainer[PowerBudget]
    sites: _containers.RepeatedCompositeFieldContainer[PowerBudget]
    energy_cost_per_h: float
    carbon_kg_per_h: float
    def __init__(self, gpus: _Optional[_Iterable[_Union[GpuBudget, _Mapping]]] = ..., nodes: _Optional[_Iterable[_Union[NodeBudget, _Mapping]]] = ..., power_domains: _Optional[_Iterable[_Union[PowerBudget, _Mapping]]] = ..., sites: _Optional[_Iterable[_Union[PowerBudget, _Mapping]]] = ..., energy_cost_per_h: _Optional[float] = ..., carbon_kg_per_h: _Optional[float] = ...) -> None: ...

class Reason(_message.Message):
    __slots__ = ("rule", "message", "candidates_excluded", "requested", "available", "unit", "where")
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    message: str
    candidates_excluded: int
    requested: float
    available: float
    unit: str
    where: str
    def __init__(self, rule: _Optional[str] = ..., message: _Optional[str] = ..., candidates_excluded: _Optional[int] = ..., requested: _Optional[float] = ..., available: _Optional[float] = ..., unit: _Optional[str] = ..., where: _Optional[str] = ...) -> None: ...

class UnplacedWorkload(_message.Message):
    __slots__ = ("workload", "reasons")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    workload: str
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    def __init__(self, workload: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ...) -> None: ...

class ObjectiveTiers(_message.Message):
    __slots__ = ("placed_work", "energy", "moves", "fragmentation", "move_price")
    PLACED_WORK_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    FRAGMENTATION_FIELD_NUMBER: _ClassVar[int]
    MOVE_PRICE_FIELD_NUMBER: _ClassVar[int]
    placed_work: int
    energy: int
    moves: int
    fragmentation: int
    move_price: int
    def __init__(self, placed_work: _Optional[int] = ..., energy: _Optional[int] = ..., moves: _Optional[int] = ..., fragmentation: _Optional[int] = ..., move_price: _Optional[int] = ...) -> None: ...

class SolveInfo(_message.Message):
    __slots__ = ("status", "stop_reason", "bound", "gap", "backend", "solver_version", "seed", "wall_s", "code_revision", "started_at", "deterministic", "method", "solvers")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SOLVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WALL_S_FIELD_NUMBER: _ClassVar[int]
    CODE_REVISION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DETERMINISTIC_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SOLVERS_FIELD_NUMBER: _ClassVar[int]
    status: SolveStatus
    stop_reason: StopReason
    bound: float
    gap: float
    backend: str
    solver_version: str
    seed: int
    wall_s: float
    code_revision: str
    started_at: str
    deterministic: bool
    method: str
    solvers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[_Union[SolveStatus, str]] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., bound: _Optional[float] = ..., gap: _Optional[float] = ..., backend: _Optional[str] = ..., solver_version: _Optional[str] = ..., seed: _Optional[int] = ..., wall_s: _Optional[float] = ..., code_revision: _Optional[str] = ..., started_at: _Optional[str] = ..., deterministic: _Optional[bool] = ..., method: _Optional[str] = ..., solvers: _Optional[_Iterable[str]] = ...) -> None: ...

class Displaced(_message.Message):
    __slots__ = ("workload", "node", "gpu_indices", "forced", "rule", "message", "evictor", "to_node", "earns_work", "earns_energy")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    FORCED_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EVICTOR_FIELD_NUMBER: _ClassVar[int]
    TO_NODE_FIELD_NUMBER: _ClassVar[int]
    EARNS_WORK_FIELD_NUMBER: _ClassVar[int]
    EARNS_ENERGY_FIELD_NUMBER: _ClassVar[int]
    workload: str
    node: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    forced: bool
    rule: str
    message: str
    evictor: str
    to_node: str
    earns_work: int
    earns_energy: int
    def __init__(self, workload: _Optional[str] = ..., node: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., forced: _Optional[bool] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ..., evictor: _Optional[str] = ..., to_node: _Optional[str] = ..., earns_work: _Optional[int] = ..., earns_energy: _Optional[int] = ...) -> None: ...

class MovePoint(_message.Message):
    __slots__ = ("moves", "earns_work", "earns_energy")
    MOVES_FIELD_NUMBER: _ClassVar[int]
    EARNS_WORK_FIELD_NUMBER: _ClassVar[int]
    EARNS_ENERGY_FIELD_NUMBER: _ClassVar[int]
    moves: int
    earns_work: int
    earns_energy: int
    def __init__(self, moves: _Optional[int] = ..., earns_work: _Optional[int] = ..., earns_energy: _Optional[int] = ...) -> None: ...

class MigrationStep(_message.Message):
    __slots__ = ("kind", "workload", "node", "gpu_indices", "power_cap_w", "gpu_milli")
    KIND_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    POWER_CAP_W_FIELD_NUMBER: _ClassVar[int]
    GPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    kind: StepKind
    workload: str
    node: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    power_cap_w: int
    gpu_milli: int
    def __init__(self, kind: _Optional[_Union[StepKind, str]] = ..., workload: _Optional[str] = ..., node: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., power_cap_w: _Optional[int] = ..., gpu_milli: _Optional[int] = ...) -> None: ...

class BlockedMove(_message.Message):
    __slots__ = ("workload", "node", "gpu_indices", "rule", "message", "requested", "available", "unit", "where")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    workload: str
    node: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    rule: str
    message: str
    requested: float
    available: float
    unit: str
    where: str
    def __init__(self, workload: _Optional[str] = ..., node: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ..., requested: _Optional[float] = ..., available: _Optional[float] = ..., unit: _Optional[str] = ..., where: _Optional[str] = ...) -> None: ...

class Downtime(_message.Message):
    __slots__ = ("workload", "node", "gpu_indices", "stop_step", "steps_down", "within_budget")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    GPU_INDICES_FIELD_NUMBER: _ClassVar[int]
    STOP_STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_DOWN_FIELD_NUMBER: _ClassVar[int]
    WITHIN_BUDGET_FIELD_NUMBER: _ClassVar[int]
    workload: str
    node: str
    gpu_indices: _containers.RepeatedScalarFieldContainer[int]
    stop_step: int
    steps_down: int
    within_budget: bool
    def __init__(self, workload: _Optional[str] = ..., node: _Optional[str] = ..., gpu_indices: _Optional[_Iterable[int]] = ..., stop_step: _Optional[int] = ..., steps_down: _Optional[int] = ..., within_budget: _Optional[bool] = ...) -> None: ...

class PowerPeak(_message.Message):
    __slots__ = ("kind", "name", "site", "usable_w", "start_w", "peak_w", "peak_step", "end_w")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    USABLE_W_FIELD_NUMBER: _ClassVar[int]
    START_W_FIELD_NUMBER: _ClassVar[int]
    PEAK_W_FIELD_NUMBER: _ClassVar[int]
    PEAK_STEP_FIELD_NUMBER: _ClassVar[int]
    END_W_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    site: str
    usable_w: int
    start_w: int
    peak_w: int
    peak_step: int
    end_w: int
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ..., site: _Optional[str] = ..., usable_w: _Optional[int] = ..., start_w: _Optional[int] = ..., peak_w: _Optional[int] = ..., peak_step: _Optional[int] = ..., end_w: _Optional[int] = ...) -> None: ...

class Migration(_message.Message):
    __slots__ = ("steps", "blocked", "downtime", "site_peaks", "domain_peaks", "safe")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_FIELD_NUMBER: _ClassVar[int]
    SITE_PEAKS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_PEAKS_FIELD_NUMBER: _ClassVar[int]
    SAFE_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[MigrationStep]
    blocked: _containers.RepeatedCompositeFieldContainer[BlockedMove]
    downtime: _containers.RepeatedCompositeFieldContainer[Downtime]
    site_peaks: _containers.RepeatedCompositeFieldContainer[PowerPeak]
    domain_peaks: _containers.RepeatedCompositeFieldContainer[PowerPeak]
    safe: bool
    def __init__(self, steps: _Optional[_Iterable[_Union[MigrationStep, _Mapping]]] = ..., blocked: _Optional[_Iterable[_Union[BlockedMove, _Mapping]]] = ..., downtime: _Optional[_Iterable[_Union[Downtime, _Mapping]]] = ..., site_peaks: _Optional[_Iterable[_Union[PowerPeak, _Mapping]]] = ..., domain_peaks: _Optional[_Iterable[_Union[PowerPeak, _Mapping]]] = ..., safe: _Optional[bool] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("placements", "budgets", "unplaced", "objective", "info", "displaced", "move_curve", "migration")
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    UNPLACED_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    DISPLACED_FIELD_NUMBER: _ClassVar[int]
    MOVE_CURVE_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_FIELD_NUMBER: _ClassVar[int]
    placements: _containers.RepeatedCompositeFieldContainer[ReplicaPlacement]
    budgets: PowerBudgets
    unplaced: _containers.RepeatedCompositeFieldContainer[UnplacedWorkload]
    objective: ObjectiveTiers
    info: SolveInfo
    displaced: _containers.RepeatedCompositeFieldContainer[Displaced]
    move_curve: _containers.RepeatedCompositeFieldContainer[MovePoint]
    migration: Migration
    def __init__(self, placements: _Optional[_Iterable[_Union[ReplicaPlacement, _Mapping]]] = ..., budgets: _Optional[_Union[PowerBudgets, _Mapping]] = ..., unplaced: _Optional[_Iterable[_Union[UnplacedWorkload, _Mapping]]] = ..., objective: _Optional[_Union[ObjectiveTiers, _Mapping]] = ..., info: _Optional[_Union[SolveInfo, _Mapping]] = ..., displaced: _Optional[_Iterable[_Union[Displaced, _Mapping]]] = ..., move_curve: _Optional[_Iterable[_Union[MovePoint, _Mapping]]] = ..., migration: _Optional[_Union[Migration, _Mapping]] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ("rule", "subject", "message")
    RULE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    subject: str
    message: str
    def __init__(self, rule: _Optional[str] = ..., subject: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("request", "plan")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    request: PlaceRequest
    plan: Plan
    def __init__(self, request: _Optional[_Union[PlaceRequest, _Mapping]] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("violations", "valid")
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    violations: _containers.RepeatedCompositeFieldContainer[Violation]
    valid: bool
    def __init__(self, violations: _Optional[_Iterable[_Union[Violation, _Mapping]]] = ..., valid: _Optional[bool] = ...) -> None: ...

class PlaceResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("tier", "objective", "bound", "elapsed_s", "source")
    TIER_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    tier: str
    objective: float
    bound: float
    elapsed_s: float
    source: str
    def __init__(self, tier: _Optional[str] = ..., objective: _Optional[float] = ..., bound: _Optional[float] = ..., elapsed_s: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

class PlaceEvent(_message.Message):
    __slots__ = ("progress", "plan")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    plan: Plan
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("request", "workload", "site", "plan")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    request: PlaceRequest
    workload: str
    site: str
    plan: Plan
    def __init__(self, request: _Optional[_Union[PlaceRequest, _Mapping]] = ..., workload: _Optional[str] = ..., site: _Optional[str] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("reasons", "placed")
    REASONS_FIELD_NUMBER: _ClassVar[int]
    PLACED_FIELD_NUMBER: _ClassVar[int]
    reasons: _containers.RepeatedCompositeFieldContainer[Reason]
    placed: bool
    def __init__(self, reasons: _Optional[_Iterable[_Union[Reason, _Mapping]]] = ..., placed: _Optional[bool] = ...) -> None: ...

class Rescale(_message.Message):
    __slots__ = ("workload", "min_replicas", "max_replicas")
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    workload: str
    min_replicas: int
    max_replicas: int
    def __init__(self, workload: _Optional[str] = ..., min_replicas: _Optional[int] = ..., max_replicas: _Optional[int] = ...) -> None: ...

class FleetChanges(_message.Message):
    __slots__ = ("drain_nodes", "down_nodes", "ready_nodes", "add_nodes", "remove_nodes", "add_workloads", "remove_workloads", "rescale_workloads")
    DRAIN_NODES_FIELD_NUMBER: _ClassVar[int]
    DOWN_NODES_FIELD_NUMBER: _ClassVar[int]
    READY_NODES_FIELD_NUMBER: _ClassVar[int]
    ADD_NODES_FIELD_NUMBER: _ClassVar[int]
    REMOVE_NODES_FIELD_NUMBER: _ClassVar[int]
    ADD_WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    REMOVE_WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    RESCALE_WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    drain_nodes: _containers.RepeatedScalarFieldContainer[str]
    down_nodes: _containers.RepeatedScalarFieldContainer[str]
    ready_nodes: _containers.RepeatedScalarFieldContainer[str]
    add_nodes: _containers.RepeatedCompositeFieldContainer[Node]
    remove_nodes: _containers.RepeatedScalarFieldContainer[str]
    add_workloads: _containers.RepeatedCompositeFieldContainer[Workload]
    remove_workloads: _containers.RepeatedScalarFieldContainer[str]
    rescale_workloads: _containers.RepeatedCompositeFieldContainer[Rescale]
    def __init__(self, drain_nodes: _Optional[_Iterable[str]] = ..., down_nodes: _Optional[_Iterable[str]] = ..., ready_nodes: _Optional[_Iterable[str]] = ..., add_nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., remove_nodes: _Optional[_Iterable[str]] = ..., add_workloads: _Optional[_Iterable[_Union[Workload, _Mapping]]] = ..., remove_workloads: _Optional[_Iterable[str]] = ..., rescale_workloads: _Optional[_Iterable[_Union[Rescale, _Mapping]]] = ...) -> None: ...

class PlanRecord(_message.Message):
    __slots__ = ("id", "created_at", "requested_by", "kind", "current", "parent_id", "input_digest", "status", "stop_reason", "bound", "gap", "objective", "replicas", "unplaced_workloads", "wall_s", "code_revision", "changes")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    BOUND_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    UNPLACED_WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    WALL_S_FIELD_NUMBER: _ClassVar[int]
    CODE_REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    id: int
    created_at: str
    requested_by: str
    kind: str
    current: bool
    parent_id: int
    input_digest: str
    status: SolveStatus
    stop_reason: StopReason
    bound: float
    gap: float
    objective: ObjectiveTiers
    replicas: int
    unplaced_workloads: int
    wall_s: float
    code_revision: str
    changes: str
    def __init__(self, id: _Optional[int] = ..., created_at: _Optional[str] = ..., requested_by: _Optional[str] = ..., kind: _Optional[str] = ..., current: _Optional[bool] = ..., parent_id: _Optional[int] = ..., input_digest: _Optional[str] = ..., status: _Optional[_Union[SolveStatus, str]] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., bound: _Optional[float] = ..., gap: _Optional[float] = ..., objective: _Optional[_Union[ObjectiveTiers, _Mapping]] = ..., replicas: _Optional[int] = ..., unplaced_workloads: _Optional[int] = ..., wall_s: _Optional[float] = ..., code_revision: _Optional[str] = ..., changes: _Optional[str] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class GetPlanResponse(_message.Message):
    __slots__ = ("record", "plan", "input")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    record: PlanRecord
    plan: Plan
    input: PlaceRequest
    def __init__(self, record: _Optional[_Union[PlanRecord, _Mapping]] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., input: _Optional[_Union[PlaceRequest, _Mapping]] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ("limit", "before_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    before_id: int
    def __init__(self, limit: _Optional[int] = ..., before_id: _Optional[int] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("plans",)
    PLANS_FIELD_NUMBER: _ClassVar[int]
    plans: _containers.RepeatedCompositeFieldContainer[PlanRecord]
    def __init__(self, plans: _Optional[_Iterable[_Union[PlanRecord, _Mapping]]] = ...) -> None: ...

class RebalanceRequest(_message.Message):
    __slots__ = ("input", "changes", "max_moves", "dry_run", "allow_drop", "fail_if_moves_over", "fail_if_site_power_over_pct", "fail_if_domain_power_over_pct", "time_limit_s")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    MAX_MOVES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ALLOW_DROP_FIELD_NUMBER: _ClassVar[int]
    FAIL_IF_MOVES_OVER_FIELD_NUMBER: _ClassVar[int]
    FAIL_IF_SITE_POWER_OVER_PCT_FIELD_NUMBER: _ClassVar[int]
    FAIL_IF_DOMAIN_POWER_OVER_PCT_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_S_FIELD_NUMBER: _ClassVar[int]
    input: PlaceRequest
    changes: FleetChanges
    max_moves: int
    dry_run: bool
    allow_drop: bool
    fail_if_moves_over: int
    fail_if_site_power_over_pct: float
    fail_if_domain_power_over_pct: float
    time_limit_s: float
    def __init__(self, input: _Optional[_Union[PlaceRequest, _Mapping]] = ..., changes: _Optional[_Union[FleetChanges, _Mapping]] = ..., max_moves: _Optional[int] = ..., dry_run: _Optional[bool] = ..., allow_drop: _Optional[bool] = ..., fail_if_moves_over: _Optional[int] = ..., fail_if_site_power_over_pct: _Optional[float] = ..., fail_if_domain_power_over_pct: _Optional[float] = ..., time_limit_s: _Optional[float] = ...) -> None: ...

class GateFailure(_message.Message):
    __slots__ = ("rule", "message")
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    message: str
    def __init__(self, rule: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RebalanceResponse(_message.Message):
    __slots__ = ("plan", "previous_id", "record", "gate_failures", "changed", "moves", "added", "moved", "evicted", "retuned", "dropped", "unforced_moves")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    GATE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    EVICTED_FIELD_NUMBER: _ClassVar[int]
    RETUNED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    UNFORCED_MOVES_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    previous_id: int
    record: PlanRecord
    gate_failures: _containers.RepeatedCompositeFieldContainer[GateFailure]
    changed: bool
    moves: int
    added: int
    moved: int
    evicted: int
    retuned: int
    dropped: _containers.RepeatedScalarFieldContainer[str]
    unforced_moves: int
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ..., previous_id: _Optional[int] = ..., record: _Optional[_Union[PlanRecord, _Mapping]] = ..., gate_failures: _Optional[_Iterable[_Union[GateFailure, _Mapping]]] = ..., changed: _Optional[bool] = ..., moves: _Optional[int] = ..., added: _Optional[int] = ..., moved: _Optional[int] = ..., evicted: _Optional[int] = ..., retuned: _Optional[int] = ..., dropped: _Optional[_Iterable[str]] = ..., unforced_moves: _Optional[int] = ...) -> None: ...
