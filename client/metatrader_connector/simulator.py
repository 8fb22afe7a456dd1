"""Realistic simulated MT5 ticks: a random-walk mid per symbol, spreads, rates, flags, bursts.

Used by `make demo`, the tests and the benchmarks in place of a MetaTrader 5 terminal; the
ticks go through exactly the protocol the real connector speaks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from aitrading.client.metatrader_connector.bridge_client import now_msc

TICK_FLAG_BID, TICK_FLAG_ASK, TICK_FLAG_LAST, TICK_FLAG_VOLUME = 2, 4, 8, 16


@dataclass
class SymbolModel:
    symbol: str
    mid: float
    spread: float  # in price units
    digits: int
    ticks_per_second: float
    volatility: float  # relative standard deviation per tick
    exchange: bool = False  # exchange instruments carry last price and volume


DEFAULT_SYMBOLS = (
    SymbolModel("EURUSD", 1.0850, 0.00012, 5, 18, 0.00003),
    SymbolModel("GBPUSD", 1.2700, 0.00015, 5, 14, 0.00004),
    SymbolModel("USDJPY", 151.20, 0.012, 3, 16, 0.00004),
    SymbolModel("XAUUSD", 2350.0, 0.25, 2, 10, 0.00006),
    SymbolModel("US30", 39000.0, 2.0, 1, 6, 0.00005, exchange=True),
)


@dataclass
class Simulator:
    symbols: tuple[SymbolModel, ...] = DEFAULT_SYMBOLS
    seed: int | None = None
    burst_probability: float = 0.02
    burst_factor: float = 5.0
    _rng: random.Random = field(init=False)
    _sequence: int = field(init=False, default=0)
    _last_time: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security

    def ticks_for(self, seconds: float) -> list[dict[str, Any]]:
        """The ticks all symbols produce in `seconds` of wall time (Poisson, with bursts)."""
        out: list[dict[str, Any]] = []
        for model in self.symbols:
            rate = model.ticks_per_second
            if self._rng.random() < self.burst_probability:
                rate *= self.burst_factor
            for _ in range(self._poisson(rate * seconds)):
                out.append(self.tick(model))
        return out

    def tick(self, model: SymbolModel) -> dict[str, Any]:
        model.mid *= math.exp(self._rng.gauss(0.0, model.volatility))
        half = model.spread * (0.5 + self._rng.random()) / 2
        bid = round(model.mid - half, model.digits)
        ask = round(max(model.mid + half, bid + 10**-model.digits), model.digits)
        self._sequence += 1
        time_msc = max(now_msc(), self._last_time)
        self._last_time = time_msc
        flags = TICK_FLAG_BID | TICK_FLAG_ASK
        tick: dict[str, Any] = {
            "symbol": model.symbol,
            "time_msc": time_msc,
            "bid": bid,
            "ask": ask,
            "sequence": self._sequence,
            "flags": flags,
        }
        if model.exchange:
            volume = self._rng.randint(1, 20)
            tick.update(
                last=round((bid + ask) / 2, model.digits),
                volume=volume,
                volume_real=float(volume),
                flags=flags | TICK_FLAG_LAST | TICK_FLAG_VOLUME,
            )
        return tick

    def _poisson(self, mean: float) -> int:
        if mean <= 0:
            return 0
        limit, k, product = math.exp(-mean), 0, self._rng.random()
        while product > limit:
            k += 1
            product *= self._rng.random()
        return k
