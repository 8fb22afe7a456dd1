"""`MetaTrader5Terminal`: the `Terminal` contract over the official `MetaTrader5` package.

The package runs only on Windows next to a terminal; it is imported lazily through the import
manager (`pip install "aitrading[windows]"`), or given explicitly — which is how the contract
tests drive this adapter on Linux with a stand-in module that has the package's names, return
shapes (named tuples; numpy structured arrays for ticks) and error conventions (`None` plus
`last_error()`). Only a Windows machine with a terminal verifies the real package.
"""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from typing import Any

from aitrading.client.metatrader_connector.outbox import Cursor
from aitrading.client.metatrader_connector.terminal import (
    Execution,
    TerminalError,
    TerminalTick,
)
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.market.execution_status import ExecutionStatus

# MqlTradeResult.retcode values the mapping below names (the package exports them too)
DONE, PLACED, DONE_PARTIAL = 10009, 10008, 10010


class MetaTrader5Terminal:
    def __init__(
        self,
        login: int,
        password: str,
        server: str,
        path: str | None = None,
        module: ModuleType | None = None,
        deviation_points: int = 20,
        magic: int = 240_615,
    ) -> None:
        self._mt5 = module
        self._login = login
        self._password = password
        self._server = server
        self._path = path
        self._deviation = deviation_points
        self._magic = magic

    @property
    def mt5(self) -> Any:
        if self._mt5 is None:
            self._mt5 = ImportManager().require("MetaTrader5")
        return self._mt5

    def _fail(self, what: str) -> TerminalError:
        code, description = self.mt5.last_error()
        return TerminalError(f"{what} failed: {code} {description}")

    def connect(self) -> None:
        kwargs: dict[str, Any] = {
            "login": self._login,
            "password": self._password,
            "server": self._server,
        }
        if self._path:
            kwargs["path"] = self._path
        if not self.mt5.initialize(**kwargs):
            raise self._fail("initialize")

    def disconnect(self) -> None:
        self.mt5.shutdown()

    def ticks_from(self, symbol: str, cursor: Cursor | None, limit: int) -> list[TerminalTick]:
        start_ms = cursor.time_msc if cursor else 0
        # copy_ticks_from takes whole seconds: ask from the cursor's second; the caller drops
        # what it already has by time_msc and count (terminal.after_cursor)
        since = dt.datetime.fromtimestamp(start_ms // 1000, dt.UTC)
        count = limit
        while True:  # ticks of that second before the cursor count against `count`: ask more
            rows = self.mt5.copy_ticks_from(symbol, since, count, self.mt5.COPY_TICKS_ALL)
            if rows is None:
                raise self._fail(f"copy_ticks_from({symbol})")
            kept = sum(1 for row in rows if int(row["time_msc"]) >= start_ms)
            if len(rows) < count or kept >= limit:
                break
            count *= 2
        return [
            TerminalTick(
                symbol,
                int(row["time_msc"]),
                float(row["bid"]),
                float(row["ask"]),
                float(row["last"]),
                int(row["volume"]),
                float(row["volume_real"]),
                int(row["flags"]),
            )
            for row in rows
            if int(row["time_msc"]) >= start_ms
        ][:limit]

    def account(self) -> dict[str, Any]:
        info = self.mt5.account_info()
        if info is None:
            raise self._fail("account_info")
        return {
            "login": int(info.login),
            "currency": str(info.currency),
            "leverage": int(info.leverage),
            "balance": float(info.balance),
            "equity": float(info.equity),
            "margin": float(info.margin),
            "margin_free": float(info.margin_free),
            "margin_level": float(info.margin_level),
            "profit": float(info.profit),
        }

    def positions(self) -> list[dict[str, Any]]:
        found = self.mt5.positions_get()
        if found is None:
            raise self._fail("positions_get")
        return [
            {
                "ticket": int(p.ticket),
                "symbol": str(p.symbol),
                "type": "buy" if p.type == self.mt5.POSITION_TYPE_BUY else "sell",
                "volume": float(p.volume),
                "price_open": float(p.price_open),
                "price_current": float(p.price_current),
                "profit": float(p.profit),
            }
            for p in found
        ]

    def place(self, order: dict[str, Any]) -> Execution:
        request = self._request(order)
        check = self.mt5.order_check(request)
        if check is None:
            raise self._fail("order_check")
        if check.retcode != 0:  # order_check answers 0 when the request would be accepted
            return Execution(ExecutionStatus.REJECTED, int(check.retcode), str(check.comment))
        result = self.mt5.order_send(request)
        if result is None:
            raise self._fail("order_send")
        return self._execution(order, result)

    def cancel(self, order: dict[str, Any]) -> Execution:
        if not order.get("ticket"):
            return Execution(ExecutionStatus.CANCELED, DONE, "never placed at the terminal")
        result = self.mt5.order_send(
            {"action": self.mt5.TRADE_ACTION_REMOVE, "order": int(order["ticket"])}
        )
        if result is None:
            raise self._fail("order_send(remove)")
        if result.retcode == DONE:
            return Execution(ExecutionStatus.CANCELED, DONE, str(result.comment))
        return Execution(ExecutionStatus.CANCEL_REJECTED, int(result.retcode), str(result.comment))

    def pending_updates(self, resting: dict[int, dict[str, Any]]) -> dict[int, Execution]:
        """Orders no longer in `orders_get()` ended: their history order says how
        (`ORDER_STATE_FILLED`, `_CANCELED`, `_EXPIRED`, `_REJECTED`), their deals at what
        price."""
        if not resting:
            return {}
        m = self.mt5
        live = m.orders_get()
        if live is None:
            raise self._fail("orders_get")
        still = {int(o.ticket): o for o in live}
        done: dict[int, Execution] = {}
        for ticket in resting:
            if ticket in still:
                continue
            found = m.history_orders_get(ticket=ticket)
            if not found:
                continue  # not in the history yet: ask again next round
            order = found[0]
            filled = float(order.volume_initial) - float(order.volume_current)
            if order.state == m.ORDER_STATE_FILLED:
                deals = m.history_deals_get(position=int(order.position_id)) or ()
                mine = [d for d in deals if int(d.order) == ticket]
                price = (
                    sum(float(d.price) * float(d.volume) for d in mine)
                    / sum(float(d.volume) for d in mine)
                    if mine
                    else float(order.price_current)
                )
                done[ticket] = Execution(
                    ExecutionStatus.FILLED, DONE, "filled at the terminal", ticket, filled, price
                )
            elif order.state in (m.ORDER_STATE_CANCELED, m.ORDER_STATE_EXPIRED):
                status = (
                    ExecutionStatus.EXPIRED
                    if order.state == m.ORDER_STATE_EXPIRED
                    else ExecutionStatus.CANCELED
                )
                done[ticket] = Execution(status, DONE, "ended at the terminal", ticket, filled)
            elif order.state == m.ORDER_STATE_REJECTED:
                done[ticket] = Execution(
                    ExecutionStatus.REJECTED, 10006, "rejected at the terminal", ticket
                )
        return done

    def _request(self, order: dict[str, Any]) -> dict[str, Any]:
        m = self.mt5
        buy = order["side"] == "buy"
        kinds = {
            "market": m.ORDER_TYPE_BUY if buy else m.ORDER_TYPE_SELL,
            "limit": m.ORDER_TYPE_BUY_LIMIT if buy else m.ORDER_TYPE_SELL_LIMIT,
            "stop": m.ORDER_TYPE_BUY_STOP if buy else m.ORDER_TYPE_SELL_STOP,
        }
        request: dict[str, Any] = {
            "action": m.TRADE_ACTION_DEAL if order["type"] == "market" else m.TRADE_ACTION_PENDING,
            "symbol": order["symbol"],
            "volume": float(order["volume"]),
            "type": kinds[order["type"]],
            "deviation": self._deviation,
            "magic": self._magic,
            "comment": str(order.get("client_order_id", ""))[:31],
            "type_time": (
                m.ORDER_TIME_DAY if order.get("time_in_force") == "day" else m.ORDER_TIME_GTC
            ),
            "type_filling": m.ORDER_FILLING_FOK
            if order.get("time_in_force") == "fok"
            else m.ORDER_FILLING_IOC,
        }
        if order["type"] == "market":
            tick = m.symbol_info_tick(order["symbol"])
            if tick is None:
                raise self._fail(f"symbol_info_tick({order['symbol']})")
            request["price"] = float(tick.ask if buy else tick.bid)
        else:
            request["price"] = float(order["price"])
            request["type_filling"] = m.ORDER_FILLING_RETURN
        for key in ("sl", "tp"):
            if order.get(key):
                request[key] = float(order[key])
        return request

    @staticmethod
    def _execution(order: dict[str, Any], result: Any) -> Execution:
        code = int(result.retcode)
        if code == DONE and order["type"] == "market":
            return Execution(
                ExecutionStatus.FILLED,
                code,
                str(result.comment),
                ticket=int(result.order) or int(result.deal),
                filled_volume=float(result.volume),
                fill_price=float(result.price),
            )
        if code in (DONE, PLACED):
            return Execution(ExecutionStatus.ACCEPTED, code, str(result.comment), int(result.order))
        if code == DONE_PARTIAL:
            return Execution(
                ExecutionStatus.PARTIALLY_FILLED,
                code,
                str(result.comment),
                ticket=int(result.order),
                filled_volume=float(result.volume),
                fill_price=float(result.price),
            )
        return Execution(ExecutionStatus.REJECTED, code, str(result.comment))
