"""Benchmarks and baselines: ``fleetplace bench`` (every method on the same instances), the
Alibaba allocation protocols, the textbook pair MIP, and the service's load and fuzz runs."""
