"""One latency histogram shape for call-chain outcomes, shared by the gateway that counts
them and database-service that sums them across replicas: fixed bucket bounds (ms), so
histograms from any replica and any window add up bucket by bucket."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

BOUNDS_MS: tuple[float, ...] = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
BUCKETS = len(BOUNDS_MS) + 1  # the last one: above the largest bound


def bucket_of(duration_ms: float) -> int:
    """The bucket a duration falls in (each bound is inclusive, as in Prometheus)."""
    return bisect.bisect_left(BOUNDS_MS, duration_ms)


def quantile_ms(buckets: Sequence[int], q: float) -> float:
    """The upper bound of the bucket holding the q-quantile (the largest bound when it is in
    the last bucket); 0 for an empty histogram."""
    total = sum(buckets)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return float(BOUNDS_MS[min(index, len(BOUNDS_MS) - 1)])
    return float(BOUNDS_MS[-1])
