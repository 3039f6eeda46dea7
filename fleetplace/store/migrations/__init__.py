"""Alembic migrations of the plan store (``env.py``, ``versions/``); run by ``PlanStore`` on open."""
