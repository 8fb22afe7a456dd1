"""The FastAPI services: api-gateway (8000), data-bridge (8001), trading-engine (8007) and
database-service (8008). Each is built by a `create_app(settings)` factory."""
