"""initial schema: users, keys, subscriptions, audit, errors, retention, chains, orders

Revision ID: 0001
Revises:

Frozen: this file holds its own DDL (it used to import live constants from the library, so an
edit there silently changed a released revision). Later changes go into later revisions;
`tests/unit/test_frozen_migrations.py` fails when a released revision's text changes.
"""

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

SUBSCRIPTIONS = """
CREATE TABLE IF NOT EXISTS subscription_plans (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    tier text NOT NULL CHECK (tier IN ('free', 'basic', 'pro', 'enterprise')),
    entitlements jsonb NOT NULL CHECK (jsonb_typeof(entitlements) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS subscriptions (
    user_id text PRIMARY KEY,
    plan_id text NOT NULL REFERENCES subscription_plans (id),
    status text NOT NULL
        CHECK (status IN ('active', 'trialing', 'past_due', 'canceled', 'unpaid')),
    current_period_end timestamptz NOT NULL,
    grace_period_s integer NOT NULL CHECK (grace_period_s >= 0),
    entitlement_version bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

ERROR_GROUPS = """
CREATE TABLE IF NOT EXISTS error_groups (
    fingerprint     text PRIMARY KEY,
    service         text NOT NULL,
    exception_type  text NOT NULL,
    category        text NOT NULL,
    retryable       boolean NOT NULL,
    recovery_hints  jsonb NOT NULL,
    signature       jsonb NOT NULL,
    sample          text NOT NULL,
    count           bigint NOT NULL,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS error_groups_last_seen ON error_groups (last_seen DESC);
"""

AUDIT = """
CREATE SCHEMA IF NOT EXISTS public;
CREATE TABLE IF NOT EXISTS public.audit_log (
    seq bigint PRIMARY KEY,
    ts timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    resource text NOT NULL,
    outcome text NOT NULL,
    payload jsonb NOT NULL,
    prev_hash char(64) NOT NULL,
    hash char(64) NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS public.audit_checkpoints (
    seq bigint PRIMARY KEY,
    hash char(64) NOT NULL,
    signed_at timestamptz NOT NULL,
    kid text NOT NULL,
    signature text NOT NULL
);
CREATE OR REPLACE FUNCTION public.audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % on % refused',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS audit_log_append_only ON public.audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON public.audit_log
    FOR EACH ROW EXECUTE FUNCTION public.audit_append_only();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON public.audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON public.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_append_only();
DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON public.audit_checkpoints;
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON public.audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION public.audit_append_only();
"""


def upgrade() -> None:
    for ddl in (OWN_TABLES, SUBSCRIPTIONS, ERROR_GROUPS, AUDIT):
        execute_script(ddl)


def downgrade() -> None:
    raise RuntimeError("0001 is the initial schema; restore from a backup instead of downgrading")
