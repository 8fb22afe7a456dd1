"""The real DPAPI round trip: only Windows has DPAPI (the client-windows workflow runs this);
everywhere else the stand-in test in test_connector_config.py checks how the store calls it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aitrading.client.config_manager.secret_store import DpapiStore

pytestmark = pytest.mark.skipif(
    sys.platform != "win32", reason="DPAPI exists only on Windows (client-windows workflow)"
)


def test_dpapi_round_trip_and_no_plaintext_on_disk(tmp_path: Path) -> None:
    store = DpapiStore(tmp_path)
    store.put("mt5-password", "a real secret 123")
    assert store.get("mt5-password") == "a real secret 123"
    assert b"a real secret" not in (tmp_path / "secrets.dpapi.json").read_bytes()
