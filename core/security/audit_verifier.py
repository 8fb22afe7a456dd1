"""The audit chain verified on a schedule, so that tampering raises an alert, not only a
finding the next time someone runs `aitrading audit verify`.

A hub component beside the checkpointer: every `interval_s` it walks the whole chain and the
checkpoints (with the copy kept outside the database, when there is one) exactly as the CLI
does, and exports the outcome: `aitrading_audit_chain_intact` (1 or 0) and
`aitrading_audit_verify_failures_total`, which the chart's PrometheusRule alerts on. A broken
chain also degrades the gateway's health, naming the first bad sequence. A verification that
could not run (PostgreSQL away) is not a broken chain: the gauge keeps its last value and the
health says why.
"""

from __future__ import annotations

import asyncio
import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import CollectorRegistry, Counter, Gauge

from aitrading.core.infrastructure.background import BackgroundTask
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.security.audit_checkpoint_file import CheckpointFile
from aitrading.core.security.audit_logger import AuditLog, VerifyReport

_log = logging.getLogger(__name__)


class AuditVerifier:
    critical = False

    def __init__(
        self,
        log: AuditLog,
        public_key: Ed25519PublicKey,
        interval_s: float,
        registry: CollectorRegistry,
        external: CheckpointFile | None = None,
        depends_on: tuple[str, ...] = (),
    ) -> None:
        self.name = "audit-verifier"
        self.depends_on = depends_on
        self._log = log
        self._key = public_key
        self._interval = interval_s
        self._external = external
        self._loop = BackgroundTask("audit-verifier")
        self.last: VerifyReport | None = None
        self._last_error = ""
        self.verified = asyncio.Event()  # set after each verification that ran
        self._intact = Gauge(
            "aitrading_audit_chain_intact",
            "1 while the last walk of the audit chain found it intact, 0 once it did not",
            registry=registry,
        )
        self._failures = Counter(
            "aitrading_audit_verify_failures",
            "Walks of the audit chain that found it broken (tampered, missing or forged)",
            registry=registry,
        )
        self._intact.set(1)

    async def start(self) -> None:
        self._loop.start(self._run())

    async def stop(self) -> None:
        await self._loop.stop()

    async def health(self) -> Health:
        if self.last is not None and not self.last.ok:
            return Health.degraded(
                f"audit chain broken at sequence {self.last.first_bad_seq}: {self.last.problem}"
            )
        if self._last_error:
            return Health.degraded(f"audit chain not verified: {self._last_error}")
        if self.last is None:
            return Health.healthy("audit chain not verified yet")
        return Health.healthy(f"audit chain intact ({self.last.records} records)")

    async def verify_once(self) -> VerifyReport | None:
        """One walk; the report, or None when it could not run."""
        try:
            copies = await asyncio.to_thread(self._external.read) if self._external else None
            report = await self._log.verify(self._key, copies)
        except Exception as exc:  # could not run: not a finding about the chain
            self._last_error = type(exc).__name__
            return None
        self._last_error = ""
        self.last = report
        self._intact.set(1 if report.ok else 0)
        if not report.ok:
            self._failures.inc()
            _log.error(
                "audit chain broken at sequence %s: %s", report.first_bad_seq, report.problem
            )
        self.verified.set()
        return report

    async def _run(self) -> None:
        while True:
            await self.verify_once()
            await asyncio.sleep(self._interval)
