"""What a terminal did with an order instruction: the `status` of an execution report.

One enum for the connector that reports it and the trading-engine that applies it
(docs/protocol.md §5)."""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    ACCEPTED = "accepted"  # resting at the terminal
    REJECTED = "rejected"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    CANCEL_REJECTED = "cancel_rejected"
    EXPIRED = "expired"
