from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aitrading.services.data_bridge import protocol
from aitrading.services.data_bridge.protocol import ProtocolError, Reason, Tick, check_tick
from aitrading.services.data_bridge.spool import Spool

NOW = int(time.time() * 1000)


def good(**changes: object) -> Tick:
    fields: dict[str, object] = {
        "symbol": "EURUSD",
        "time_msc": NOW,
        "bid": 1.1,
        "ask": 1.1002,
        "sequence": 1,
        "flags": 6,
    }
    fields.update(changes)
    return Tick(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tick", "reason"),
    [
        (good(), None),
        (good(symbol="EUR USD"), Reason.SYMBOL_FORMAT),
        (good(bid=float("nan")), Reason.NON_FINITE_PRICE),
        (good(ask=float("inf")), Reason.NON_FINITE_PRICE),
        (good(bid=0.0), Reason.NON_POSITIVE_PRICE),
        (good(bid=1.2, ask=1.1), Reason.ASK_BELOW_BID),
        (good(volume=-1), Reason.NEGATIVE_VOLUME),
        (good(flags=1 << 10), Reason.UNKNOWN_FLAGS),
        (good(time_msc=NOW - 3_600_000), Reason.TIME_SKEW),
        (good(sequence=-5), Reason.SEQUENCE),
        (good(sequence=2**63), Reason.SEQUENCE),
        (good(volume=2**64 - 1), Reason.OUT_OF_RANGE),
        (good(symbol="EURUSD\n"), Reason.SYMBOL_FORMAT),
        (good(symbol="EUR\x00USD"), Reason.SYMBOL_FORMAT),
        (good(symbol="ÉURUSD"), Reason.SYMBOL_FORMAT),
    ],
)
def test_tick_checks(tick: Tick, reason: Reason | None) -> None:
    refused = check_tick(tick, "user-1:term", max_skew_ms=60_000, now_ms=NOW)
    assert (refused[0] if refused else None) == reason


def test_a_source_storage_would_refuse_is_refused() -> None:
    refused = check_tick(good(), "u" * 65, max_skew_ms=60_000, now_ms=NOW)
    assert refused is not None
    assert refused[0] == Reason.SOURCE_FORMAT


@pytest.mark.parametrize(
    ("raw", "reason", "seq"),
    [
        ("not json", Reason.MALFORMED, None),
        ('{"type": "teleport", "seq": 7}', Reason.UNKNOWN_TYPE, 7),
        ('{"seq": 8}', Reason.UNKNOWN_TYPE, 8),
        ('{"type": "tick", "seq": 9, "tick": {"symbol": "EURUSD"}}', Reason.MALFORMED, 9),
        (
            '{"type": "tick", "seq": 10, "tick": {"symbol": "EURUSD", "time_msc": 1, "bid": "x",'
            ' "ask": 1, "sequence": 1}}',
            Reason.MALFORMED,
            10,
        ),
        ('{"type": "heartbeat", "seq": 11, "extra": 1}', Reason.MALFORMED, 11),
    ],
)
def test_decode_errors_carry_reason_and_seq(raw: str, reason: Reason, seq: int | None) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(raw)
    assert caught.value.reason is reason
    assert caught.value.seq == seq


def test_oversized_frame() -> None:
    default = protocol.FrameLimits()
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(b" " * (default.max_bytes + 1))
    assert caught.value.reason is Reason.TOO_LARGE
    small = protocol.FrameLimits(max_bytes=2048)  # the limit is a setting
    heartbeat = b'{"type": "heartbeat", "seq": 1}'
    assert isinstance(protocol.decode(heartbeat + b" " * 1000, small), protocol.Heartbeat)
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(heartbeat + b" " * 2048, small)
    assert caught.value.reason is Reason.TOO_LARGE


def test_json_depth_limit_guards_the_best_effort_seq() -> None:
    shallow = '{"type": "tick", "seq": 7, "tick": {"symbol": [[1]]}}'
    deep = '{"type": "tick", "seq": 7, "x": ' + "[" * 40 + "]" * 40 + "}"
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(shallow)
    assert caught.value.seq == 7
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(deep, protocol.FrameLimits(max_depth=16))
    assert caught.value.reason is Reason.MALFORMED
    assert caught.value.seq is None  # not decoded past the limit
    assert not protocol.nesting_exceeds('{"a": "[[[[[[[[[[[[[[[[[[[[[[[["}', 4)  # in a string
    assert protocol.nesting_exceeds("[[[[[", 4)


def test_frames_decode_to_types() -> None:
    frame = protocol.decode(
        json.dumps(
            {
                "type": "ticks",
                "seq": 3,
                "ticks": [
                    {
                        "symbol": "XAUUSD",
                        "time_msc": NOW,
                        "bid": 2350.1,
                        "ask": 2350.4,
                        "sequence": 9,
                    }
                ],
            }
        )
    )
    assert isinstance(frame, protocol.TicksFrame)
    assert frame.ticks[0].symbol == "XAUUSD"
    assert json.loads(protocol.ack(3, 1, 0)) == {
        "type": "ack",
        "seq": 3,
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "durable": "journal",
    }


def test_v1_1_order_frames() -> None:
    """The execution report decodes with every field typed; an unknown status or field is
    `malformed` with its seq; the server's `order` frame carries only the signed instruction."""
    report = protocol.decode(
        json.dumps(
            {
                "type": "execution_report",
                "seq": 41,
                "order_id": "a" * 32,
                "status": "filled",
                "retcode": 10009,
                "ticket": 7,
                "filled_volume": 0.1,
                "fill_price": 1.08512,
            }
        )
    )
    assert isinstance(report, protocol.ExecutionReportFrame)
    assert (report.status, report.filled_volume, report.message) == ("filled", 0.1, "")
    for bad in ({"status": "teleported"}, {"status": "filled", "surprise": 1}):
        raw = json.dumps({"type": "execution_report", "seq": 42, "order_id": "x", **bad})
        with pytest.raises(ProtocolError) as refused:
            protocol.decode(raw)
        assert (refused.value.reason, refused.value.seq) == (Reason.MALFORMED, 42)
    assert json.loads(protocol.order("h.p.s")) == {"type": "order", "instruction": "h.p.s"}


def test_spool_replays_in_order_and_commits(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=64)  # tiny segments: several files
    payloads = [f"batch-{i}".encode() * 3 for i in range(10)]
    for payload in payloads:
        spool.append(payload)
    records = list(spool.pending())
    assert [p for _, p in records] == payloads
    spool.commit(records[3][0])
    spool.close()
    reopened = Spool(tmp_path, segment_bytes=64)
    assert [p for _, p in reopened.pending()] == payloads[4:]
    last = list(reopened.pending())[-1][0]
    reopened.commit(last)
    assert list(reopened.pending()) == []
    assert reopened.backlog_bytes() == 0
    assert len(list(tmp_path.glob("*.seg"))) <= 2  # spent segments are deleted


def test_a_torn_tail_is_cut_and_appends_continue(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"first")
    spool.append(b"second")
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    with open(segment, "ab") as handle:
        handle.write(b"\x00\x00\x00\x10garb")  # a crash mid-write: header without its payload
    reopened = Spool(tmp_path)
    reopened.append(b"third")
    assert [p for _, p in reopened.pending()] == [b"first", b"second", b"third"]
