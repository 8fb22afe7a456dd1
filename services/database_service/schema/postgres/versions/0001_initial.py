"""initial schema: users, keys, subscriptions, audit, errors, retention, chains, orders

Revision ID: 0001
Revises:
"""

from aitrading.core.infrastructure.error_handler import ERROR_GROUPS_DDL
from aitrading.core.security.audit_logger import audit_ddl
from aitrading.core.security.subscription_validator import SCHEMA_DDL as SUBSCRIPTIONS_DDL
from aitrading.services.database_service.schema.postgres import execute_script

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OWN_TABLES = """
CREATE TABLE IF NOT EXISTS users (
    id text PRIMARY KEY,
    email text NOT NULL UNIQUE CHECK (position('@' in email) > 1),
    password_hash text NOT NULL,
    role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'service')),
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS api_keys (
    id text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash text NOT NULL UNIQUE,
    name text NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE TABLE IF NOT EXISTS log_retention_policies (
    level text PRIMARY KEY CHECK (level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    hot_hours integer NOT NULL CHECK (hot_hours > 0),
    warm_days integer NOT NULL CHECK (warm_days > 0),
    retention_days integer NOT NULL CHECK (retention_days >= warm_days),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS chain_definitions (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    name text NOT NULL,
    entry_service text NOT NULL,
    steps jsonb NOT NULL CHECK (jsonb_typeof(steps) = 'array'),
    sla_p99_ms integer CHECK (sla_p99_ms > 0),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS orders (
    id text PRIMARY KEY,
    client_order_id text NOT NULL,
    user_id text NOT NULL REFERENCES users (id),
    account text NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    type text NOT NULL CHECK (type IN ('market', 'limit', 'stop', 'stop_limit')),
    volume numeric(20, 8) NOT NULL CHECK (volume > 0),
    price numeric(20, 10) CHECK (price > 0),
    stop_price numeric(20, 10) CHECK (stop_price > 0),
    status text NOT NULL
        CHECK (status IN ('new', 'accepted', 'rejected', 'filled', 'partially_filled', 'canceled')),
    reject_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, client_order_id)
);
CREATE INDEX IF NOT EXISTS orders_user_created ON orders (user_id, created_at DESC);
CREATE TABLE IF NOT EXISTS positions (
    account text NOT NULL,
    symbol text NOT NULL,
    user_id text NOT NULL REFERENCES users (id),
    volume numeric(20, 8) NOT NULL,
    avg_price numeric(20, 10) NOT NULL CHECK (avg_price >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, symbol)
);
"""


def upgrade() -> None:
    for ddl in (OWN_TABLES, SUBSCRIPTIONS_DDL, ERROR_GROUPS_DDL, audit_ddl("public")):
        execute_script(ddl)


def downgrade() -> None:
    raise RuntimeError("0001 is the initial schema; restore from a backup instead of downgrading")
