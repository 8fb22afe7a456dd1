"""Market data shared by every process that touches it: the connector, data-bridge and
database-service validate a tick with the same rules (`ticks.py`)."""
