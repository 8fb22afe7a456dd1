"""ErrorDNA: a stable fingerprint for every error, and groups that count them.

A thousand copies of one failure must be one line on a dashboard, and two different failures
must never hide in one line. The fingerprint hashes what identifies the *kind* of failure:
the algorithm version, the service, the exception type, the types along its cause chain and
the innermost in-app frames as `module:function` — never line numbers, so a fix that moves a
line does not split a group, while the same exception type raised from another call site
makes another group. Only an exception without a stack falls back to its message, with the
variable parts (numbers, ids, quoted values) parameterised away.

Groups keep count, first and last seen, a redacted sample, a category, a retryable flag and
recovery hints, and persist in PostgreSQL (`PostgresErrorGroupStore`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from aitrading.core.security.redaction import redact

if TYPE_CHECKING:
    import asyncpg

ALGORITHM_VERSION = "1"
DEFAULT_FRAME_DEPTH = 5
MAX_CAUSE_DEPTH = 8
MAX_SAMPLE_CHARS = 4000


class ErrorCategory(StrEnum):
    DATABASE = "database"
    NETWORK = "network"
    VALIDATION = "validation"
    AUTH = "auth"
    MT5 = "mt5"
    CONFIG = "config"
    INTERNAL = "internal"


RECOVERY_HINTS: dict[ErrorCategory, tuple[str, ...]] = {
    ErrorCategory.DATABASE: (
        "check the database's health in /health/ready and its server log",
        "retry with backoff; the pool reconnects once the server is back",
    ),
    ErrorCategory.NETWORK: (
        "retry with exponential backoff and jitter",
        "check DNS, the peer's port and any NetworkPolicy between the pods",
    ),
    ErrorCategory.VALIDATION: ("do not retry: the input is wrong; the error names the field",),
    ErrorCategory.AUTH: (
        "do not retry with the same credentials; obtain a new token or check the API key",
    ),
    ErrorCategory.MT5: (
        "check that the MetaTrader 5 terminal is running, logged in and allows algo trading",
        "reconnect the connector; ticks are replayed from its last acknowledged sequence",
    ),
    ErrorCategory.CONFIG: (
        "fix the setting named in the error; `aitrading config show` lists values and sources",
    ),
    ErrorCategory.INTERNAL: ("a bug: report the fingerprint and the sample",),
}

# (category, retryable) by the module prefix or the name of a type in the exception's MRO.
_MODULE_CATEGORIES: tuple[tuple[str, ErrorCategory], ...] = (
    ("asyncpg", ErrorCategory.DATABASE),
    ("psycopg", ErrorCategory.DATABASE),
    ("clickhouse_connect", ErrorCategory.DATABASE),
    ("chdb", ErrorCategory.DATABASE),
    ("redis", ErrorCategory.DATABASE),
    ("weaviate", ErrorCategory.DATABASE),
    ("arango", ErrorCategory.DATABASE),
    ("jwt", ErrorCategory.AUTH),
    ("MetaTrader5", ErrorCategory.MT5),
    ("aitrading.client.metatrader_connector", ErrorCategory.MT5),
    ("pydantic", ErrorCategory.VALIDATION),
    ("httpx", ErrorCategory.NETWORK),
    ("aiohttp", ErrorCategory.NETWORK),
)
_NAME_CATEGORIES: tuple[tuple[str, ErrorCategory], ...] = (
    ("ConfigError", ErrorCategory.CONFIG),
    ("PermissionError", ErrorCategory.AUTH),
    ("AuthenticationError", ErrorCategory.AUTH),
    ("ConnectionError", ErrorCategory.NETWORK),
    ("TimeoutError", ErrorCategory.NETWORK),
    ("OSError", ErrorCategory.NETWORK),
    ("ValueError", ErrorCategory.VALIDATION),
    ("TypeError", ErrorCategory.INTERNAL),
)
_RETRYABLE_NAMES = ("ConnectionError", "TimeoutError", "ConnectionRefusedError", "BrokenPipeError")

_PARAMETERS = (
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<uuid>",
    ),
    (re.compile(r"0x[0-9a-fA-F]+"), "<hex>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "<num>"),
)


def parameterise(message: str) -> str:
    """A message with its variable parts replaced, so that `id 41` and `id 42` match."""
    for pattern, token in _PARAMETERS:
        message = pattern.sub(token, message)
    return message


def _qualified(exc_type: type[BaseException]) -> str:
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def cause_chain(exc: BaseException) -> list[BaseException]:
    """The exceptions behind `exc` (explicit causes, then implicit context), innermost last."""
    chain: list[BaseException] = []
    seen = {id(exc)}
    current: BaseException | None = exc
    while current is not None and len(chain) < MAX_CAUSE_DEPTH:
        nxt = current.__cause__
        if nxt is None and not current.__suppress_context__:
            nxt = current.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(nxt))
        chain.append(nxt)
        current = nxt
    return chain


def _frames(tb: TracebackType | None) -> list[tuple[str, str]]:
    """(module, function) of each frame, outermost first."""
    found = []
    for frame, _lineno in traceback.walk_tb(tb):
        module = frame.f_globals.get("__name__", "?")
        found.append((str(module), frame.f_code.co_name))
    return found


def classify(exc: BaseException) -> tuple[ErrorCategory, bool]:
    """Category and whether retrying can help, from the exception's types."""
    mro = type(exc).__mro__
    for klass in mro:
        for prefix, category in _MODULE_CATEGORIES:
            if klass.__module__ == prefix or klass.__module__.startswith(prefix + "."):
                return category, _retryable(exc, category)
    for klass in mro:
        for name, category in _NAME_CATEGORIES:
            if klass.__name__ == name:
                return category, _retryable(exc, category)
    return ErrorCategory.INTERNAL, False


