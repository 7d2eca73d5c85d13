"""The embedded server and connection resolution, against real Valkey processes only.

Each test gets its own short data directory under /tmp (unix socket paths are limited to about
100 bytes, too short for pytest's tmp_path) and stops every server it started.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import training_analytics.server as server_module
from training_analytics.errors import EmbeddedServerError, StoreUnavailableError
from training_analytics.server import (
    EmbeddedServer,
    async_connect,
    async_ping,
    connect,
    embedded_server_url,
    ping,
    stop_embedded_server,
)

# Where the package under test was imported from, so that subprocesses import the same code
# whether or not the project is installed.
_SOURCE_ROOT = str(Path(server_module.__file__).resolve().parents[1])
_SUBPROCESS_TIMEOUT = 30


def _new_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ta-", dir="/tmp"))


def _cleanup(data_dir: Path) -> None:
    stop_embedded_server(data_dir, force=True)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = _new_data_dir()
    monkeypatch.setenv("TRAINING_ANALYTICS_DATA_DIR", str(path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    yield path
    _cleanup(path)


@pytest.fixture
def other_data_dir() -> Iterator[Path]:
    path = _new_data_dir()
    yield path
    _cleanup(path)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, env.get("PYTHONPATH")]))
    return env


def _run_python(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (same environment); return its stdout lines."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=_SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # A failure inside the exit handler only logs; it must not go unnoticed here.
    assert "could not stop" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; an unreaped zombie (our container's init may not reap) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_bytes().rpartition(b")")[2].split()[:1] != [b"Z"]
        except OSError:
            return False
    return True


_PRELUDE = "from training_analytics.server import EmbeddedServer, connect\n"


def test_second_process_shares_the_running_server(data_dir: Path) -> None:
    client = connect()
    client.set("shared:key", "from-parent")
    server = EmbeddedServer.at()
    pid = server.read_pid()
    assert pid is not None
    assert connect().info("server")["process_id"] == pid

    lines = _run_python(
        _PRELUDE + "c = connect()\n"
        "print(c.get('shared:key'))\n"
        "print(c.info('server')['process_id'])\n"
    )

    assert lines == ["from-parent", str(pid)]
    # The child saw us connected and left the server running for us.
    assert client.get("shared:key") == "from-parent"
    assert server.read_pid() == pid


def test_concurrent_starts_share_one_server_and_the_last_to_exit_stops_it(
    data_dir: Path,
) -> None:
    # Each child connects (racing to start the server), reports the server's pid, then waits
    # until every child has connected, so all of them use the server at the same time.
    code = (
        _PRELUDE + "import sys\n"
        "c = connect()\n"
        "c.incr('starts')\n"
        "print(c.info('server')['process_id'], flush=True)\n"
        "sys.stdin.read()\n"
    )
    children = [_start_child(code) for _ in range(3)]
    pids = []
    try:
        for child in children:
            assert child.stdout is not None
            pids.append(child.stdout.readline().strip())
    finally:
        # Let them all exit at once: the exit handlers race for the lock.
        for child in children:
            assert child.stdin is not None
            child.stdin.close()
        for child in children:
            _finish_child(child)

    assert len(set(pids)) == 1, pids
    assert pids[0].isdigit()
    assert not _pid_alive(int(pids[0]))
    assert not EmbeddedServer.at().socket_path.exists()
    assert _run_python(_PRELUDE + "print(connect().get('starts'))") == ["3"]


def _start_child(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_child(child: subprocess.Popen[str]) -> None:
    """Close the child's stdin (its cue to go on) and check that it exited cleanly."""
    assert child.stdin is not None
    child.stdin.close()
    with child:  # waits for the child and closes its pipes
        assert child.stderr is not None
        stderr = child.stderr.read()
    assert child.returncode == 0, stderr
    assert "could not stop" not in stderr, stderr


