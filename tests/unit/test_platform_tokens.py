"""ConnectorTokens: one token per lifetime, renewed before its end, one mint for links that
ask at once, and a refusal that never carries the API key. The gateway is an
httpx.MockTransport here (the unit under test is the cache); test_connector_tokens.py runs
it against the real gateway and bridge."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from aitrading.client.metatrader_connector.platform_tokens import (
    ConnectorTokens,
    TokenRefusedError,
)

KEY = "ak_live_secret_123"


class Gateway:
    """Mints `t1`, `t2`, … with the given lifetime; counts calls; checks the key header."""

    def __init__(self, lifetime: int = 600, status: int = 200) -> None:
        self.lifetime = lifetime
        self.status = status
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/auth/connector-token"
        assert request.headers["x-api-key"] == KEY
        self.calls += 1
        if self.status != 200:
            body = {"error": {"code": "unauthorized", "message": "a valid X-API-Key is required"}}
            return httpx.Response(self.status, content=json.dumps(body))
        body = {"access_token": f"t{self.calls}", "expires_in": self.lifetime}
        return httpx.Response(200, json=body)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def tokens(gateway: Gateway, clock: Clock, margin_s: float = 60) -> ConnectorTokens:
    return ConnectorTokens(
        "https://gw.example/",
        KEY,
        margin_s=margin_s,
        clock=clock,
        transport=httpx.MockTransport(gateway.handle),
    )


def test_a_token_is_reused_until_a_margin_before_its_end_then_renewed() -> None:
    gateway, clock = Gateway(lifetime=600), Clock()
    source = tokens(gateway, clock)

    async def run() -> list[str]:
        got = [await source()]
        clock.now += 539  # 61 s left: still the same token
        got.append(await source())
        clock.now += 2  # 59 s left: renewed
        got.append(await source())
        return got

    assert asyncio.run(run()) == ["t1", "t1", "t2"]
    assert gateway.calls == 2
    assert source.minted == 2


def test_a_short_lived_token_is_kept_for_half_its_life() -> None:
    """A margin longer than the lifetime must not mean a mint per connect."""
    gateway, clock = Gateway(lifetime=30), Clock()
    source = tokens(gateway, clock, margin_s=60)

    async def run() -> list[str]:
        got = [await source()]
        clock.now += 14
        got.append(await source())
        clock.now += 2
        got.append(await source())
        return got

    assert asyncio.run(run()) == ["t1", "t1", "t2"]


def test_links_asking_at_once_share_one_mint() -> None:
    gateway, clock = Gateway(), Clock()
    source = tokens(gateway, clock)

    async def run() -> list[str]:
        return list(await asyncio.gather(*(source() for _ in range(5))))

    assert asyncio.run(run()) == ["t1"] * 5
    assert gateway.calls == 1


@pytest.mark.parametrize("status", [401, 403, 503])
def test_a_refusal_says_why_without_the_key_and_is_asked_again_next_time(status: int) -> None:
    gateway, clock = Gateway(status=status), Clock()
    source = tokens(gateway, clock)
    with pytest.raises(TokenRefusedError) as refused:
        asyncio.run(source())
    assert str(status) in str(refused.value)
    assert "a valid X-API-Key is required" in str(refused.value)
    assert KEY not in str(refused.value)
    gateway.status = 200
    assert asyncio.run(source()) == "t2"  # nothing cached from the refusal
