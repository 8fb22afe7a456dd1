"""Redaction of secrets in free text: credentials in URLs, tokens and `key=value` secrets.

Error samples, log lines and exception messages can carry a DSN or a token that a library
put into its message. Anything that leaves a process as text passes through `redact` first.
"""

from __future__ import annotations

import re

MASK = "***"

_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@"
)
_KEY_VALUE = re.compile(
    r"(?P<key>\b[\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization)[\w-]*)"
    r"(?P<sep>['\"]?\s*[=:]\s*)(?P<quote>['\"]?)(?P<value>[^\s'\",;&]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<kind>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


# One cheap search decides whether any of the substitutions below can match: most log lines
# carry no secret, and the router runs this on every line.
_ANY_SECRET = re.compile(
    r"://[^/\s]*:[^/\s]*@|bearer|basic|eyJ|password|passwd|pwd|secret|token|api[_-]?key|apikey|"
    r"authorization",
    re.IGNORECASE,
)


_SECRET_NAME = re.compile(
    r"password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|credential|dsn",
    re.IGNORECASE,
)


def secret_name(name: str) -> bool:
    """Whether a field called `name` holds a secret as a whole (`password`, `api_key`,
    `refresh_token`, `dsn`…): its value is masked, not searched."""
    return _SECRET_NAME.search(name) is not None


def redact(text: str) -> str:
    """`text` with credentials, bearer tokens, JWTs and secret-named values masked."""
    if not _ANY_SECRET.search(text):
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _BEARER.sub(lambda m: f"{m['kind']}{MASK}", text)
    text = _JWT.sub(MASK, text)
    return _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", text)
