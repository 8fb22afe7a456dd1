"""A STAND-IN terminal whose tick history is a JSON-lines file the test appends to.

A real terminal keeps its tick history across a crash of the connector; this one keeps it in
a file, so a test can kill the connector process (-9), add ticks, start it again and check
that every tick the "terminal" produced is stored exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path

from aitrading.client.metatrader_connector.outbox import Cursor
from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
from aitrading.client.metatrader_connector.terminal import TerminalTick


class FileTerminal(SimulatorTerminal):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def ticks_from(self, symbol: str, cursor: Cursor | None, limit: int) -> list[TerminalTick]:
        self.history = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    t = json.loads(line)
                    self.record(
                        [
                            TerminalTick(
                                t["symbol"], t["time_msc"], t["bid"], t["ask"], 0.0, 0, 0.0, 6
                            )
                        ]
                    )
        return super().ticks_from(symbol, cursor, limit)


def append_ticks(path: Path, symbol: str, first: int, count: int, time_msc: int) -> list[float]:
    """`count` ticks with unique bids (the test's way to recognise each one); their bids."""
    bids = [round(1.0 + (first + i) * 1e-5, 5) for i in range(count)]
    with path.open("a") as handle:
        for i, bid in enumerate(bids):
            handle.write(
                json.dumps(
                    {
                        "symbol": symbol,
                        "time_msc": time_msc + (first + i) // 3,
                        "bid": bid,
                        "ask": round(bid + 2e-5, 5),
                    }
                )
                + "\n"
            )
    return bids
