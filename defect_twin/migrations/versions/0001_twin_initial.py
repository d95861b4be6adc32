"""the line twin's first schema: events (idempotent by id), alarms, baselines

Revision ID: 0001_twin_initial
Revises:
Create Date: 2025-01-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0001_twin_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # The schema as it stood at this revision, frozen (later changes are new revisions); `twin.META` must match the
    # head revision, which the twin notebook and tests/test_twin_postgres.py check with Alembic's compare_metadata.
    op.create_table(
        "twin_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True), sa.Column("id", sa.String(128), nullable=False),
        sa.Column("station", sa.String(64), nullable=False), sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.Double, nullable=False), sa.Column("part", sa.String(128)), sa.Column("verdict", sa.String(16)),
        sa.Column("score", sa.Double), sa.Column("threshold", sa.Double),
        sa.Column("defect_area", sa.Double), sa.Column("defect_type", sa.String(64)),
        sa.Column("state", sa.String(16)), sa.Column("reason", sa.String(256)), sa.Column("received", sa.Double, nullable=False),
        sa.UniqueConstraint("id", name="uq_twin_events_id"),
    )
    op.create_index("ix_twin_events_station_seq", "twin_events", ["station", "seq"])
    op.create_table(
        "twin_alarms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("station", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False), sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("first_part", sa.String(128)), sa.Column("signal_part", sa.String(128)),
        sa.Column("signal_seq", sa.Integer, nullable=False), sa.Column("raised", sa.Double, nullable=False),
        sa.Column("last_part", sa.String(128)), sa.Column("count", sa.Integer, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False), sa.Column("action", sa.String(512), nullable=False),
        sa.Column("acked", sa.Boolean, nullable=False), sa.Column("acked_at", sa.Double), sa.Column("acked_by", sa.String(128)),
        sa.Column("note", sa.String(1024)),
    )
    op.create_index("ix_twin_alarms_station", "twin_alarms", ["station", "acked"])
    op.create_table(
        "twin_baselines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), sa.Column("station", sa.String(64), nullable=False),
        sa.Column("start_seq", sa.Integer, nullable=False), sa.Column("created", sa.Double, nullable=False),
        sa.Column("reason", sa.String(256)),
    )


def downgrade():
    op.drop_table("twin_baselines")
    op.drop_index("ix_twin_alarms_station", table_name="twin_alarms")
    op.drop_table("twin_alarms")
    op.drop_index("ix_twin_events_station_seq", table_name="twin_events")
    op.drop_table("twin_events")
