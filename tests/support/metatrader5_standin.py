"""A STAND-IN for the official `MetaTrader5` package — not the package, not a terminal.

It has the package's function names, constants, return shapes (named tuples; a numpy
structured array for ticks) and error conventions (`None` on failure, the reason in
`last_error()`), backed by an in-memory terminal, so that `MetaTrader5Terminal` can be
contract-tested on Linux. The real package is verified only on Windows with a terminal.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import namedtuple
from typing import Any

import numpy as np

COPY_TICKS_ALL, COPY_TICKS_INFO, COPY_TICKS_TRADE = -1, 1, 2
TRADE_ACTION_DEAL, TRADE_ACTION_PENDING, TRADE_ACTION_REMOVE = 1, 5, 8
ORDER_TYPE_BUY, ORDER_TYPE_SELL = 0, 1
ORDER_TYPE_BUY_LIMIT, ORDER_TYPE_SELL_LIMIT = 2, 3
ORDER_TYPE_BUY_STOP, ORDER_TYPE_SELL_STOP = 4, 5
ORDER_TIME_GTC, ORDER_TIME_DAY = 0, 1
ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN = 0, 1, 2
POSITION_TYPE_BUY, POSITION_TYPE_SELL = 0, 1
TRADE_RETCODE_REQUOTE, TRADE_RETCODE_REJECT = 10004, 10006
TRADE_RETCODE_PLACED, TRADE_RETCODE_DONE, TRADE_RETCODE_DONE_PARTIAL = 10008, 10009, 10010
TRADE_RETCODE_INVALID_VOLUME, TRADE_RETCODE_NO_MONEY = 10014, 10019
RES_S_OK, RES_E_INVALID_PARAMS, RES_E_INTERNAL_FAIL = 1, -2, -10001
ORDER_STATE_STARTED, ORDER_STATE_PLACED, ORDER_STATE_CANCELED = 0, 1, 2
ORDER_STATE_PARTIAL, ORDER_STATE_FILLED, ORDER_STATE_REJECTED, ORDER_STATE_EXPIRED = 3, 4, 5, 6

Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
AccountInfo = namedtuple(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert"
    " margin_mode currency_digits fifo_close balance credit profit equity margin margin_free"
    " margin_level margin_so_call margin_so_so margin_initial margin_maintenance assets"
    " liabilities commission_blocked name server currency company",
)
TradePosition = namedtuple(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume"
    " price_open sl tp price_current swap profit symbol comment external_id",
)
TradeOrder = namedtuple(
    "TradeOrder",
    "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type type_time"
    " type_filling state magic position_id position_by_id reason volume_initial volume_current"
    " price_open sl tp price_current price_stoplimit symbol comment external_id",
)
TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission"
    " swap profit fee symbol comment external_id",
)
OrderCheckResult = namedtuple(
    "OrderCheckResult",
    "retcode balance equity profit margin margin_free margin_level comment request",
)
OrderSendResult = namedtuple(
    "OrderSendResult",
    "retcode deal order volume price bid ask comment request_id retcode_external request",
)
TICK_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)

_state: dict[str, Any] = {}
_tickets = itertools.count(50_000_001)


def reset(ticks: dict[str, list[tuple[int, float, float]]], free_margin: float = 10_000.0) -> None:
    """Test set-up: the terminal's tick history (symbol -> [(time_msc, bid, ask)]) and account."""
    _state.clear()
    _state.update(
        initialized=False,
        error=(RES_S_OK, "Success"),
        ticks={s: sorted(v) for s, v in ticks.items()},
        positions={},
        orders={},
        history={},
        deals=[],
        free_margin=free_margin,
    )


def add_ticks(symbol: str, ticks: list[tuple[int, float, float]]) -> None:
    _state["ticks"].setdefault(symbol, []).extend(ticks)
    _state["ticks"][symbol].sort()


def _error(code: int, text: str) -> None:
    _state["error"] = (code, text)


def last_error() -> tuple[int, str]:
    return tuple(_state.get("error", (RES_S_OK, "Success")))  # type: ignore[return-value]


def initialize(path: str | None = None, **kwargs: Any) -> bool:
    if kwargs.get("password") != "correct":
        _error(-6, "Terminal: Authorization failed")
        return False
    _state["initialized"] = True
    return True


def shutdown() -> None:
    _state["initialized"] = False


def _ready() -> bool:
    if not _state.get("initialized"):
        _error(-10004, "No IPC connection")
        return False
    return True


