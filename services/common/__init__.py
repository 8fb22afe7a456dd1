"""What every FastAPI service shares: errors, request ids and tracing, health, metrics."""
