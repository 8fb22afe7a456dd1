"""nginx (Debian's package) as a plain reverse proxy in front of an upstream: the peer of the
gateway benchmark, started and stopped inside the benchmark run. Keep-alive to the upstream,
one worker, no logging, so what it adds is what a mature proxy adds for one extra hop."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

CONFIG = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream upstream {{ server 127.0.0.1:{upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )


def _write_config(root: str, port: int, upstream: int) -> None:
    Path(root, "nginx.conf").write_text(CONFIG.format(root=root, port=port, upstream=upstream))


@asynccontextmanager
async def nginx_proxy(port: int, upstream: int) -> AsyncIterator[str]:
    """nginx on 127.0.0.1:`port` proxying to `upstream`; yields its base URL."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
    with tempfile.TemporaryDirectory(prefix="aitrading-nginx-") as root:
        _write_config(root, port, upstream)
        process = await asyncio.create_subprocess_exec(
            binary, "-p", root, "-c", f"{root}/nginx.conf", "-g", "daemon off;"
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            await process.wait()
