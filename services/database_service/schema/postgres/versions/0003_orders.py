"""orders: the trading-engine's orders, their append-only events, positions, trading states

Revision ID: 0003
Revises: 0002

Revision 0001 created `orders` and `positions` tables that nothing ever wrote (no
trading-engine existed); they are replaced here by the shapes the order state machine needs.
`order_events` is append-only for the runtime role (like the audit log): the history of an
order cannot be rewritten by a service. The DDL is frozen here.
"""

from aitrading.services.database_service.schema.postgres import execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
DROP TABLE IF EXISTS positions;
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
    id text PRIMARY KEY,
    client_order_id text NOT NULL,
    user_id text NOT NULL REFERENCES users (id),
    account text NOT NULL DEFAULT '',
    target text NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    type text NOT NULL CHECK (type IN ('market', 'limit', 'stop')),
    time_in_force text NOT NULL CHECK (time_in_force IN ('gtc', 'day', 'ioc', 'fok')),
    volume numeric(20, 8) NOT NULL CHECK (volume > 0),
    price numeric(24, 10) CHECK (price > 0),
    sl numeric(24, 10) CHECK (sl > 0),
    tp numeric(24, 10) CHECK (tp > 0),
    status text NOT NULL CHECK (status IN ('initialized', 'denied', 'submitted', 'accepted',
        'rejected', 'partially_filled', 'filled', 'pending_cancel', 'canceled', 'expired')),
    filled_volume numeric(20, 8) NOT NULL DEFAULT 0 CHECK (filled_volume >= 0),
    avg_fill_price numeric(24, 10),
    ticket bigint,
    retcode integer,
    denied_by text,
    reason text,
    instruction text,
    instruction_entry text,
    instruction_expires_at timestamptz,
    reported boolean NOT NULL DEFAULT false,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, client_order_id)
);
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC);
CREATE INDEX orders_target_working ON orders (target)
    WHERE status IN ('initialized', 'submitted', 'accepted', 'partially_filled', 'pending_cancel');
CREATE TABLE order_events (
    order_id text NOT NULL REFERENCES orders (id),
    version integer NOT NULL,
    from_status text,
    to_status text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (order_id, version)
);
CREATE OR REPLACE FUNCTION order_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only';
END $$;
CREATE TRIGGER order_events_no_change BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_append_only();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
    FOR EACH STATEMENT EXECUTE FUNCTION order_events_append_only();
CREATE TABLE positions (
    target text NOT NULL,
    ticket bigint NOT NULL,
    user_id text NOT NULL,
    login bigint NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    volume numeric(20, 8) NOT NULL CHECK (volume >= 0),
    price_open numeric(24, 10) NOT NULL,
    price_current numeric(24, 10) NOT NULL,
    profit numeric(24, 4) NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, ticket)
);
CREATE INDEX positions_user ON positions (user_id);
CREATE TABLE trading_states (
    scope text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('active', 'reducing', 'halted')),
    reason text NOT NULL DEFAULT '',
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'aitrading_runtime') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON orders, positions, trading_states
            TO aitrading_runtime;
        GRANT SELECT, INSERT ON order_events TO aitrading_runtime;
        REVOKE UPDATE, DELETE, TRUNCATE ON order_events FROM aitrading_runtime;
    END IF;
END $$;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    raise RuntimeError("0003 replaces tables; restore from a backup instead of downgrading")
