"""``training-analytics serve``: uvicorn with one or more workers over the same store.

Each worker builds its app from the settings passed in the environment (``SETTINGS_ENV``); with
the embedded Valkey server, the parent starts it and the workers share it through its socket.
uvicorn handles SIGINT and SIGTERM: it stops accepting connections and lets requests in flight
finish (each event batch of a request is one atomic script call, so nothing is half-written),
then the workers exit.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from types import FrameType
from typing import Final, NoReturn

from .settings import SETTINGS_ENV, ServiceSettings

#: Seconds a stopping server gives requests in flight before closing their connections.
GRACEFUL_SHUTDOWN_SECONDS: Final = 30


@dataclass(frozen=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "info"
    access_log: bool = True
    metrics_port: int | None = None
    """Also serve ``/metrics`` here, without a key (for a scraper that has none)."""
    metrics_host: str = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything


def base_url(listen: Listen) -> str:
    host = listen.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{listen.port}"


def run(settings: ServiceSettings, listen: Listen) -> None:
    """Serve until SIGINT/SIGTERM. ``settings.redis_url`` must already be resolved (the
    embedded server's socket URL when that is the store) so that every worker uses it."""
    os.environ[SETTINGS_ENV] = settings.to_env()
    # Metrics of every worker in one directory (prometheus-client's multiprocess mode); set
    # before anything imports prometheus_client, which reads it once.
    metrics_dir = tempfile.mkdtemp(prefix="training-analytics-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    import uvicorn  # noqa: PLC0415 - after the environment above is in place

    if listen.metrics_port is not None:
        _serve_metrics(listen.metrics_host, listen.metrics_port)

    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again with the handlers
    # it found: these make that a normal exit, so the cleanup below runs.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped)
    try:
        uvicorn.run(
            "training_analytics.service.app:app_from_env",
            factory=True,
            host=listen.host,
            port=listen.port,
            workers=listen.workers if listen.workers > 1 else None,
            log_level=listen.log_level,
            access_log=listen.access_log,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            server_header=False,
            proxy_headers=False,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stopped(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def _serve_metrics(host: str, port: int) -> None:
    """Every worker's metrics on their own port, from a thread of this (the parent) process."""
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415
    from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)
