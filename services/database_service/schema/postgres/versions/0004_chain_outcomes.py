"""chain outcomes: each gateway replica's per-window call-chain statistics

Revision ID: 0004
Revises: 0003

The gateway's chain registry kept its outcomes in each replica's memory, so `/api/v1/chains`
answered for one replica and forgot everything at a restart. Each replica now writes one row
per chain and window (requests, errors, a latency histogram with fixed bounds) and every
replica reads the same sums. Rows older than the retention are deleted by the writer. The
DDL is frozen here.
"""

from aitrading.services.database_service.schema.postgres import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE chain_outcomes (
    chain_id text NOT NULL CHECK (chain_id ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    replica text NOT NULL CHECK (length(replica) BETWEEN 1 AND 253),
    window_end timestamptz NOT NULL,
    requests integer NOT NULL CHECK (requests > 0),
    errors integer NOT NULL CHECK (errors >= 0 AND errors <= requests),
    latency_buckets integer[] NOT NULL CHECK (cardinality(latency_buckets) BETWEEN 1 AND 64),
    PRIMARY KEY (chain_id, replica, window_end)
);
CREATE INDEX chain_outcomes_recent ON chain_outcomes (window_end DESC);
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'aitrading_runtime') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON chain_outcomes TO aitrading_runtime;
    END IF;
END $$;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script("DROP TABLE chain_outcomes;")
