"""api-gateway (port 8000): the single door to the platform."""

PORT = 8000
