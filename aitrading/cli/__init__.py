"""The `aitrading` command line: one entry point for stores, config, services and the operator."""