def copy_ticks_from(symbol: str, date_from: Any, count: int, flags: int) -> Any:
    if not _ready():
        return None
    if symbol not in _state["ticks"]:
        _error(RES_E_INVALID_PARAMS, "Invalid params")
        return None
    since = (
        int(date_from.timestamp() * 1000)
        if isinstance(date_from, dt.datetime)
        else int(date_from) * 1000
    )
    rows = [t for t in _state["ticks"][symbol] if t[0] >= since][:count]
    return np.array(
        [(ms // 1000, bid, ask, 0.0, 0, ms, 6, 0.0) for ms, bid, ask in rows], dtype=TICK_DTYPE
    )


def symbol_info_tick(symbol: str) -> Any:
    if not _ready() or not _state["ticks"].get(symbol):
        return None
    ms, bid, ask = _state["ticks"][symbol][-1]
    return Tick(ms // 1000, bid, ask, 0.0, 0, ms, 6, 0.0)


def account_info() -> Any:
    if not _ready():
        return None
    free = _state["free_margin"]
    return AccountInfo(
        5_000_123,
        0,
        100,
        200,
        0,
        True,
        True,
        2,
        2,
        False,
        free,
        0.0,
        0.0,
        free,
        0.0,
        free,
        0.0,
        50.0,
        30.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        "stand-in",
        "StandIn-Demo",
        "USD",
        "Stand-in Ltd",
    )


def positions_get(**kwargs: Any) -> Any:
    if not _ready():
        return None
    return tuple(_state["positions"].values())


def order_check(request: dict[str, Any]) -> Any:
    if not _ready():
        return None
    retcode = 0
    comment = "Done"
    if request.get("volume", 0) <= 0 or request.get("volume", 0) > 100:
        retcode, comment = TRADE_RETCODE_INVALID_VOLUME, "Invalid volume"
    elif request.get("volume", 0) * 1000 > _state["free_margin"]:
        retcode, comment = TRADE_RETCODE_NO_MONEY, "No money"
    return OrderCheckResult(retcode, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, comment, request)


def order_send(request: dict[str, Any]) -> Any:
    if not _ready():
        return None
    action = request["action"]
    if action == TRADE_ACTION_REMOVE:
        removed = _state["orders"].pop(request["order"], None)
        if removed is not None:
            _state["history"][request["order"]] = _order(
                request["order"], removed, ORDER_STATE_CANCELED, removed["volume"]
            )
        if removed is None:
            return OrderSendResult(
                10013, 0, 0, 0.0, 0.0, 0.0, 0.0, "Invalid request", 0, 0, request
            )
        return OrderSendResult(
            TRADE_RETCODE_DONE,
            0,
            request["order"],
            0.0,
            0.0,
            0.0,
            0.0,
            "Request executed",
            0,
            0,
            request,
        )
    ticket = next(_tickets)
    if action == TRADE_ACTION_PENDING:
        _state["orders"][ticket] = request
        return OrderSendResult(
            TRADE_RETCODE_PLACED,
            0,
            ticket,
            request["volume"],
            request["price"],
            0.0,
            0.0,
            "Request executed",
            0,
            0,
            request,
        )
    side = POSITION_TYPE_BUY if request["type"] == ORDER_TYPE_BUY else POSITION_TYPE_SELL
    _state["positions"][ticket] = TradePosition(
        ticket,
        0,
        0,
        0,
        0,
        side,
        request.get("magic", 0),
        ticket,
        0,
        request["volume"],
        request["price"],
        0.0,
        0.0,
        request["price"],
        0.0,
        0.0,
        request["symbol"],
        request.get("comment", ""),
        "",
    )
    return OrderSendResult(
        TRADE_RETCODE_DONE,
        ticket + 1,
        ticket,
        request["volume"],
        request["price"],
        request["price"],
        request["price"],
        "Request executed",
        0,
        0,
        request,
    )


def _order(ticket: int, request: dict[str, Any], state: int, left: float) -> Any:
    return TradeOrder(
        ticket,
        0,
        0,
        0,
        0,
        0,
        request["type"],
        0,
        2,
        state,
        0,
        ticket,
        0,
        0,
        request["volume"],
        left,
        request["price"],
        0.0,
        0.0,
        request["price"],
        0.0,
        request["symbol"],
        request.get("comment", ""),
        "",
    )


def orders_get(**kwargs: Any) -> Any:
    if not _ready():
        return None
    return tuple(_order(t, r, ORDER_STATE_PLACED, r["volume"]) for t, r in _state["orders"].items())


def history_orders_get(*args: Any, ticket: int | None = None, **kwargs: Any) -> Any:
    if not _ready():
        return None
    found = _state["history"].get(ticket)
    return () if found is None else (found,)


def history_deals_get(*args: Any, position: int | None = None, **kwargs: Any) -> Any:
    if not _ready():
        return None
    return tuple(d for d in _state["deals"] if position is None or d.position_id == position)


def fill_pending(ticket: int, price: float) -> None:
    """Test set-up: the market reaches a pending order and the terminal fills it."""
    request = _state["orders"].pop(ticket)
    _state["history"][ticket] = _order(ticket, request, ORDER_STATE_FILLED, 0.0)
    _state["deals"].append(
        TradeDeal(
            ticket + 7,
            ticket,
            0,
            0,
            0,
            0,
            0,
            ticket,
            0,
            request["volume"],
            price,
            0.0,
            0.0,
            0.0,
            0.0,
            request["symbol"],
            "",
            "",
        )
    )
