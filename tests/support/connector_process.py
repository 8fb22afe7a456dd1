"""Run the connector against a FileTerminal until killed (the kill -9 test's subject).

usage: python -m tests.support.connector_process URL TOKEN TICKS_FILE OUTBOX SYMBOL
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from aitrading.client.metatrader_connector.connector import Connector, ConnectorOptions
from aitrading.client.metatrader_connector.outbox import Outbox
from tests.support.file_terminal import FileTerminal


async def main(url: str, token: str, ticks: str, outbox: str, symbol: str) -> None:
    async def bearer() -> str:
        return token

    connector = Connector(
        ConnectorOptions(url=url, source="kill9", symbols=(symbol,), page=50),
        FileTerminal(Path(ticks)),
        Outbox(Path(outbox)),
        bearer,
    )
    await connector.start()
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
