"""Versioned, idempotent schemas of every database, applied by `aitrading db migrate`."""
