"""The order path: risk-check, persist, sign, queue for the connector, apply its reports.

PostgreSQL is the source of truth (every step a transition of the order's state machine,
written before anything is sent), the Redis-protocol stream only carries instructions to the
connector. So a restart of this process, a bridge or the connector loses nothing: orders
resume from their rows, instructions missing from the stream are queued again, and orders no
connector answered in time expire by a sweep that every replica may run (each transition
locks its row, so two sweepers cannot both expire one order).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram

from aitrading.core.infrastructure.background import BackgroundTask
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import TradingEngineSettings
from aitrading.core.market.connector_channels import InstructionQueue, LatestAccounts, Presence
from aitrading.core.market.order_instructions import InstructionKind, sign_instruction
from aitrading.core.security.jwt_manager import KeyRing
from aitrading.core.security.subscription_validator import SubscriptionValidator
from aitrading.services.trading_engine.order_model import (
    REPORT_TARGET,
    TERMINAL,
    IllegalTransitionError,
    OrderRequest,
    OrderStatus,
    ReportStatus,
)
from aitrading.services.trading_engine.order_store import Order, OrderStore
from aitrading.services.trading_engine.risk_rules import (
    AccountSnapshot,
    Denial,
    LatestPrice,
    RiskContext,
    check,
    stricter,
)

_log = logging.getLogger(__name__)
LATEST_TICKS = "aitrading:ticks:latest"  # data-bridge's latest tick per symbol (fanout.py)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "aitrading_trading_engine_orders",
            "Orders entering each state",
            ["state"],
            registry=registry,
        )
        self.denials = Counter(
            "aitrading_trading_engine_risk_denials",
            "Orders denied by pre-trade risk, by rule",
            ["rule"],
            registry=registry,
        )
        self.risk_latency = Histogram(
            "aitrading_trading_engine_risk_check_seconds",
            "Time the pre-trade rules take for one order (context gathered)",
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01),
            registry=registry,
        )
        self.late_reports = Counter(
            "aitrading_trading_engine_late_reports",
            "Execution reports for orders already final (kept as events, state unchanged)",
            registry=registry,
        )


class NotYoursError(PermissionError):
    """The order exists but belongs to another user or connector."""


@dataclass(frozen=True)
class ExecutionReport:
    """A connector's answer to an instruction (the `execution_report` frame)."""

    order_id: str
    status: ReportStatus
    retcode: int | None = None
    ticket: int | None = None
    filled_volume: float = 0.0  # cumulative
    fill_price: float | None = None  # of this fill
    message: str = ""


def target_of(user_id: str, account: str | None) -> str:
    """The connector source an order goes to: the user's own connector, by terminal name."""
    return f"{user_id}:{account}" if account else user_id