def _retryable(exc: BaseException, category: ErrorCategory) -> bool:
    if any(k.__name__ in _RETRYABLE_NAMES for k in type(exc).__mro__):
        return True
    if category is ErrorCategory.DATABASE:
        # Connection-level database failures heal; a bad query does not.
        text = f"{type(exc).__name__} {exc}".lower()
        return any(w in text for w in ("connect", "timeout", "unavailable", "closed", "reset"))
    return category is ErrorCategory.NETWORK


@dataclass(frozen=True)
class ErrorOccurrence:
    """One error, analysed: what grouping and persistence need."""

    fingerprint: str
    service: str
    exception_type: str
    category: ErrorCategory
    retryable: bool
    message: str
    sample: str
    signature: dict[str, Any]
    occurred_at: float = field(default_factory=time.time)

    @property
    def recovery_hints(self) -> tuple[str, ...]:
        return RECOVERY_HINTS[self.category]


@dataclass
class ErrorGroup:
    """Every occurrence of one fingerprint."""

    fingerprint: str
    service: str
    exception_type: str
    category: ErrorCategory
    retryable: bool
    recovery_hints: tuple[str, ...]
    sample: str
    count: int
    first_seen: float
    last_seen: float


class ErrorGroupStore(Protocol):
    async def record(self, occurrence: ErrorOccurrence) -> ErrorGroup: ...

    async def get(self, fingerprint: str) -> ErrorGroup | None: ...


