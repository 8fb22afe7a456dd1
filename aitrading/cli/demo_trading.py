"""The demo's trader: a demo login created on first start, and orders placed through the
gateway so the whole order path runs in `make demo`.

The login (email and a random password) is created once, written to
`<data_dir>/demo-login.json` with mode 0600 and reused afterwards; the demo prints it so a
user can paste it into `curl`. Orders go gateway → trading-engine → data-bridge → the
simulated terminal → execution reports, exactly as a user's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings

DEMO_EMAIL = "demo@aitrading.example"
ORDER_EVERY_S = 5.0


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    user_id: str
    created_now: bool


def login_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "demo-login.json"


async def ensure_demo_login(settings: Settings) -> DemoLogin:
    """The demo user (pro plan), created on the first start and reused after."""
    from aitrading.core.security.subscription_validator import SubscriptionValidator
    from aitrading.core.security.users import UserStore
    from aitrading.core.stores.postgres import PostgresStore
    from aitrading.core.stores.redis_store import RedisStore

    path = login_file(settings)
    if path.exists():
        saved = json.loads(path.read_text())
        return DemoLogin(saved["email"], saved["password"], saved["user_id"], False)
    postgres = await PostgresStore.create(settings)
    redis = RedisStore.create(settings)
    try:
        validator = SubscriptionValidator(postgres.pool, redis.client)
        password = secrets.token_urlsafe(18)
        users = UserStore(postgres.pool)
        existing = await postgres.pool.fetchval("SELECT id FROM users WHERE email = $1", DEMO_EMAIL)
        if existing is not None:  # the file was removed: a fresh password for the same user
            await users.set_password(existing, password)
            user_id = str(existing)
        else:
            user_id = (await users.create(DEMO_EMAIL, password)).id
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
        await validator.subscribe(user_id, "pro", until)
    finally:
        await postgres.close()
        await redis.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"email": DEMO_EMAIL, "password": password, "user_id": user_id}, handle)
    return DemoLogin(DEMO_EMAIL, password, user_id, True)


class DemoLoginHolder:
    """The demo login, made once when first asked for (after the schema exists)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._login: DemoLogin | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> DemoLogin:
        async with self._lock:
            if self._login is None:
                self._login = await ensure_demo_login(self._settings)
            return self._login


class DemoTrader:
    """Places a small market order through the gateway every few seconds (alternating
    sides, so the position stays small) and shows how they end in its health line."""

    name = "demo-trader"
    critical = False

    def __init__(
        self,
        gateway_url: str,
        login: DemoLoginHolder,
        account: str,
        depends_on: tuple[str, ...] = ("api-gateway", "mt5-sim"),
    ) -> None:
        self.depends_on = depends_on
        self._url = gateway_url
        self._login = login
        self._account = account
        self._http = httpx.AsyncClient(base_url=gateway_url, timeout=10)
        self._task: asyncio.Task[None] | None = None
        self.outcomes: Counter[str] = Counter()
        self._placed: list[str] = []
        self._error = ""

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="demo-trader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._http.aclose()

    async def health(self) -> Health:
        if self._error:
            return Health.degraded(self._error)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(self.outcomes.items()))
        return Health.healthy(f"{len(self._placed)} orders placed: {summary or 'none yet'}")

    async def _run(self) -> None:
        headers: dict[str, str] = {}
        side = "buy"
        while True:
            try:
                if not headers:
                    login = await self._login.get()
                    answer = await self._http.post(
                        "/auth/token", json={"email": login.email, "password": login.password}
                    )
                    answer.raise_for_status()
                    headers = {"authorization": f"Bearer {answer.json()['access_token']}"}
                placed = await self._http.post(
                    "/api/v1/orders",
                    json={
                        "client_order_id": f"demo-{uuid.uuid4().hex[:12]}",
                        "account": self._account,
                        "symbol": "EURUSD",
                        "side": side,
                        "type": "market",
                        "volume": 0.1,
                    },
                    headers=headers,
                )
                if placed.status_code == 401:
                    headers = {}  # the access token expired: log in again
                    continue
                placed.raise_for_status()
                self._placed.append(placed.json()["id"])
                side = "sell" if side == "buy" else "buy"
                await self._tally(headers)
                self._error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # shown in the health table; the demo keeps running
                self._error = f"orders failing: {type(exc).__name__}: {exc}"
            await asyncio.sleep(ORDER_EVERY_S)

    async def _tally(self, headers: dict[str, str]) -> None:
        answer = await self._http.get("/api/v1/orders", params={"limit": 1000}, headers=headers)
        answer.raise_for_status()
        mine = set(self._placed)
        self.outcomes = Counter(o["status"] for o in answer.json()["orders"] if o["id"] in mine)
