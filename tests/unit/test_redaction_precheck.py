"""`may_hold_secret`, the cheap check in front of `redact`, never says no where one of
`redact`'s substitutions could match: it is checked against the case-insensitive regex it
replaced for ASCII text, over keywords in every case and position, and non-ASCII text."""

from __future__ import annotations

import random
import string

from aitrading.core.security.redaction import _ANY_SECRET, may_hold_secret, redact

KEYWORDS = (
    "bearer",
    "basic",
    "eyJ",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "authorization",
    "redis://:pw@",
    "postgresql://app:pw@",
)


def _random_case(word: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in word)


def _corpus(rng: random.Random) -> list[str]:
    filler = string.ascii_letters + string.digits + " /:=@._-"
    texts = []
    for _ in range(4000):
        left = "".join(rng.choice(filler) for _ in range(rng.randrange(0, 40)))
        right = "".join(rng.choice(filler) for _ in range(rng.randrange(0, 40)))
        middle = _random_case(rng.choice(KEYWORDS), rng) if rng.random() < 0.7 else ""
        texts.append(left + middle + right)
    return texts


def test_never_says_no_where_the_regex_finds_a_candidate() -> None:
    rng = random.Random(20261203)
    corpus = _corpus(rng)
    found = [t for t in corpus if _ANY_SECRET.search(t)]
    assert len(found) > 2000  # the corpus exercises the keywords
    assert all(may_hold_secret(t) for t in found)


def test_non_ascii_text_keeps_the_regex_and_its_case_folding() -> None:
    # re.IGNORECASE matches the long s (U+017F) and the Kelvin sign (U+212A) to s and k
    for text in ("pa\u017f\u017fword=hunter2", "to\u212aen: abcdef", "café password=x"):
        assert may_hold_secret(text)
    assert redact("pa\u017f\u017fword=hunter2") == "pa\u017f\u017fword=***"


def test_says_no_for_the_lines_most_logs_are() -> None:
    for text in (
        "tick batch stored",
        "database-service",
        "GET /api/v1/market/ticks?symbol=EURUSD&start=0&end=1 200 in 3.2 ms from 10.0.0.1:5432",
        "upstream slow",
    ):
        assert not may_hold_secret(text)
