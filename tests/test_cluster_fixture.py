"""The test cluster itself: slots, replicas, and the helpers later cluster tests stand on
(failover, slot moves with keys in the slot, stopping a node), against real Valkey nodes."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import redis
import redis.cluster

from training_analytics.cluster import local
from training_analytics.cluster.local import (
    SLOTS,
    ClusterControl,
    LocalCluster,
    LocalClusterError,
    even_slot_ranges,
    parse_info,
)

from .cluster import _port_range


def test_every_slot_is_served_by_one_primary_and_every_node_agrees(cluster: ClusterControl) -> None:
    cluster.wait_until_stable()
    primaries = cluster.primaries()
    if isinstance(cluster, LocalCluster):
        assert len(primaries) == 3
        assert len(cluster.nodes()) == 6
    served = sorted(r for p in primaries for r in p.slots)
    covered = [slot for first, last in served for slot in range(first, last + 1)]
    assert covered == list(range(SLOTS))  # each slot once: no gap, no overlap
    for node in cluster.nodes():
        info = parse_info(cluster.command(node.address, "CLUSTER", "INFO"))
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_assigned"] == str(SLOTS)
    assert cluster.stable_problem() is None


def test_each_primary_has_a_replica_that_follows_it(
    cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster
) -> None:
    for primary in cluster.primaries():
        replicas = cluster.replicas_of(primary)
        assert replicas, f"{primary.address} has no replica"
        # A key in one of this primary's slots, written there and read on its replica.
        first, _ = primary.slots[0]
        key = next(f"k{i}" for i in range(100_000) if cluster.keyslot(f"k{i}") == first)
        cluster.client(primary.address).set(key, primary.node_id)
        assert cluster.command(primary.address, "WAIT", len(replicas), 5000) == len(replicas)
        for replica in replicas:
            role = cluster.command(replica.address, "ROLE")
            assert role[0] == "slave"
            assert role[3] == "connected"
            cluster.command(replica.address, "READONLY")
            assert cluster.client(replica.address).get(key) == primary.node_id


def test_failover_makes_the_replica_primary_and_keeps_acknowledged_writes(
    cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster
) -> None:
    primary = cluster.primaries()[0]
    replica = cluster.replicas_of(primary)[0]
    first, _ = primary.slots[0]
    keys = [f"{{f{i}}}" for i in range(20_000) if cluster.keyslot(f"{{f{i}}}") == first]
    for key in keys:
        cluster_client.set(key, "acknowledged")
    promoted = cluster.failover(replica)
    assert promoted.is_primary
    assert promoted.slots == primary.slots
    assert cluster.node(primary.node_id).primary_id == promoted.node_id
    assert cluster.stable_problem() is None
    # The client follows the MOVED replies to the new primary; nothing was lost.
    assert [cluster_client.get(key) for key in keys] == ["acknowledged"] * len(keys)
    # Fail back, so the layout other tests see stays as the fixture built it.
    cluster.failover(cluster.node(primary.node_id))
    assert cluster.node(primary.node_id).is_primary


def test_failover_refuses_a_primary(cluster: ClusterControl) -> None:
    with pytest.raises(LocalClusterError, match="not a replica"):
        cluster.failover(cluster.primaries()[0])


def test_moving_a_slot_moves_its_keys_and_clients_follow(
    cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster
) -> None:
    keys = [f"{{course-7}}:k{i}" for i in range(250)]
    for key in keys:
        cluster_client.set(key, key)
    slot = cluster.keyslot(keys[0])
    source = cluster.owner(slot)
    target = next(p for p in cluster.primaries() if p.node_id != source.node_id)

    move = cluster.slot_move(slot, target)
    move.begin()
    assert move.migrate(100) == 100
    # Mid-move: keys already moved answer with ASK, the rest from the source; the client
    # follows both, and a write of a new key in the slot goes to the target.
    assert [cluster_client.get(key) for key in keys] == keys
    cluster_client.set("{course-7}:new", "during the move")
    assert move.migrate_all() == 250
    move.finish()

    assert cluster.owner(slot).node_id == target.node_id
    assert cluster.command(target.address, "CLUSTER", "COUNTKEYSINSLOT", slot) == 251
    assert cluster.command(source.address, "CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert [cluster_client.get(key) for key in keys] == keys
    assert cluster_client.get("{course-7}:new") == "during the move"
    # And back in one call.
    assert cluster.move_slot(slot, source) == 251
    assert cluster.owner(slot).node_id == source.node_id


def test_moving_a_slot_to_its_own_primary_is_refused(cluster: ClusterControl) -> None:
    primary = cluster.primaries()[0]
    with pytest.raises(LocalClusterError, match="already"):
        cluster.slot_move(primary.slots[0][0], primary).begin()


def test_a_stopped_replica_is_seen_failing_and_rejoins_when_restarted(
    local_cluster: LocalCluster, cluster_client: redis.cluster.RedisCluster
) -> None:
    replica = local_cluster.replicas_of(local_cluster.primaries()[0])[0]
    local_cluster.stop_node(replica.port)
    assert replica.port not in local_cluster.running_ports

    def marked_failing() -> str | None:
        return None if local_cluster.node(replica.node_id).failing else "not marked failing yet"

    local_cluster.wait_for("the replica marked failing", marked_failing, timeout=20)
    # Its primary still serves the slots: the cluster answers.
    cluster_client.set("{after-stop}", "1")
    assert cluster_client.get("{after-stop}") == "1"
    local_cluster.start_node(replica.port)
    local_cluster.wait_until_stable()
    assert not local_cluster.node(replica.node_id).failing
    assert local_cluster.node(replica.node_id).primary_id == replica.primary_id


def test_even_slot_ranges_cover_every_slot() -> None:
    for primaries in (1, 3, 7):
        ranges = even_slot_ranges(primaries)
        assert ranges[0][0] == 0
        assert ranges[-1][1] == SLOTS - 1
        assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(primaries - 1))
    assert even_slot_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours counts as gone: LocalCluster waits for its children, so none is left.
    return True


def test_a_local_cluster_leaves_no_process_or_directory_behind() -> None:
    with LocalCluster(1, 1, port_range=_port_range()) as small:
        pids = [p.pid for p in small.processes.values()]
        directory = small.directory
        assert directory is not None
        assert len(pids) == 2
        assert all(_alive(pid) for pid in pids)
        assert small.stable_problem() is None
    assert not any(_alive(pid) for pid in pids)
    assert not directory.exists()


def test_a_cluster_that_cannot_start_stops_what_it_started() -> None:
    broken = LocalCluster(1, 1, port_range=_port_range(), extra_config=["--no-such-option", "1"])
    with pytest.raises(LocalClusterError, match="exited while starting"):
        broken.start(timeout=10)
    assert broken.processes == {}
    assert broken.directory is None


def test_a_node_killed_mid_start_is_reported_and_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = LocalCluster(1, 1, port_range=_port_range())
    started: list[int] = []
    original = LocalCluster._form

    def kill_one_then_form(self: LocalCluster, timeout: float) -> None:
        victim = self.processes[self.ports[1]]
        started.extend(p.pid for p in self.processes.values())
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        original(self, min(timeout, 3))

    monkeypatch.setattr(LocalCluster, "_form", kill_one_then_form)
    with pytest.raises((LocalClusterError, redis.RedisError)):
        cluster.start(timeout=10)
    assert cluster.processes == {}
    assert not any(_alive(pid) for pid in started)


def test_a_port_taken_between_the_check_and_the_bind_is_retried_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = local.free_port_pairs
    (busy,) = real(1, *_port_range())
    taken = socket.socket()
    taken.bind(("127.0.0.1", busy))
    taken.listen()
    calls: list[list[int]] = []

    def first_one_busy(count: int, low: int, high: int) -> list[int]:
        ports = [busy] if not calls else real(count, low, high)
        calls.append(ports)
        return ports

    monkeypatch.setattr(local, "free_port_pairs", first_one_busy)
    try:
        with LocalCluster(1, 0, port_range=_port_range()) as single:
            assert single.stable_problem() is None
            assert busy not in single.ports
    finally:
        taken.close()
    assert len(calls) == 2
