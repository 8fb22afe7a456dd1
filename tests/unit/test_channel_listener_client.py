"""A subscription is only as honest as its client: one that retries hides its own loss."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from aitrading.core.infrastructure.channel_listener import SilentReconnectError
from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.security.subscription_validator import EntitlementWatcher
from aitrading.core.stores.redis_store import RedisStore


def test_a_listener_refuses_a_client_that_reconnects_behind_it() -> None:
    with pytest.raises(SilentReconnectError) as refused:
        EntitlementWatcher(aioredis.Redis())  # redis-py's default retries ten times
    assert "RedisStore.listener" in str(refused.value)


def test_the_stores_listener_client_is_accepted_and_its_command_client_refused(
    tmp_path: object,
) -> None:
    env = {"AITRADING_DATA_DIR": str(tmp_path)}
    store = RedisStore.create(load_settings(environ=env).settings)  # connects lazily
    EntitlementWatcher(store.listener)
    with pytest.raises(SilentReconnectError):
        EntitlementWatcher(store.client)
