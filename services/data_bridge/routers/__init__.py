"""data-bridge's routes, one module per resource: connector ingest and the live stream."""
