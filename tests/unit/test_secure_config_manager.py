from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from aitrading.core.infrastructure.config_manager import SecuritySettings
from aitrading.core.security.secure_config_manager import (
    MasterKey,
    MasterKeyring,
    RedactingFilter,
    SecretsError,
    SecretVault,
    master_keyring_from_settings,
)


@pytest.fixture
def vault(tmp_path: Path) -> SecretVault:
    return SecretVault(tmp_path / "secrets.enc.json", MasterKeyring(MasterKey.generate()))


def test_round_trip_and_nothing_readable_at_rest(vault: SecretVault) -> None:
    vault.put("postgres-password", "correct horse battery staple")
    vault.put("mt5-login", SecretStr("88001234"))
    assert vault.get("postgres-password").get_secret_value() == "correct horse battery staple"
    assert vault.names() == ["mt5-login", "postgres-password"]
    raw = vault.path.read_text()
    assert "correct horse" not in raw
    assert "88001234" not in raw
    assert oct(vault.path.stat().st_mode & 0o777) == "0o600"


def test_each_secret_has_its_own_data_key(vault: SecretVault) -> None:
    vault.put("a", "same")
    vault.put("b", "same")
    entries = json.loads(vault.path.read_text())["secrets"]
    assert entries["a"]["wrapped_key"] != entries["b"]["wrapped_key"]
    assert entries["a"]["ciphertext"] != entries["b"]["ciphertext"]


def test_tampering_and_moving_ciphertexts_are_detected(vault: SecretVault) -> None:
    vault.put("a", "alpha-value")
    vault.put("b", "beta-value")
    document = json.loads(vault.path.read_text())
    document["secrets"]["b"] = document["secrets"]["a"]  # move a's sealed value under name b
    vault.path.write_text(json.dumps(document))
    with pytest.raises(SecretsError, match="failed authentication"):
        vault.get("b")


def test_wrong_master_key_cannot_open_and_says_so_without_material(vault: SecretVault) -> None:
    vault.put("a", "alpha-value")
    stranger = SecretVault(vault.path, MasterKeyring(MasterKey.generate()))
    with pytest.raises(SecretsError, match="no master key with id") as caught:
        stranger.get("a")
    assert "alpha" not in str(caught.value)


def test_master_key_rotation_rewraps_without_loss(vault: SecretVault) -> None:
    values = {f"s{i}": f"value-{i}" for i in range(5)}
    for name, value in values.items():
        vault.put(name, value)
    old = json.loads(vault.path.read_text())["secrets"]
    new_key = MasterKey.generate()
    assert vault.rotate_master(MasterKeyring(new_key)) == 5
    rotated = json.loads(vault.path.read_text())["secrets"]
    assert {e["kid"] for e in rotated.values()} == {new_key.kid}
    assert all(rotated[n]["ciphertext"] == old[n]["ciphertext"] for n in values)  # only re-wrapped
    fresh = SecretVault(vault.path, MasterKeyring(new_key))  # the old key is no longer needed
    assert {n: fresh.get(n).get_secret_value() for n in values} == values


def test_master_key_sources_and_errors(tmp_path: Path) -> None:
    key = MasterKey.generate()
    import base64

    encoded = base64.b64encode(key.key).decode()
    from_env = master_keyring_from_settings(SecuritySettings(master_key=SecretStr(encoded)))
    assert from_env.primary.kid == key.kid
    key_file = tmp_path / "master.key"
    key_file.write_text(encoded + "\n")
    assert master_keyring_from_settings(SecuritySettings(master_key_file=key_file)).primary == key
    with pytest.raises(SecretsError, match="32 bytes"):
        MasterKey.from_base64(base64.b64encode(b"short").decode())
    with pytest.raises(SecretsError, match="not valid base64"):
        MasterKey.from_base64("***")
    assert encoded not in repr(key)


def test_redacting_filter_on_real_log_output() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter([SecretStr("mt5-pa55-Xq9"), "abc"]))
    logger = logging.getLogger("aitrading.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("login with password %s failed", "mt5-pa55-Xq9")
        logger.info("upstream said Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl")
        logger.error("connect to %s", "postgresql://app:dbpw1234@db:5432/x")
        try:
            raise ConnectionError("redis://:redispw99@cache:6379 unreachable")
        except ConnectionError:
            logger.exception("cache down")
        logger.info("abc is too short to be masked")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    for secret in ("mt5-pa55-Xq9", "eyJzdWIiOi", "dbpw1234", "redispw99"):
        assert secret not in output
    assert "cache down" in output
    assert "ConnectionError" in output
    assert "abc is too short" in output


def test_redacting_filter_masks_the_fields_passed_with_extra() -> None:
    """`extra=` fields are printed by formatters and stored by the log router as they come:
    a secret there is masked like one in the message, and other fields keep their values."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        logging.Formatter("%(message)s|%(dsn)s|%(api_key)s|%(peer)s|%(target)s|%(ticks)s")
    )
    handler.addFilter(RedactingFilter([SecretStr("mt5-pa55-Xq9")]))
    logger = logging.getLogger("aitrading.test.redaction.extra")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.info(
            "connecting",
            extra={
                "dsn": "postgresql://app:dbpw1234@db:5432/x",  # masked by its name
                "api_key": 12345678,  # by its name, whatever its type
                "peer": "Bearer abcdefghijklmnop from mt5-pa55-Xq9",  # searched as text
                "target": {"url": "redis://:redispw99@cache:6379"},  # an object, as text
                "ticks": 1000,
            },
        )
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    for secret in ("dbpw1234", "12345678", "abcdefghijklmnop", "mt5-pa55-Xq9", "redispw99"):
        assert secret not in output
    message, dsn, api_key, peer, target, ticks = output.strip().split("|")
    assert (message, dsn, api_key, ticks) == ("connecting", "***", "***", "1000")
    assert peer == "Bearer *** from ***"
    assert "cache:6379" in target