def test_explicit_stop_leaves_a_server_another_process_uses(data_dir: Path) -> None:
    client = connect()
    client.set("k", "v")
    pid = EmbeddedServer.at().read_pid()
    child = _start_child(
        _PRELUDE + "import sys\nc = connect()\nprint(c.get('k'), flush=True)\nsys.stdin.read()\n"
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "v"
        assert stop_embedded_server() is False
        assert client.get("k") == "v"
    finally:
        _finish_child(child)
    # We stayed attached, so the child, exiting, saw us and left the server running.
    assert client.get("k") == "v"
    assert EmbeddedServer.at().read_pid() == pid
    assert stop_embedded_server() is True
    assert pid is not None
    assert not _pid_alive(pid)


def test_exiting_process_does_not_keep_the_server_in_use(data_dir: Path) -> None:
    client = connect()
    pid = EmbeddedServer.at().read_pid()
    # The child's own exit hook is registered before the server module's, so it runs after it:
    # the child has released the server but still holds its (pooled) connections open.
    child = _start_child(
        "import atexit, sys\n"
        "atexit.register(lambda: (print('released', flush=True), sys.stdin.read()))\n"
        + _PRELUDE
        + "c = connect()\n"
        "c.set('from-child', '1')\n"
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "released"
        assert client.get("from-child") == "1"
        names = {entry.get("name") for entry in client.client_list()}
        assert names == {f"training-analytics-{os.getpid()}"}, names
        assert stop_embedded_server() is True
    finally:
        _finish_child(child)
    assert pid is not None
    assert not _pid_alive(pid)


def test_data_survives_the_server_stopping_at_exit(data_dir: Path) -> None:
    server = EmbeddedServer.at()
    lines = _run_python(
        _PRELUDE + "c = connect()\n"
        "c.set('persist:key', 'kept')\n"
        "print(EmbeddedServer.at().read_pid())\n"
    )
    pid = int(lines[0])

    # The writer was the only user, so its exit handler shut the server down.
    assert not _pid_alive(pid)
    assert server.read_pid() is None
    assert not server.socket_path.exists()
    assert (server.directory / "appendonlydir").is_dir()

    lines = _run_python(
        _PRELUDE + "c = connect()\n"
        "print(c.get('persist:key'))\n"
        "print(EmbeddedServer.at().read_pid())\n"
    )
    assert lines[0] == "kept"
    assert int(lines[1]) != pid


def test_url_argument_and_redis_url_take_precedence(
    data_dir: Path, other_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_url = embedded_server_url(other_data_dir)
    assert other_url == f"unix://{other_data_dir}/valkey/valkey.sock"
    connect(other_url).set("where", "other")
    own_server = EmbeddedServer.at()

    assert connect(other_url).get("where") == "other"

    monkeypatch.setenv("REDIS_URL", other_url)
    assert connect().get("where") == "other"

    async def read_async() -> str | None:
        client = async_connect()
        try:
            await async_ping(client)
            value = await client.get("where")
            assert value is None or isinstance(value, str)
            return value
        finally:
            await client.aclose()

    assert asyncio.run(read_async()) == "other"

    # The argument wins over REDIS_URL; an unreachable REDIS_URL is reported with its URL.
    unreachable = "redis://127.0.0.1:1/0"
    monkeypatch.setenv("REDIS_URL", unreachable)
    assert connect(other_url).get("where") == "other"
    with pytest.raises(StoreUnavailableError, match=r"redis://127\.0\.0\.1:1/0"):
        ping(connect())

    # No embedded server was started for the default data directory along the way.
    assert not own_server.directory.exists()


def test_too_long_data_dir_is_refused(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_dir = tmp_path / ("d" * 110)
    monkeypatch.setenv("TRAINING_ANALYTICS_DATA_DIR", str(long_dir))

    with pytest.raises(EmbeddedServerError, match="TRAINING_ANALYTICS_DATA_DIR"):
        connect()
    assert not long_dir.exists()


def test_stale_socket_is_replaced(data_dir: Path) -> None:
    server = EmbeddedServer.at()
    server.directory.mkdir(parents=True)
    # A socket file nobody listens on, as a crashed server leaves it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leftover:
        leftover.bind(str(server.socket_path))
    assert server.socket_path.exists()

    client = connect()
    assert client.ping()
    assert client.set("after", "crash")


def test_server_that_fails_to_start_reports_its_log(data_dir: Path) -> None:
    server = EmbeddedServer.at()
    aof_dir = server.directory / "appendonlydir"
    aof_dir.mkdir(parents=True)
    (aof_dir / "appendonly.aof.manifest").write_text("this is not a manifest\n")

    started = time.monotonic()
    with pytest.raises(EmbeddedServerError, match="exited with code") as caught:
        connect()
    assert time.monotonic() - started < 10
    assert "manifest" in str(caught.value).lower()
    assert server.read_pid() is None
