"""The problem and the plan: domain types, input checks, the candidate filter, the placement
state and its rule kernel, power budgets, the objective, the one plan assembly, the
independent verifier and the explanations. Every other subpackage stands on this one; it
imports none of them."""
