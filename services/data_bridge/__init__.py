"""data-bridge (port 8001): MT5 ticks over WebSocket, validated, durable, fanned out."""

PORT = 8001
