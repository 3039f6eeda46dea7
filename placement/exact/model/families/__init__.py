"""Constraint families of the formulation, one module each (see ``placement.exact.model``)."""
