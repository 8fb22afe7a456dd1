"""`aitrading tls issue`: a CA and certificates for services outside Kubernetes (compose).

In Kubernetes the operator makes the stack's CA and certificates. Elsewhere — docker
compose, a few VMs — this writes the same into a folder: `ca.crt`, `ca.key` (0600) and for
each `--name` `<name>.crt` and `<name>.key`, and for each `--signing-key` an Ed25519
`<name>.pem` (the token signing key, the audit checkpoint key). Every key is 0600, owned by
the user that reads it: `--owner NAME=UID:GID` for containers that run as their own users
(PostgreSQL insists on owning its key; images drop supplementary groups, so a shared group
would not do). Idempotent: what exists is kept, so a restart does not re-key.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import typer

from aitrading.cli.common import console, err_console
from aitrading.core.security.certificates import new_ca, signed_certificate
from aitrading.core.security.keys import ed25519_pem

app = typer.Typer(help="TLS material outside Kubernetes.", no_args_is_help=True)
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


_OWNER = re.compile(r"(?P<name>[a-z0-9-]+)=(?P<uid>\d+):(?P<gid>\d+)")


def _write(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, mode)
    if owner is not None:
        os.chown(temporary, *owner)
    os.replace(temporary, path)


def parse_owners(values: list[str]) -> dict[str, tuple[int, int]]:
    """`NAME=UID:GID` pairs; a clear error for anything else."""
    owners = {}
    for value in values:
        found = _OWNER.fullmatch(value)
        if found is None:
            raise typer.BadParameter(f"{value!r}: use NAME=UID:GID, e.g. postgres=999:999")
        owners[found["name"]] = (int(found["uid"]), int(found["gid"]))
    return owners


@app.command()
def issue(
    folder: Path = typer.Argument(..., help="where to write (created if missing)"),  # noqa: B008
    name: list[str] = typer.Option(  # noqa: B008
        ..., "--name", help="a host name to certify (repeat): the file name and its DNS name"
    ),
    owner: list[str] = typer.Option(  # noqa: B008
        [], "--owner", help="NAME=UID:GID: who owns NAME's key (repeat); default: this user"
    ),
    signing_key: list[str] = typer.Option(  # noqa: B008
        [], "--signing-key", help="an Ed25519 signing key to write as <name>.pem (repeat)"
    ),
) -> None:
    """A CA (kept) and a certificate per name, also valid for `localhost`."""
    owners = parse_owners(owner)
    bad = [n for n in [*name, *signing_key] if not _NAME.fullmatch(n)]
    if bad:
        err_console.print(f"not a host name: {', '.join(bad)} (lowercase letters, digits, '-')")
        raise typer.Exit(2)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ca_key_path, ca_cert_path = folder / "ca.key", folder / "ca.crt"
        if not (ca_key_path.exists() and ca_cert_path.exists()):
            ca_key, ca_cert = new_ca("aitrading compose CA")
            _write(ca_key_path, ca_key, 0o600)
            _write(ca_cert_path, ca_cert, 0o644)
            console.print(f"wrote {ca_cert_path}")
        ca_key, ca_cert = ca_key_path.read_bytes(), ca_cert_path.read_bytes()
        for host in name:
            key_path, cert_path = folder / f"{host}.key", folder / f"{host}.crt"
            if key_path.exists() and cert_path.exists():
                continue
            key, cert = signed_certificate(ca_key, ca_cert, [host, "localhost"])
            _write(key_path, key, 0o600, owners.get(host))
            _write(cert_path, cert, 0o644)
            console.print(f"wrote {cert_path}")
        for key_name in signing_key:
            path = folder / f"{key_name}.pem"
            if path.exists():
                continue
            _write(path, ed25519_pem(), 0o600, owners.get(key_name))
            console.print(f"wrote {path}")
    except OSError as exc:
        err_console.print(f"cannot write to {folder}: {exc.strerror}")
        raise typer.Exit(1) from None
