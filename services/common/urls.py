"""Where one service finds another: the configured URL, or the local port in development."""

from __future__ import annotations

from aitrading.core.infrastructure.config_manager import Settings


def database_service_url(settings: Settings) -> str:
    configured = settings.services.database_service_url
    return configured or f"http://127.0.0.1:{settings.services.database_service_port}"


def data_bridge_url(settings: Settings) -> str:
    configured = settings.services.data_bridge_url
    return configured or f"http://127.0.0.1:{settings.services.data_bridge_port}"


def trading_engine_url(settings: Settings) -> str:
    configured = settings.services.trading_engine_url
    return configured or f"http://127.0.0.1:{settings.services.trading_engine_port}"


def api_gateway_url(settings: Settings) -> str:
    """The gateway on this machine (`make demo`, `aitrading serve api-gateway`): what the CLI's
    clients talk to unless told otherwise."""
    return f"http://127.0.0.1:{settings.services.api_gateway_port}"
