"""runtime role: services write through a role that cannot rewrite the audit log

Revision ID: 0002
Revises: 0001

The tables belong to the role that runs migrations (the owner). Services connect as logins
that are members of `aitrading_runtime`: they read and write the application tables, may only
INSERT and SELECT the audit log and its checkpoints, and — not owning anything — cannot
disable the append-only triggers, truncate, or replace the trigger function. The DDL is frozen
here; later changes go into later revisions.
"""

from aitrading.services.database_service.schema.postgres import execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aitrading_runtime') THEN
        CREATE ROLE aitrading_runtime NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END $$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO aitrading_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO aitrading_runtime;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO aitrading_runtime;
REVOKE UPDATE, DELETE, TRUNCATE ON public.audit_log, public.audit_checkpoints
    FROM aitrading_runtime;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.alembic_version FROM aitrading_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO aitrading_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO aitrading_runtime;
"""

DOWNGRADE = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM aitrading_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE USAGE, SELECT, UPDATE ON SEQUENCES FROM aitrading_runtime;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM aitrading_runtime;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM aitrading_runtime;
REVOKE USAGE ON SCHEMA public FROM aitrading_runtime;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
