"""The objective's move price: the placed work a re-plan's moves cost (tier 1 is placed work less it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleetplace_plans") as batch:
        batch.add_column(sa.Column("move_price", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("fleetplace_plans") as batch:
        batch.drop_column("move_price")
