"""One Redis pub/sub subscription kept for the life of a component.

The entitlement watcher, the live feed and the instruction wake-ups each listened to a
channel; two of them ended for good the first time the store went away, so a Redis restart
silently stopped entitlement changes and live ticks until the pod restarted. Here the
subscription is made again after a pause, the gap shows in health (degraded, naming the
error), and `on_resubscribed` lets a subclass make up for messages it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from aitrading.core.infrastructure.background import Worker
from aitrading.core.infrastructure.central_hub import Health

_log = logging.getLogger(__name__)
RETRY_S = 1.0
START_TIMEOUT_S = 10.0


class SilentReconnectError(ValueError):
    """A listener was handed a client whose connections retry: its PubSub would reconnect
    without telling the listener, which then never learns that messages were missed."""


def reconnects_silently(redis: aioredis.Redis) -> bool:
    """True when the client's connections retry a failed read (redis-py's `Redis()` retries
    ten times by default; `RedisStore.listener` never does)."""
    retry = redis.connection_pool.connection_kwargs.get("retry")
    return retry is not None and retry.get_retries() > 0


class ChannelListener(Worker):
    def __init__(self, name: str, redis: aioredis.Redis, channel: str) -> None:
        if reconnects_silently(redis):
            raise SilentReconnectError(
                f"{name}: the Redis client for a subscription must not retry; "
                "pass RedisStore.listener, not RedisStore.client"
            )
        super().__init__(name)
        self._redis = redis
        self._channel = channel
        self._first_attempt = asyncio.Event()
        self._lost = ""  # why the subscription is down; empty while subscribed

    async def start(self) -> None:
        """Returns once subscribed, or once the first attempt failed (then retried in the
        background and reported in health): a store that is down does not stop a start."""
        self._loop.start(self._run())
        await asyncio.wait_for(self._first_attempt.wait(), START_TIMEOUT_S)

    async def stop(self) -> None:
        await self._loop.stop()

    async def health(self) -> Health:
        if self._lost and self._loop.running:
            return Health.degraded(f"{self._channel} subscription lost ({self._lost}); retrying")
        return self._loop.health()

    async def on_message(self, data: Any) -> None:
        """One message's payload (bytes); a bad one is the subclass's to skip."""
        raise NotImplementedError

    def on_resubscribed(self) -> None:
        """Called after the subscription came back: messages in the gap were missed."""

    async def _deliver(self, data: Any) -> None:
        try:
            await self.on_message(data)
        except Exception:  # one message's handler failing must not end the subscription
            _log.exception("%s could not handle a message on %s", self.name, self._channel)

    async def _run(self) -> None:
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if self._lost:
                    _log.info("%s subscribed again to %s", self.name, self._channel)
                    self._lost = ""
                    self.on_resubscribed()
                self._first_attempt.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store went away: report it and subscribe again
                self._lost = type(exc).__name__
                _log.warning("%s lost %s: %s", self.name, self._channel, self._lost)
                self._first_attempt.set()
                await asyncio.sleep(RETRY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
