"""The service when the store goes away and when it is stopped: a server of the test's own
(the embedded Valkey binary, with an append-only file) that it can stop and start again."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

import training_analytics as ta
from training_analytics.server import _binary_path

from .service_process import ServiceProcess, free_port


class StoreProcess:
    """valkey-server on a loopback port, persisting to ``directory`` (AOF), restartable."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        options = {"port": self.port, "bind": "127.0.0.1", "dir": self.directory}
        arguments = [part for name, value in options.items() for part in (f"--{name}", str(value))]
        self.process = subprocess.Popen(
            [str(_binary_path()), *arguments, "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("valkey-server did not start")

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()  # SIGTERM: Valkey flushes its AOF and exits
        self.process.wait(10)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreProcess]:
    server = StoreProcess(tmp_path)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.stop()


def test_store_down_then_back_503_then_recovery_without_restart(
    store: StoreProcess, tmp_path: Path
) -> None:
    key = ta.TrainingAnalytics(redis.Redis.from_url(store.url)).create_api_key("a", "admin").key
    service = ServiceProcess(store.url, tmp_path / "serve.log")
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=service.base, headers=headers, timeout=30) as http:
            assert http.get("/api/v1/overview").status_code == 200
            store.stop()
            for path in ("/api/v1/overview", "/readyz"):
                reply = http.get(path)
                assert reply.status_code == 503, reply.text
                assert reply.headers["retry-after"] == "5"
                assert reply.headers["content-type"] == "application/problem+json"
                assert str(store.port) not in reply.text  # no store address in the answer
            assert http.get("/healthz").status_code == 200  # the process itself is up
            store.start()
            assert http.get("/readyz").status_code == 200
            events = [{"kind": "enrollment", "userId": "u1", "courseId": "c1"}]
            assert http.post("/api/v1/events", json=events).json()["applied"] == 1
            assert http.get("/api/v1/overview").json()["totalEnrollments"] == 0  # no catalog
            metrics = http.get("/metrics").text
            assert 'training_analytics_store_errors_total{error="StoreUnavailableError"}' in metrics
    finally:
        assert service.terminate() == 0
    assert key not in service.output()


def test_sigterm_during_batches_loses_nothing_acknowledged(
    store: StoreProcess, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(store.url, decode_responses=True)
    key = ta.TrainingAnalytics(client).create_api_key("a", "ingest").key
    service = ServiceProcess(store.url, tmp_path / "serve.log")
    acknowledged: list[list[str]] = []
    failures: list[str] = []
    started = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(
            base_url=service.base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as http:
            for batch in range(1000):
                users = [f"w{worker}-b{batch}-u{n}" for n in range(2000)]
                events = [{"kind": "enrollment", "userId": u, "courseId": "c1"} for u in users]
                try:
                    reply = http.post("/api/v1/events", json=events)
                except httpx.TransportError as exc:
                    failures.append(type(exc).__name__)
                    return
                started.set()
                if reply.status_code != 200:
                    failures.append(str(reply.status_code))
                    return
                assert reply.json()["applied"] == len(users)
                acknowledged.append(users)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    assert started.wait(60)
    time.sleep(0.3)  # batches in flight
    assert service.terminate() == 0
    for thread in threads:
        thread.join(60)
    assert acknowledged and failures  # the stop really came in the middle of the traffic
    enrolled = client.smembers("training:enrollments:c1")
    for users in acknowledged:
        assert enrolled.issuperset(users)
    assert int(client.scard("training:enrollments:c1")) >= sum(len(u) for u in acknowledged)
