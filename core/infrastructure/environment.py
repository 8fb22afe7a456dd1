"""What differs between development and production, decided here and nowhere else.

`settings.environment` is `development` (the default: embedded servers, a development signing
key, plaintext on loopback) or `production`. Code never compares that string: it asks the
rule it needs (`rules_for(settings.environment).dev_keys`, ...), so what production changes
is one table, reviewed in one place (a test keeps it that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EnvironmentName = Literal["development", "production"]


@dataclass(frozen=True)
class EnvironmentRules:
    # every store needs its URL; embedded servers are refused
    needs_real_servers: bool
    # a token signing key may be generated on first start (kept in the data dir)
    dev_keys: bool
    # the CLI may mint development tokens without an API key
    dev_tokens: bool
    # database-service applies the migrations at start (default of services.migrate_on_start)
    migrate_on_start: bool
    # writes to database-service need a service token (services.require_service_identity)
    service_identity_required: bool
    # a listener may serve plaintext on an address other than loopback
    plaintext_beyond_loopback: bool


_RULES: dict[str, EnvironmentRules] = {
    "development": EnvironmentRules(
        needs_real_servers=False,
        dev_keys=True,
        dev_tokens=True,
        migrate_on_start=True,
        service_identity_required=False,
        plaintext_beyond_loopback=True,
    ),
    "production": EnvironmentRules(
        needs_real_servers=True,
        dev_keys=False,
        dev_tokens=False,
        migrate_on_start=False,
        service_identity_required=True,
        plaintext_beyond_loopback=False,
    ),
}


def rules_for(environment: str) -> EnvironmentRules:
    """The rules of `development` or `production`; anything else is a programming error
    (settings validate the name before it gets here)."""
    try:
        return _RULES[environment]
    except KeyError:
        raise ValueError(f"unknown environment {environment!r}") from None