def signature_digest(signature: dict[str, Any]) -> str:
    canonical = json.dumps(signature, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class ErrorDNA:
    """Fingerprints errors for one service and records them in a group store."""

    def __init__(
        self,
        service: str,
        store: ErrorGroupStore | None = None,
        in_app_prefixes: Sequence[str] = ("aitrading",),
        frame_depth: int = DEFAULT_FRAME_DEPTH,
    ) -> None:
        self.service = service
        self._store = store
        self._in_app = tuple(in_app_prefixes)
        self._depth = frame_depth

    def signature(self, exc: BaseException) -> dict[str, Any]:
        """The exact inputs of the fingerprint; shown to humans to explain a grouping."""
        frames = _frames(exc.__traceback__)
        in_app = [f for f in frames if self._is_in_app(f[0])]
        chosen = (in_app or frames)[-self._depth :]
        sig: dict[str, Any] = {
            "v": ALGORITHM_VERSION,
            "service": self.service,
            "type": _qualified(type(exc)),
            "causes": [_qualified(type(c)) for c in cause_chain(exc)],
            "frames": [f"{module}:{function}" for module, function in chosen],
        }
        if not chosen:
            sig["message"] = parameterise(str(exc))
        return sig

    def fingerprint(self, exc: BaseException) -> str:
        return signature_digest(self.signature(exc))

    def analyze(self, exc: BaseException) -> ErrorOccurrence:
        sig = self.signature(exc)
        category, retryable = classify(exc)
        formatted = "".join(traceback.format_exception(exc))
        return ErrorOccurrence(
            fingerprint=signature_digest(sig),
            service=self.service,
            exception_type=sig["type"],
            category=category,
            retryable=retryable,
            message=redact(str(exc))[:MAX_SAMPLE_CHARS],
            sample=redact(formatted)[-MAX_SAMPLE_CHARS:],
            signature=sig,
        )

    async def capture(self, exc: BaseException) -> ErrorGroup:
        """Analyse `exc` and add it to its group in the store."""
        if self._store is None:
            raise RuntimeError("ErrorDNA has no group store; pass one to capture errors")
        return await self._store.record(self.analyze(exc))

    def _is_in_app(self, module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in self._in_app)


_UPSERT = """
INSERT INTO error_groups AS g (fingerprint, service, exception_type, category, retryable,
    recovery_hints, signature, sample, count, first_seen, last_seen)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, 1, to_timestamp($9), to_timestamp($9))
ON CONFLICT (fingerprint) DO UPDATE SET
    count = g.count + 1,
    last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
    sample = EXCLUDED.sample
RETURNING fingerprint, service, exception_type, category, retryable, recovery_hints, sample,
    count, extract(epoch FROM first_seen) AS first_seen, extract(epoch FROM last_seen) AS last_seen
"""

_SELECT = """
SELECT fingerprint, service, exception_type, category, retryable, recovery_hints, sample,
    count, extract(epoch FROM first_seen) AS first_seen, extract(epoch FROM last_seen) AS last_seen
FROM error_groups WHERE fingerprint = $1
"""


class PostgresErrorGroupStore:
    """Error groups in PostgreSQL; one atomic upsert per occurrence keeps counts exact."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, occurrence: ErrorOccurrence) -> ErrorGroup:
        row = await self._pool.fetchrow(
            _UPSERT,
            occurrence.fingerprint,
            occurrence.service,
            occurrence.exception_type,
            occurrence.category.value,
            occurrence.retryable,
            json.dumps(list(occurrence.recovery_hints)),
            json.dumps(occurrence.signature, sort_keys=True),
            occurrence.sample,
            occurrence.occurred_at,
        )
        assert row is not None
        return _group_from_row(row)

    async def get(self, fingerprint: str) -> ErrorGroup | None:
        row = await self._pool.fetchrow(_SELECT, fingerprint)
        return None if row is None else _group_from_row(row)


def _group_from_row(row: Any) -> ErrorGroup:
    return ErrorGroup(
        fingerprint=row["fingerprint"],
        service=row["service"],
        exception_type=row["exception_type"],
        category=ErrorCategory(row["category"]),
        retryable=row["retryable"],
        recovery_hints=tuple(json.loads(row["recovery_hints"])),
        sample=row["sample"],
        count=row["count"],
        first_seen=float(row["first_seen"]),
        last_seen=float(row["last_seen"]),
    )


VECTOR_DIMENSIONS = 256
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{1,}")


def error_vector(
    signature: dict[str, Any], message: str, dims: int = VECTOR_DIMENSIONS
) -> list[float]:
    """An embedding of an error computed here, with no model: hashed, weighted features.

    Features are the exception type, its causes, each frame and the module path parts of each
    frame, and the words of the parameterised message; each is hashed (SHA-1, stable across
    processes) into one of `dims` buckets with a sign, and the vector is L2-normalised. Errors
    that share types, call paths and wording land close together under cosine distance,
    which is what Weaviate's similarity search over error groups needs.
    """
    features: list[tuple[str, float]] = [(f"type:{signature['type']}", 3.0)]
    features += [(f"cause:{c}", 2.0) for c in signature.get("causes", [])]
    for frame in signature.get("frames", []):
        features.append((f"frame:{frame}", 2.0))
        module = frame.split(":", 1)[0]
        features += [(f"module:{part}", 0.5) for part in module.split(".")]
    features += [(f"word:{w.lower()}", 1.0) for w in _TOKEN.findall(parameterise(message))]
    vector = [0.0] * dims
    for feature, weight in features:
        digest = hashlib.sha1(feature.encode(), usedforsecurity=False).digest()
        bucket = int.from_bytes(digest[:4], "big") % dims
        vector[bucket] += weight if digest[4] & 1 else -weight
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm else vector
