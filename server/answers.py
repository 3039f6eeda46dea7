"""A request's own answers, computed the same way in the serving thread and in a worker
process: the valid problem of a request (every input problem at once, with its field path),
``Verify``'s and ``Explain``'s answers, and the plan that places nothing when no plan came in
time. Nothing here knows about calls, deadlines or pools."""

from __future__ import annotations

from placement import explain
from placement.core.budgets import compute_budgets
from placement.core.domain import Plan, Problem, Reason, SolveInfo, SolveStatus, StopReason, UnplacedWorkload
from placement.core.errors import FieldError, InputError
from placement.core.objective import evaluate
from placement.core.validate import validate_request
from placement.core.verify_sequence import verify_all
from server.errors import InvalidArgument
from wire import convert
from wire.gen.placement.v1 import placement_pb2 as pb


def _prefixed(errors: list[FieldError] | tuple[FieldError, ...], prefix: str) -> list[FieldError]:
    return [FieldError(prefix + e.path, e.message) for e in errors]


def problem_of(request: pb.PlaceRequest, prefix: str = "") -> Problem:
    """The valid domain instance of a request, or ``InvalidArgument`` with every problem (paths under ``prefix``)."""
    problem, errors = convert.problem_and_errors_from_request(request)
    errors += validate_request(problem)
    if errors:
        raise InvalidArgument(_prefixed(errors, prefix))
    return problem


def no_solution_plan(problem: Problem, why: str, stop_reason: StopReason) -> Plan:
    """A plan that places nothing, every workload unplaced with ``why``: the answer when no plan came in time."""
    reason = Reason("no_solution", why, 0)
    return Plan(
        placements=(),
        budgets=compute_budgets(problem, ()),
        unplaced=tuple(UnplacedWorkload(w.name, (reason,)) for w in problem.workloads),
        objective=evaluate(problem, ()),
        info=SolveInfo(
            status=SolveStatus.NO_SOLUTION,
            stop_reason=stop_reason,
            backend=problem.options.backend.value,
            seed=problem.options.seed,
        ),
    )


def verify_response(request: pb.VerifyRequest) -> pb.VerifyResponse:
    """``Verify``'s answer (in the serving thread or a checker process)."""
    problem = problem_of(request.request, "request.")
    try:
        plan = convert.plan_from_proto(request.plan)
    except InputError as e:
        raise InvalidArgument(_prefixed(e.errors, "plan.")) from None
    violations = verify_all(problem, plan)  # and the migration the plan carries
    return pb.VerifyResponse(
        violations=[convert.violation_to_proto(v) for v in violations], valid=not violations
    )


def explain_response(request: pb.ExplainRequest) -> pb.ExplainResponse:
    """``Explain``'s answer (in the serving thread or a checker process)."""
    problem = problem_of(request.request, "request.")
    errors: list[FieldError] = []
    names = {w.name for w in problem.workloads}
    if not request.workload:
        errors.append(FieldError("workload", "is required: the name of a workload of the request"))
    elif request.workload not in names:
        errors.append(FieldError("workload", f"unknown workload {request.workload!r}"))
    if request.site and request.site not in {s.name for s in problem.fleet.sites}:
        errors.append(FieldError("site", f"unknown site {request.site!r}"))
    plan = None
    if request.HasField("plan"):
        try:
            plan = convert.plan_from_proto(request.plan)
        except InputError as e:
            errors += _prefixed(e.errors, "plan.")
    if errors:
        raise InvalidArgument(errors)
    # with a plan: the filter's reasons and what keeps the workload out of that plan as it stands
    found = explain(problem, request.workload, request.site or None, plan)
    reasons = [convert.reason_to_proto(r) for r in found]
    placed = plan is not None and any(p.workload == request.workload for p in plan.placements)
    return pb.ExplainResponse(reasons=reasons, placed=placed)
