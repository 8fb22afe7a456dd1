"""Redaction of secrets in free text: credentials in URLs, tokens and `key=value` secrets.

Error samples, log lines and exception messages can carry a DSN or a token that a library
put into its message. Anything that leaves a process as text passes through `redact` first.
"""

from __future__ import annotations

import functools
import re

MASK = "***"

# The names a secret goes by, in a `key=value` pair and as a field of its own.
_SENSITIVE_KEYS = r"password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization"

_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@"
)
_KEY_VALUE = re.compile(
    rf"(?P<key>\b[\w-]*(?:{_SENSITIVE_KEYS})[\w-]*)"
    r"(?P<sep>['\"]?\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^\s'\",;&]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<kind>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


# One cheap check decides whether any of the substitutions below can match: most log lines
# carry no secret, and the router runs this on every line and every field.
_ANY_SECRET = re.compile(
    rf"://[^/\s]*:[^/\s]*@|bearer|basic|eyJ|{_SENSITIVE_KEYS}",
    re.IGNORECASE,
)
# The same check for ASCII text, by substring: `_ANY_SECRET` costs 1.5 µs on a 16-character
# line and 12 µs on a 100-character one (a case-insensitive alternation tried at every
# position), these 0.25 and 0.75 µs. ASCII case folding is `str.lower`; other text keeps the
# regex, whose IGNORECASE also matches the long s and the Kelvin sign.
_SECRET_WORDS = (
    "bearer",
    "basic",
    "eyj",
    "passw",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "authorization",
)


def may_hold_secret(text: str) -> bool:
    """False only where none of `redact`'s substitutions can match (a superset of them)."""
    if not text.isascii():
        return _ANY_SECRET.search(text) is not None
    lowered = text.lower()
    if "://" in lowered and "@" in lowered:
        return True
    for word in _SECRET_WORDS:  # noqa: SIM110 (`any` over a generator doubles the cost)
        if word in lowered:
            return True
    return False


_SECRET_NAME = re.compile(rf"{_SENSITIVE_KEYS}|credential|dsn", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # field names are few: each is searched once
def secret_name(name: str) -> bool:
    """Whether a field called `name` holds a secret as a whole (`password`, `api_key`,
    `refresh_token`, `dsn`…): its value is masked, not searched."""
    return _SECRET_NAME.search(name) is not None


def redact(text: str) -> str:
    """`text` with credentials, bearer tokens, JWTs and secret-named values masked."""
    if not may_hold_secret(text):
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m['kind']}{MASK}", text)
    text = _JWT.sub(MASK, text)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", text)
