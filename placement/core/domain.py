"""Domain types of the placement engine: the instance and the plan.

Every type here is a frozen dataclass with units in its field names. The library
works on these types only; the gRPC server and the CLI convert from and to the
``placement.v1`` protobuf messages at their edge (``wire/convert.py``).

Power is kept in whole watts inside the engine (``*_w`` fields and the
``usable_power_w`` helpers) so that the model, the budgets and the verifier agree
to the watt; kilowatts appear only where an operator types or reads them.

Redundancy model (applies to sites and power domains alike)
-----------------------------------------------------------
``capacity_kw`` is the installed IT capacity of all feeds together.

* ``N``: one feed carries everything. Usable = capacity. A feed failure drops
  the whole load (the budget reports ``survives_failure = False`` when any load
  is present).
* ``N_PLUS_1``: ``modules`` feeds (n + 1 of them), each rated capacity/modules.
  Usable = capacity * (modules - 1) / modules, so that after losing any one
  module the other n carry the load.
* ``TWO_N``: two independent feeds, each rated capacity/2 and each able to carry
  the whole load alone. Usable = capacity / 2.

The usable power in watts is ``floor(capacity_kw * 1000 * factor)``; it is the
cap used by the model and by the verifier, and the budgets report it as it is
(``usable_kw = usable_power_w / 1000``: 3.0145 kW of capacity is 3,014 W, reported as
3.014 kW).

GPU memory is typed in GiB with decimals; every rule reads it in whole milli-GiB
(``memory_milli_gib``: rounded to the nearest, halves up), the filter, the model and
the heuristics as the verifier does, so that they accept exactly the same plans. Any
value with at most three decimals (8.1, 7.8, 23.5 GiB) is exact: 8.1 + 8.1 + 7.8 GiB
fill a 24 GiB GPU exactly.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

MILLI_GIB_PER_GIB = 1000


def memory_milli_gib(gib: float) -> int:
    """GPU memory in the whole milli-GiB every rule compares (rounded to the nearest, halves up).

    The one conversion for a workload's demand and a GPU's capacity alike (rule 3): a shared
    GPU holds its fractional replicas when the sum of their ``memory_milli_gib(memory_gib)``
    is at most ``memory_milli_gib(gpu.memory_gib)``; a whole-GPU replica fits a GPU when
    ``memory_milli_gib(memory_gib / gpus)`` is at most it.
    """
    return math.floor(gib * MILLI_GIB_PER_GIB + 0.5)


class SiteKind(enum.Enum):
    DATACENTER = "DATACENTER"
    EDGE = "EDGE"


class Redundancy(enum.Enum):
    N = "N"
    N_PLUS_1 = "N_PLUS_1"
    TWO_N = "TWO_N"


class NodeState(enum.Enum):
    READY = "READY"  # accepts replicas
    DRAINING = "DRAINING"  # accepts none; the plan moves its replicas away
    DOWN = "DOWN"  # accepts none


class SpreadLevel(enum.Enum):
    SITE = "SITE"
    POWER_DOMAIN = "POWER_DOMAIN"
    NODE = "NODE"


class EnergyMetric(enum.Enum):
    """What tier 2 of the objective minimises."""

    COST = "COST"
    CARBON = "CARBON"


class Backend(enum.Enum):
    ORTOOLS = "ortools"
    PULP = "pulp"


class SolveStatus(enum.Enum):
    """Our own solver outcome, whatever the backend."""

    OPTIMAL = "OPTIMAL"  # proven optimal on every tier that was solved
    FEASIBLE = "FEASIBLE"  # a verified plan, optimality not proven (see bound, gap)
    INFEASIBLE = "INFEASIBLE"  # proven: no plan satisfies the hard rules
    NO_SOLUTION = "NO_SOLUTION"  # stopped before any plan was found


class StopReason(enum.Enum):
    NONE = "NONE"  # ran to completion
    TIME_LIMIT = "TIME_LIMIT"
    INTERRUPTED = "INTERRUPTED"  # cancelled by the caller
    WORK_LIMIT = "WORK_LIMIT"  # deterministic mode: the work budget ended the search, not the clock


# --------------------------------------------------------------------------- fleet


@dataclass(frozen=True)
class PowerLevel:
    """One allowed GPU power cap and the throughput it keeps (percent of uncapped)."""

    power_cap_w: int
    relative_throughput_pct: int


@dataclass(frozen=True)
class GpuType:
    name: str
    memory_gib: float
    max_power_w: int  # maximum board power
    min_power_cap_w: int  # lowest power cap the board accepts
    idle_power_w: int  # draw of an unused GPU in a powered node
    power_levels: tuple[PowerLevel, ...]  # ascending power_cap_w; the last is max_power_w
    shareable: bool  # fractional (milli-GPU) replicas may share one GPU


def usable_factor(redundancy: Redundancy, modules: int) -> float:
    if redundancy is Redundancy.N:
        return 1.0
    if redundancy is Redundancy.TWO_N:
        return 0.5
    return (modules - 1) / modules


def feed_count(redundancy: Redundancy, modules: int) -> int:
    if redundancy is Redundancy.N:
        return 1
    if redundancy is Redundancy.TWO_N:
        return 2
    return modules


@dataclass(frozen=True)
class Site:
    name: str
    kind: SiteKind
    region: str
    capacity_kw: float  # installed IT capacity of all feeds together
    pue: float
    redundancy: Redundancy = Redundancy.N
    modules: int = 2  # feeds for N_PLUS_1 (n + 1); ignored otherwise
    battery_minutes: float = 0.0
    has_generator: bool = False
    energy_price_per_kwh: float = 0.0
    carbon_g_per_kwh: float = 0.0

    @property
    def usable_power_w(self) -> int:
        return math.floor(self.capacity_kw * 1000.0 * usable_factor(self.redundancy, self.modules) + 1e-9)

    @property
    def backup_minutes(self) -> float:
        """Minutes the site rides through a utility outage (infinite with a generator)."""
        return math.inf if self.has_generator else self.battery_minutes


@dataclass(frozen=True)
class PowerDomain:
    """A row, rack or PDU inside a site, with its own cap."""

    name: str
    site: str
    capacity_kw: float
    redundancy: Redundancy = Redundancy.N
    modules: int = 2

    @property
    def usable_power_w(self) -> int:
        return math.floor(self.capacity_kw * 1000.0 * usable_factor(self.redundancy, self.modules) + 1e-9)


@dataclass(frozen=True)
class Node:
    name: str
    site: str
    power_domain: str
    gpu_type: str
    gpu_count: int
    host_power_w: int  # non-GPU draw (CPU, memory, fans, NICs) while the node is on
    state: NodeState = NodeState.READY
    cpu_milli: int = 0  # 0: not tracked
    host_memory_mib: int = 0  # 0: not tracked


@dataclass(frozen=True)
class Link:
    """A network link between two endpoints (user regions or sites, by name)."""

    a: str
    b: str
    latency_ms: float


@dataclass(frozen=True)
class Fleet:
    gpu_types: tuple[GpuType, ...]
    sites: tuple[Site, ...]
    power_domains: tuple[PowerDomain, ...]
    nodes: tuple[Node, ...]
    regions: tuple[str, ...] = ()  # user regions
    links: tuple[Link, ...] = ()


# ----------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Spread:
    """Replicas over at least ``min_distinct`` distinct entities of ``level``."""

    level: SpreadLevel
    min_distinct: int


MOVE_PRICE_PCT = 100  # one move (move_cost 1) costs this percent of the moved replica's own work


@dataclass(frozen=True)
class CurrentReplica:
    """Where one replica of a workload runs today, and the cap its GPUs run at.

    ``power_cap_w`` 0 means the board maximum (uncapped); a fractional replica's GPU always
    runs uncapped. ``current_cap_w`` reads it.
    """

    node: str
    gpu_indices: tuple[int, ...]
    power_cap_w: int = 0


def current_cap_w(wk: Workload, cr: CurrentReplica, gpu: GpuType) -> int:
    """The per-GPU cap current replica ``cr`` of ``wk`` runs at on a ``gpu``: its recorded cap,
    or the board maximum where none is recorded (0) or the replica is fractional."""
    if wk.is_fractional or cr.power_cap_w == 0:
        return gpu.max_power_w
    return cr.power_cap_w


@dataclass(frozen=True)
class Workload:
    """An inference service.

    Exactly one of ``gpus`` (whole GPUs per replica, all on one node) and
    ``gpu_milli`` (a share of one GPU, 1..999 thousandths) is non-zero.
    ``memory_gib`` is per replica; a whole-GPU replica spreads it evenly over its GPUs.
    ``max_per_node`` and ``max_per_power_domain`` (the blast radius, 0: no limit) bound its
    replicas on any one node and in any one power domain (rule 16 of docs/ARCHITECTURE.md).
    """

    name: str
    gpus: int = 1
    gpu_milli: int = 0
    memory_gib: float = 0.0
    allowed_gpu_types: tuple[str, ...] = ()  # empty: any type that fits
    min_replicas: int = 1
    max_replicas: int = 1
    spread: Spread | None = None
    survive_site_loss_pct: int = 0  # of min_replicas, left after losing any one site
    backup_minutes: float = 0.0
    user_region: str = ""
    max_latency_ms: float = 0.0  # 0: no latency rule
    priority: int = 1
    min_power_cap_pct: int = 0  # lowest acceptable cap, percent of the board maximum
    cpu_milli: int = 0
    host_memory_mib: int = 0
    current: tuple[CurrentReplica, ...] = ()
    pinned: bool = False  # the current replicas stay exactly where they are; none added or moved
    # what one move of a current replica must earn, in halves of its own work (``move_price_per_replica``),
    # where moves are priced (``Problem.moves_priced``); also its weight in the moves tier; 0: free
    move_cost: int = 1
    # disruption budget (PodDisruptionBudget's maxUnavailable): at most one of the two; None: no limit
    max_unavailable_count: int | None = None  # current replicas a plan may move (forced aside)
    max_unavailable_pct: int | None = None  # the same as a percent of the current replicas, rounded up
    # blast radius (hard): most replicas of this workload on one node and in one power domain, so that
    # losing a node or a rack takes at most that many; 0: no limit
    max_per_node: int = 0
    max_per_power_domain: int = 0

    @property
    def is_fractional(self) -> bool:
        return self.gpus == 0

    @property
    def work_milli(self) -> int:
        """GPU thousandths one replica occupies."""
        return self.gpu_milli if self.is_fractional else self.gpus * 1000

    @property
    def memory_per_gpu_gib(self) -> float:
        return self.memory_gib if self.is_fractional else self.memory_gib / self.gpus

    @property
    def survivors_required(self) -> int:
        """Replicas that must remain after losing any one site."""
        return math.ceil(self.survive_site_loss_pct * self.min_replicas / 100 - 1e-9)

    @property
    def running(self) -> bool:
        """It runs today and the plan may move it: current replicas, not pinned."""
        return bool(self.current) and not self.pinned

    def protected(self, options: SolveOptions) -> bool:
        """Preemption upward only applies to it: it runs and a disruption budget covers it (its own
        ``max_unavailable`` or one of the options'), so a plan leaves it out only for work of higher
        priority (or where the input forces it). Without a budget, leaving it out costs its placed
        work and its moves' price (``Problem.moves_priced``), which only more valuable work pays. A
        workload scaled up past what runs (fewer current replicas than ``min_replicas``) cannot stay
        as it is: the change, not a plan, decides whether it fits, so it is not protected."""
        return (
            self.running
            and len(self.current) >= self.min_replicas
            and (options.budgeted or self.max_unavailable is not None)
        )

    @property
    def move_price_per_replica(self) -> int:
        """Placed work one moved current replica costs where moves are priced: ``move_cost`` times
        ``MOVE_PRICE_PCT`` percent (all) of the replica's own work at full throughput (``priority *
        work_milli * 100``): a move must earn more than the replica it moves is worth."""
        return self.move_cost * self.priority * self.work_milli * MOVE_PRICE_PCT

    @property
    def capped(self) -> bool:
        """A blast-radius cap limits its replicas per node or per power domain."""
        return self.max_per_node > 0 or self.max_per_power_domain > 0

    @property
    def max_unavailable(self) -> int | None:
        """Current replicas a plan may move beyond the forced ones; None: no limit.

        A percent counts of the current replicas, rounded up (as a PodDisruptionBudget's)."""
        if self.max_unavailable_count is not None:
            return self.max_unavailable_count
        if self.max_unavailable_pct is not None:
            return math.ceil(self.max_unavailable_pct * len(self.current) / 100 - 1e-9)
        return None


# ------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SolveOptions:
    backend: Backend = Backend.ORTOOLS
    time_limit_s: float = 30.0  # the whole solve, model building included
    seed: int = 0
    workers: int = 2
    energy_metric: EnergyMetric = EnergyMetric.COST
    # soft tiers that take part in the objective (tier 1 always does)
    optimise_energy: bool = True
    optimise_moves: bool = True
    optimise_fragmentation: bool = True
    # work bounded by counts and deterministic time, not the clock (``placement.run.effort``)
    deterministic: bool = False
    # disruption budgets (hard): current replicas a plan may move, forced moves aside; None: no limit
    max_moves: int | None = None
    max_moves_per_site: int | None = None
    max_moves_per_power_domain: int | None = None
    # a re-plan without max_moves prices its moves against placed work (``Problem.moves_priced``)
    price_moves: bool = True

    @property
    def budgeted(self) -> bool:
        """Some disruption budget of the options limits moves."""
        return (self.max_moves, self.max_moves_per_site, self.max_moves_per_power_domain) != (None,) * 3


@dataclass(frozen=True)
class Problem:
    fleet: Fleet
    workloads: tuple[Workload, ...]
    options: SolveOptions = field(default_factory=SolveOptions)

    @property
    def moves_priced(self) -> bool:
        """A re-plan with no ``max_moves`` budget: a move must earn its price in placed work
        (``Workload.move_price_per_replica``) to be made. With ``max_moves`` the budget is the
        operator's word on how many moves are worth it, and placed work is maximised within it;
        ``SolveOptions.price_moves`` False ranks moves below placed work only (a fresh placement
        that merely prefers current nodes)."""
        return (
            self.options.price_moves
            and self.options.max_moves is None
            and any(w.running for w in self.workloads)
        )


# ---------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class ReplicaPlacement:
    workload: str
    replica: int  # 0-based index within the workload
    site: str
    power_domain: str
    node: str
    gpu_indices: tuple[int, ...]
    gpu_milli: int  # share of each listed GPU: 1000 for whole-GPU replicas
    power_cap_w: int  # per GPU


@dataclass(frozen=True)
class GpuBudget:
    node: str
    index: int
    power_cap_w: int  # budgeted draw: the cap, idle draw, or 0 when the node is off
    used_milli: int
    workloads: tuple[str, ...]


@dataclass(frozen=True)
class NodeBudget:
    node: str
    site: str
    power_domain: str
    on: bool
    host_w: int
    gpu_w: int

    @property
    def it_w(self) -> int:
        return self.host_w + self.gpu_w


@dataclass(frozen=True)
class PowerBudget:
    """Budget of one power domain or site (kind: "power_domain" or "site")."""

    kind: str
    name: str
    site: str
    redundancy: Redundancy
    feeds: int
    capacity_kw: float
    usable_kw: float  # the cap after redundancy: usable_power_w / 1000 (whole watts, floored)
    it_kw: float
    facility_kw: float  # it_kw * PUE of the site
    headroom_kw: float  # usable_kw - it_kw
    utilisation_pct: float  # it_kw / usable_kw * 100
    feed_rating_kw: float
    feed_load_kw: float  # load on each feed in normal operation
    failure_feed_load_kw: float  # load on each surviving feed after the worst single failure
    survives_failure: bool


@dataclass(frozen=True)
class PowerBudgets:
    gpus: tuple[GpuBudget, ...]
    nodes: tuple[NodeBudget, ...]
    power_domains: tuple[PowerBudget, ...]
    sites: tuple[PowerBudget, ...]
    energy_cost_per_h: float  # facility energy cost, currency of the prices per hour
    carbon_kg_per_h: float


@dataclass(frozen=True)
class Reason:
    """Why (part of) a workload could not be placed: a rule and its numbers."""

    rule: str  # a constraint name from the catalogue, e.g. "latency", "site_power"
    message: str  # plain language with the numbers
    candidates_excluded: int = 0  # nodes this rule ruled out
    # the numbers of the message, where the rule has them (0 and "" where it has none)
    requested: float = 0.0  # what one replica needs, in ``unit``
    available: float = 0.0  # what ``where`` has left (the closest to enough), in ``unit``
    unit: str = ""  # "W", "GPUs", "milli-GPU", "MiB", "mCPU", "GiB", "ms", "min", "replicas", ...
    where: str = ""  # the entity ``available`` belongs to: a node, "site/power domain" or a site


@dataclass(frozen=True)
class UnplacedWorkload:
    workload: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Displaced:
    """A current replica the plan does not keep on its node (one move), and why.

    ``rule``: ``node_state`` (its node is not READY or gone), a rule the input now breaks
    there (``gpu_type``, ``gpu_memory``, ``gpu_count``, ``power_cap``, ``latency``, ``backup``,
    ``host_resources``, ``domain_power``, ``site_power``), ``replicas`` (beyond max_replicas),
    ``blast_radius`` (beyond a lowered ``max_per_node`` or ``max_per_power_domain``), ``spread``
    or ``site_survival`` (its current replicas break them where they run): these are
    ``forced``; ``preempted`` (a workload of higher priority, ``evictor``, took its
    place) or ``moved`` (the optimiser's choice): not forced, within the disruption budgets.

    What an unforced move earns (0 for a forced one), attributed from the plan alone:
    ``earns_work``, the placed work of the replicas the plan starts on the node it leaves (not
    running there today), shared equally by the replicas moved off that node; ``earns_energy``,
    the energy its own replica no longer draws there less what it draws where it goes (tier 2's
    units; positive saves).
    """

    workload: str
    node: str
    gpu_indices: tuple[int, ...]
    forced: bool
    rule: str
    message: str
    evictor: str = ""
    to_node: str = ""
    earns_work: int = 0
    earns_energy: int = 0


@dataclass(frozen=True)
class MovePoint:
    """One point of a plan's gain against moves: the best ``moves`` unforced moves of the plan
    (most ``earns_work`` first) earn ``earns_work`` and ``earns_energy`` together."""

    moves: int
    earns_work: int
    earns_energy: int


@dataclass(frozen=True)
class ObjectiveTiers:
    """The objective by tier, highest first; compared lexicographically.

    placed_work: sum over placed replicas of priority * work_milli * throughput_pct (max)
    energy: facility energy in integer units, n$/h (COST) or ug CO2/h (CARBON) (min)
    moves: replicas of the current placement not kept on their node, each weighted by its
        workload's ``move_cost`` (min)
    fragmentation: powered nodes + shared GPUs in use (min)
    move_price: where moves are priced (``Problem.moves_priced``), the placed work the moves
        cost: sum over moved current replicas of ``Workload.move_price_per_replica``; else 0.
        Tier 1 compares ``placed_work - move_price`` (the net work), so a move is made only
        where it earns more placed work than it costs.
    """

    placed_work: int = 0
    energy: int = 0
    moves: int = 0
    fragmentation: int = 0
    move_price: int = 0

    @property
    def net_work(self) -> int:
        return self.placed_work - self.move_price

    def key(self) -> tuple[int, int, int, int]:
        """Larger is better."""
        return (self.net_work, -self.energy, -self.moves, -self.fragmentation)

    def key_values(self) -> tuple[int, int, int, int]:
        """The tiers' values in tier order (net work, energy, moves, fragmentation): what the model's
        objectives hold."""
        return (self.net_work, self.energy, self.moves, self.fragmentation)


@dataclass(frozen=True)
class SolveInfo:
    status: SolveStatus
    stop_reason: StopReason = StopReason.NONE
    # upper bound on tier 1 (placed_work, less move_price where moves are priced), when one is proven
    bound: float | None = None
    gap: float | None = None  # (bound - tier 1) / bound, only with a real bound
    backend: str = ""  # the per-node model's backend, when the model ran (else empty)
    solver_version: str = ""  # the libraries behind ``solvers``, with versions
    seed: int = 0
    wall_s: float = 0.0
    code_revision: str = ""
    started_at: str = ""  # ISO 8601 UTC
    deterministic: bool = False  # solved in the deterministic mode
    method: str = ""  # the methods that made the plan, first to last, e.g. "lp_guided+polish", "model"
    solvers: tuple[str, ...] = ()  # the LP/MIP solvers that ran for it, e.g. ("glop", "cp-sat")


# ----------------------------------------------------------------------- migration


class StepKind(enum.Enum):
    """One step of a migration sequence (``placement.core.sequence``)."""

    START = "START"  # start a replica on a node's GPUs at a cap; it draws and holds them from now
    WAIT_READY = "WAIT_READY"  # wait until that replica serves; only then it counts as available
    STOP = "STOP"  # stop a running replica; its GPUs, host resources and watts are free again
    SET_CAP = "SET_CAP"  # change the cap of a running whole-GPU replica in place


@dataclass(frozen=True)
class MigrationStep:
    kind: StepKind
    workload: str
    node: str
    gpu_indices: tuple[int, ...]
    power_cap_w: int = 0  # per GPU: the cap of a START or a SET_CAP; 0 on WAIT_READY and STOP
    gpu_milli: int = 1000  # share of each listed GPU: 1000 for whole-GPU replicas


@dataclass(frozen=True)
class BlockedMove:
    """A start that fits no intermediate state without taking some replica down first, and why."""

    workload: str
    node: str  # where the new copy is to start
    gpu_indices: tuple[int, ...]
    rule: str  # what is short: "gpu_count", "gpu_share", "gpu_memory", "host_resources", "domain_power", "site_power"
    message: str  # plain language with the numbers
    requested: float = 0.0  # what the start needs, in ``unit``
    available: float = 0.0  # what ``where`` has left, in ``unit``
    unit: str = ""
    where: str = ""  # a node, "node/gpuK", "site/power domain" or a site


@dataclass(frozen=True)
class Downtime:
    """A replica stopped before its replacement was ready (break-before-make)."""

    workload: str
    node: str  # where the stopped replica ran
    gpu_indices: tuple[int, ...]
    stop_step: int  # 1-based number of the step that stops it
    steps_down: int  # steps until a replacement of the workload is ready again
    within_budget: bool  # the workload stayed at or above min_replicas - max_unavailable, spread and
    #                      site-loss survival kept (a planned break); False: the fallback took it down


@dataclass(frozen=True)
class PowerPeak:
    """IT draw of a site or power domain (kind "site" / "power_domain") over a migration."""

    kind: str
    name: str
    site: str
    usable_w: int
    start_w: int  # before the first step
    peak_w: int  # the highest draw of any intermediate state
    peak_step: int  # the first step that reaches it (0: the starting state)
    end_w: int  # after the last step (the plan's draw)


@dataclass(frozen=True)
class Migration:
    """How to get from the current placement to a plan, one step at a time (make-before-break).

    ``safe``: no move is blocked and every break stays within the workloads' budgets.
    ``domain_peaks`` lists the power domains some step changes; ``site_peaks`` every site.
    """

    steps: tuple[MigrationStep, ...] = ()
    blocked: tuple[BlockedMove, ...] = ()
    downtime: tuple[Downtime, ...] = ()
    site_peaks: tuple[PowerPeak, ...] = ()
    domain_peaks: tuple[PowerPeak, ...] = ()
    safe: bool = True


@dataclass(frozen=True)
class Plan:
    placements: tuple[ReplicaPlacement, ...]
    budgets: PowerBudgets
    unplaced: tuple[UnplacedWorkload, ...]
    objective: ObjectiveTiers
    info: SolveInfo
    displaced: tuple[Displaced, ...] = ()
    move_curve: tuple[MovePoint, ...] = ()  # ``moves.move_curve``: gain against moves, a few budgets
    migration: Migration | None = None  # re-plans: the order of steps from the current placement