class OrderEngine:
    def __init__(
        self,
        limits: TradingEngineSettings,
        store: OrderStore,
        redis: aioredis.Redis,
        subscriptions: SubscriptionValidator,
        keys: KeyRing,
        issuer: str,
        metrics: EngineMetrics,
    ) -> None:
        self.limits = limits
        self.store = store
        self._redis = redis
        self.queue = InstructionQueue(redis)
        self.presence = Presence(redis)
        self.accounts = LatestAccounts(redis)
        self._subscriptions = subscriptions
        self._keys = keys
        self._issuer = issuer
        self.metrics = metrics

    # placing ---------------------------------------------------------------------------

    async def submit(self, user_id: str, request: OrderRequest) -> tuple[Order, bool]:
        """The order after risk and queueing, and whether it is new (False: a resubmission
        of the same `client_order_id`, answered with the order as it is)."""
        target = target_of(user_id, request.account)
        order, created = await self.store.create(uuid.uuid4().hex, user_id, target, request)
        if not created:
            return order, False
        self.metrics.transitions.labels(OrderStatus.INITIALIZED.value).inc()
        ctx = await self.context(user_id, target, order.id, request)
        started = time.perf_counter()
        denial = check(ctx, self.limits)
        self.metrics.risk_latency.observe(time.perf_counter() - started)
        refuse_offline = self.limits.when_no_connector == "refuse"
        if denial is None and refuse_offline and not await self.presence.online(target):
            denial = Denial("connector_offline", f"no connector of {target} is online")
        if denial is not None:
            self.metrics.denials.labels(denial.rule).inc()
            return await self._move(
                order, OrderStatus.DENIED, "risk", denied_by=denial.rule, reason=denial.message
            ), True
        return await self._dispatch(order, InstructionKind.PLACE, OrderStatus.SUBMITTED), True

    async def context(
        self, user_id: str, target: str, order_id: str, request: OrderRequest
    ) -> RiskContext:
        """Everything the rules need, gathered concurrently."""
        entitlement, exposure, states, price, account = await asyncio.gather(
            self._subscriptions.entitlements(user_id),
            self.store.exposure(
                target, request.symbol, request, order_id, self.limits.duplicate_window_s
            ),
            self.store.trading_state(target),
            self.latest_price(request.symbol),
            self.accounts.get(target),
        )
        return RiskContext(
            order=request,
            entitlements=entitlement.entitlements,
            spec=self.limits.spec(request.symbol),
            price=price,
            account=_snapshot(account),
            position=exposure.position,
            account_volume=exposure.account_volume,
            open_orders=exposure.open_orders,
            orders_last_minute=exposure.orders_last_minute,
            duplicate_of=exposure.duplicate_of,
            state=stricter(*states),
            now_ms=int(time.time() * 1000),
        )

    async def latest_price(self, symbol: str) -> LatestPrice | None:
        raw = await self._redis.hget(LATEST_TICKS, symbol)
        if raw is None:
            return None
        tick = msgspec.json.decode(raw)
        return LatestPrice(float(tick["bid"]), float(tick["ask"]), int(tick["time_msc"]))

    async def _dispatch(self, order: Order, kind: InstructionKind, state: OrderStatus) -> Order:
        """Sign the instruction, record it with the transition, then queue it (in that
        order: nothing reaches a connector that PostgreSQL does not know about)."""
        signed = sign_instruction(
            self._keys,
            self._issuer,
            order.target,
            kind,
            _instruction_body(order),
            self.limits.instruction_ttl_s,
        )
        moved = await self._move(
            order,
            state,
            "engine",
            instruction=signed.token,
            instruction_entry=None,
            instruction_expires_at=dt.datetime.fromtimestamp(signed.expires_at, dt.UTC),
        )
        await self._enqueue(moved)
        return moved

    async def _enqueue(self, order: Order) -> None:
        if order.instruction is None or order.instruction_expires_at is None:
            return
        kind = (
            InstructionKind.CANCEL
            if order.status is OrderStatus.PENDING_CANCEL
            else InstructionKind.PLACE
        )
        try:
            entry = await self.queue.append(
                order.target,
                order.id,
                kind.value,
                order.instruction,
                order.instruction_expires_at.timestamp(),
            )
        except Exception as exc:  # the sweep queues it again; the order is safe in PostgreSQL
            _log.warning("order %s not queued yet: %s", order.id, type(exc).__name__)
            return
        await self.store.annotate(order.id, instruction_entry=entry)

    async def _move(self, order: Order, state: OrderStatus, actor: str, **fields: Any) -> Order:
        moved = await self.store.move(order.id, state, actor, **fields)
        self.metrics.transitions.labels(state.value).inc()
        if state in TERMINAL and order.instruction_entry:
            with contextlib.suppress(Exception):
                await self.queue.remove(order.target, order.instruction_entry)
        return moved

    # canceling -------------------------------------------------------------------------

    async def cancel(self, user_id: str, order_id: str) -> Order:
        order = await self.owned(user_id, order_id)
        if order.status is OrderStatus.PENDING_CANCEL:
            return order  # asked twice: one cancel
        # raises IllegalTransitionError for final orders (nothing to cancel)
        if order.instruction_entry:  # the place instruction, if still queued, is withdrawn
            with contextlib.suppress(Exception):
                await self.queue.remove(order.target, order.instruction_entry)
        return await self._dispatch(order, InstructionKind.CANCEL, OrderStatus.PENDING_CANCEL)

    async def owned(self, user_id: str, order_id: str) -> Order:
        order = await self.store.get(order_id)
        if order is None or order.user_id != user_id:
            raise LookupError(order_id)  # someone else's order does not exist for you
        return order

    # execution reports -----------------------------------------------------------------

    async def apply_report(self, source: str, report: ExecutionReport) -> Order:
        """Drive the state machine from a connector's report. Reports for orders that are
        not this connector's are refused; a report repeated after a reconnect is a no-op."""
        order = await self.store.get(report.order_id)
        if order is None:
            raise LookupError(report.order_id)
        if order.target != source:
            raise NotYoursError(f"order {order.id} was not sent to {source}")
        if report.filled_volume > order.volume + 1e-9:
            raise ValueError(
                f"filled volume {report.filled_volume:g} exceeds the order's {order.volume:g}"
            )
        if report.status is ReportStatus.CANCEL_REJECTED:
            if order.status is not OrderStatus.PENDING_CANCEL:
                return order  # the cancel is moot (filled meanwhile): nothing changes
            back = OrderStatus.PARTIALLY_FILLED if order.filled_volume > 0 else OrderStatus.ACCEPTED
            return await self._report_move(order, back, source, report, answered=True)
        target = REPORT_TARGET[report.status]
        if order.status is target and abs(order.filled_volume - report.filled_volume) < 1e-9:
            return order  # the same report again (resent after a reconnect)
        if order.status in TERMINAL:
            self.metrics.late_reports.inc()
            _log.warning(
                "report %s for order %s in final state %s ignored",
                report.status,
                order.id,
                order.status,
            )
            raise IllegalTransitionError(order.status, target)
        answered_cancel = order.status is OrderStatus.PENDING_CANCEL and target in (
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        )
        answered = order.status is not OrderStatus.PENDING_CANCEL or answered_cancel
        return await self._report_move(order, target, source, report, answered=answered)

    async def _report_move(
        self,
        order: Order,
        target: OrderStatus,
        source: str,
        report: ExecutionReport,
        answered: bool,
    ) -> Order:
        fields: dict[str, Any] = {"reported": True}
        if report.retcode is not None:
            fields["retcode"] = report.retcode
        if report.ticket is not None:
            fields["ticket"] = report.ticket
        if report.message:
            fields["reason"] = report.message[:500]
        new_fill = report.filled_volume - order.filled_volume
        if new_fill > 1e-12 and report.fill_price is not None:
            paid = (order.avg_fill_price or 0.0) * order.filled_volume
            fields["filled_volume"] = report.filled_volume
            fields["avg_fill_price"] = (paid + report.fill_price * new_fill) / report.filled_volume
        moved = await self.store.move(
            order.id,
            target,
            f"connector:{source}",
            {
                "report": report.status.value,
                "retcode": report.retcode,
                "ticket": report.ticket,
                "filled_volume": report.filled_volume,
                "fill_price": report.fill_price,
            },
            **fields,
        )
        self.metrics.transitions.labels(target.value).inc()
        if (answered or target in TERMINAL) and order.instruction_entry:
            with contextlib.suppress(Exception):  # answered: no need to deliver it again
                await self.queue.remove(order.target, order.instruction_entry)
        return moved

    # sweeping and resuming -------------------------------------------------------------

    async def sweep(self) -> int:
        """Expire what no connector answered in time; queue what is missing from the stream.
        Returns how many orders changed state."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.limits.expiry_grace_s)
        changed = 0
        for order in await self.store.unanswered_past(cutoff):
            final = (
                OrderStatus.CANCELED
                if order.status is OrderStatus.PENDING_CANCEL
                else OrderStatus.EXPIRED
            )
            with contextlib.suppress(IllegalTransitionError, LookupError):
                await self._move(
                    order,
                    final,
                    "engine",
                    reason=f"no connector answered within {self.limits.instruction_ttl_s:g} s",
                )
                changed += 1
        for order in await self.store.awaiting_connector():
            if order.reported and order.status is not OrderStatus.PENDING_CANCEL:
                continue  # answered: the connector has it
            entry = order.instruction_entry
            if entry is None or not await self.queue.contains(order.target, entry):
                await self._enqueue(order)
        return changed


def _instruction_body(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "time_in_force": order.time_in_force,
        "volume": order.volume,
        "price": order.price,
        "sl": order.sl,
        "tp": order.tp,
        "ticket": order.ticket,
    }


def _snapshot(account: dict[str, Any] | None) -> AccountSnapshot | None:
    if account is None:
        return None
    return AccountSnapshot(
        float(account["margin_free"]),
        int(account["leverage"]),
        str(account["currency"]),
        int(account["time_msc"]),
    )


class OrderSweeper:
    """The sweep as a hub component: runs every `sweep_interval_s` once the engine exists
    (the lifespan builds it after the stores are up); healthy while sweeps succeed."""

    name = "order-sweeper"
    depends_on: tuple[str, ...] = ("postgres", "redis")
    critical = False

    def __init__(self, engine: Callable[[], OrderEngine | None], interval_s: float) -> None:
        self._engine = engine
        self._interval = interval_s
        self._loop = BackgroundTask("order-sweeper")
        self._last_error = ""
        self.sweeps = 0

    async def start(self) -> None:
        self._loop.start(self._run())

    async def stop(self) -> None:
        await self._loop.stop()

    async def health(self) -> Health:
        if self._last_error:
            return Health.degraded(f"last sweep failed: {self._last_error}")
        return Health.healthy(f"{self.sweeps} sweeps, every {self._interval:g} s")

    async def _run(self) -> None:
        while True:
            engine = self._engine()
            if engine is not None:
                try:
                    await engine.sweep()
                    self.sweeps += 1
                    self._last_error = ""
                except Exception as exc:
                    self._last_error = type(exc).__name__
                    _log.warning("order sweep failed: %s", exc)
            await asyncio.sleep(self._interval)
