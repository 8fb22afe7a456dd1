"""One client factory per database, built from settings: pooled, TLS-checked, health-checked.

No service opens its own database connections: it asks `aitrading.core.stores` for the
store, whose `health()` does a real round trip with a timeout. Embedded development servers
(PostgreSQL, redis-server, chdb) live in `aitrading.core.stores.embedded`.
"""
