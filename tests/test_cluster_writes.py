"""The write path and the per-course reads on a real cluster (three primaries, three replicas:
the ``cluster`` fixture), compared with the suite's single server.

The same mixed history (every event kind) goes into the cluster through ``record_many(stream=
True)`` or through single calls, and into the single server; every course's analytics, funnel
and counts, a sample of progress reads and the certificates by id must be equal. Plus what only
a cluster does: a primary that loses its functions mid-import, a slot moved under the client
(MOVED), and the operations that need global sums refused with a typed error.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

import training_analytics as ta
from training_analytics._protocol import Command, ScriptCall, load_script
from training_analytics.bench.mixed import MixedHistory, events
from training_analytics.cluster.executor import _key
from training_analytics.cluster.local import ClusterControl, LocalCluster

from .factories import NOW, course

HISTORY = MixedHistory(pairs=1200, seed=11)
SMALL = MixedHistory(pairs=150, seed=5)


def _clock() -> Any:
    return NOW


@pytest.fixture(params=["sync", "async"])
def cluster_facade(
    request: pytest.FixtureRequest,
    cluster: ClusterControl,
    cluster_client: redis.cluster.RedisCluster,
) -> Iterator[Any]:
    """A facade on the flushed cluster, sync or asyncio (called like the sync one)."""
    if request.param == "sync":
        yield ta.TrainingAnalytics(cluster_client, clock=_clock)
        return
    loop = asyncio.new_event_loop()
    seed = cluster.nodes()[0]
    aclient = redis.asyncio.cluster.RedisCluster(
        host=seed.host, port=seed.port, password=cluster.password
    )
    facade = ta.AsyncTrainingAnalytics(aclient, clock=_clock)

    class View:
        keys = facade.keys

        def __getattr__(self, name: str) -> Any:
            method = getattr(facade, name)
            return lambda *a, **k: loop.run_until_complete(method(*a, **k))

    yield View()
    loop.run_until_complete(aclient.aclose())
    loop.close()


def _catalog(facade: Any, history: MixedHistory) -> None:
    for course_id in history.course_ids():
        facade.create_training_course(course(course_id, modules=history.modules))


def _apply_one_by_one(facade: Any, history: MixedHistory) -> None:
    for event in events(history):
        kind = event["kind"]
        if kind == "enrollment":
            facade.record_enrollment(event["userId"], event["courseId"], at=event["at"])
        elif kind == "completion":
            facade.record_completion(event["userId"], event["courseId"], at=event["at"])
        elif kind == "module_start":
            facade.record_module_start(event["userId"], event["courseId"], event["moduleId"])
        elif kind == "module_completion":
            facade.record_module_completion(event["userId"], event["courseId"], event["moduleId"])
        elif kind == "progress":
            facade.save_user_course_progress(event["progress"])
        elif kind == "certification_issued":
            facade.issue_training_certification(event["certification"], at=event["at"])
        else:
            assert kind == "certification_status", kind
            facade.update_certification_status(
                event["certId"],
                event["newStatus"],
                claimed_at=event.get("claimedAt"),
                at=event["at"],
            )


def answers(facade: Any, history: MixedHistory) -> dict[str, Any]:
    """Every per-course answer, a sample of progress reads and every certificate by id."""
    found: dict[str, Any] = {}
    for course_id in history.course_ids():
        found[f"analytics {course_id}"] = facade.get_course_detailed_analytics(course_id)
        found[f"funnel {course_id}"] = facade.get_course_module_funnel(course_id)
        found[f"dropoff {course_id}"] = facade.get_course_module_dropoff_rates(course_id)
        found[f"enrolled {course_id}"] = facade.get_course_enrollment_count(course_id)
        found[f"completed {course_id}"] = facade.get_course_completion_count(course_id)
        found[f"completions {course_id}"] = facade.get_course_completions(course_id)
    all_events = events(history)
    progress = sorted(
        {
            (e["progress"]["userId"], e["progress"]["courseId"])
            for e in all_events
            if e["kind"] == "progress"
        }
    )
    for user, course_id in random.Random(3).sample(progress, min(60, len(progress))):
        found[f"progress {user} {course_id}"] = facade.get_user_course_progress_data(
            user, course_id
        )
    certs = sorted(
        {e["certification"]["id"] for e in all_events if e["kind"] == "certification_issued"}
    )
    for cert_id in certs:
        found[f"cert {cert_id}"] = facade.get_training_certification(cert_id)
    return found


@pytest.fixture
def single(client: redis.Redis) -> ta.TrainingAnalytics:
    return ta.TrainingAnalytics(client, clock=_clock)


def _registry(cluster: ClusterControl, facade: Any) -> set[str]:
    """The course registry, read on the primary that holds it."""
    key = facade.keys.course_registry()
    members = cluster.command(cluster.owner(cluster.keyslot(key)).address, "SMEMBERS", key)
    return {m.decode() if isinstance(m, bytes) else m for m in members}


# Outcomes compared without messages: a certificate issued again with other data is refused
# naming the first field that differs, in the order the server's Lua iterates a table (Redis 7
# and Valkey 9 differ).
def _tally(result: ta.BatchResult) -> tuple[int, int, list[tuple[int, str]]]:
    return result.applied, result.unchanged, [(r.index, r.error) for r in result.rejected]


def _outcomes(result: Any) -> list[tuple[int, str, str | None]]:
    return [(r.index, r.status, r.error) for r in result.results]


def test_record_many_stream_gives_the_single_servers_answers(
    cluster_facade: Any, single: ta.TrainingAnalytics, cluster: ClusterControl
) -> None:
    history = events(HISTORY)
    _catalog(single, HISTORY)
    single.record_many(history, stream=True)
    expected = answers(single, HISTORY)

    _catalog(cluster_facade, HISTORY)
    result = cluster_facade.record_many(history, stream=True, batch_size=500)
    assert result.rejected == []
    assert result.applied + result.unchanged == len(history)
    found = answers(cluster_facade, HISTORY)
    assert found.keys() == expected.keys()
    different = [name for name in expected if found[name] != expected[name]]
    assert different == []
    # The history spreads over every primary: the test covers the split by node.
    assert sum(1 for v in expected.values() if v) > 100
    assert _registry(cluster, cluster_facade) == set(HISTORY.course_ids())
    # Replayed, it is counted as on one server (re-saved progress applies again, certificates
    # issued again with another status are refused) and the answers do not move.
    again = cluster_facade.record_many(history, batch_size=700)
    assert _tally(again) == _tally(single.record_many(history, batch_size=700))
    assert answers(cluster_facade, HISTORY) == expected


def test_single_calls_and_record_each_give_the_single_servers_answers(
    cluster_facade: Any, single: ta.TrainingAnalytics, cluster: ClusterControl
) -> None:
    _catalog(single, SMALL)
    single.record_many(events(SMALL))
    expected = answers(single, SMALL)

    _catalog(cluster_facade, SMALL)
    _apply_one_by_one(cluster_facade, SMALL)
    assert answers(cluster_facade, SMALL) == expected
    assert _registry(cluster, cluster_facade) == set(SMALL.course_ids())
    outcomes = cluster_facade.record_each(events(SMALL), batch_size=300)
    assert _outcomes(outcomes) == _outcomes(single.record_each(events(SMALL), batch_size=300))
    assert answers(cluster_facade, SMALL) == expected


def test_refused_events_are_reported_in_event_order(cluster_facade: Any) -> None:
    """Replies of several calls (tags) are put back in the events' order."""
    batch = [
        {"kind": "enrollment", "userId": "u1", "courseId": "a"},
        {"kind": "certification_status", "certId": "nope", "newStatus": "claimed"},
        {"kind": "enrollment", "userId": "u1", "courseId": "b"},
        {"kind": "enrollment", "userId": "u1", "courseId": "a"},
        {"kind": "certification_status", "certId": "nope2", "newStatus": "revoked"},
    ]
    outcomes = cluster_facade.record_each(batch)
    assert [r.status for r in outcomes.results] == [
        "applied",
        "rejected",
        "applied",
        "unchanged",
        "rejected",
    ]
    assert outcomes.results[1].error == "CertificationNotFoundError"
    result = cluster_facade.record_many(batch)
    assert [r.index for r in result.rejected] == [1, 4]


def test_the_cluster_layout_is_chosen_for_a_cluster_client(
    cluster_client: redis.cluster.RedisCluster,
) -> None:
    facade = ta.TrainingAnalytics(cluster_client)
    assert facade.keys.cluster
    facade.record_enrollment("u1", "c1")
    assert cluster_client.sismember("training:enrollments:{c1}", "u1")
    assert cluster_client.get("training:agg:schema:{c1}") == "1"
    assert not cluster_client.exists("training:enrollment:timeseries")
    with pytest.raises(ta.InvalidInputError, match="braces"):
        ta.TrainingAnalytics(cluster_client, prefix="{t}:")


def _primary_of(cluster: ClusterControl, key: str) -> Any:
    return cluster.owner(cluster.keyslot(key))


def test_a_primary_that_loses_its_functions_mid_import_is_healed(
    cluster_facade: Any,
    cluster: ClusterControl,
    single: ta.TrainingAnalytics,
) -> None:
    """FUNCTION FLUSH on one primary between batches: that node reloads, nothing is lost or
    applied twice (the replay check is in the counts: enrolments count once per learner)."""
    history = events(SMALL)
    _catalog(single, SMALL)
    single.record_many(history)
    expected = answers(single, SMALL)
    _catalog(cluster_facade, SMALL)
    victim = _primary_of(cluster, "training:enrollments:{course-00}")
    flushed = 0

    def flushing() -> Iterator[dict[str, Any]]:
        nonlocal flushed
        for index, event in enumerate(history):
            if index and index % 400 == 0:
                cluster.command(victim.address, "FUNCTION", "FLUSH")
                flushed += 1
            yield event

    result = cluster_facade.record_many(flushing(), stream=True, batch_size=200)
    assert flushed >= 3
    assert result.rejected == []
    assert result.applied + result.unchanged == len(history)
    assert answers(cluster_facade, SMALL) == expected


def test_moved_after_a_slot_move_is_followed(
    cluster_facade: Any,
    cluster: ClusterControl,
) -> None:
    course_id = "course-moving"
    key = f"training:enrollments:{{{course_id}}}"
    slot = cluster.keyslot(key)
    cluster_facade.record_enrollment("u1", course_id)  # the client knows the slot's owner
    source = cluster.owner(slot)
    target = next(node for node in cluster.primaries() if node.node_id != source.node_id)
    cluster.move_slot(slot, target)
    try:
        assert cluster.owner(slot).node_id == target.node_id
        # The client's map still names the source: MOVED, followed.
        assert cluster_facade.record_enrollment("u2", course_id) is True
        assert (
            cluster_facade.record_many(
                [
                    {"kind": "enrollment", "userId": f"v{i}", "courseId": course_id}
                    for i in range(50)
                ]
            ).applied
            == 50
        )
        assert cluster_facade.get_course_enrollment_count(course_id) == 52
        assert cluster_facade.get_course_detailed_analytics(course_id).enrollments == 52
    finally:
        cluster.move_slot(slot, source)


def test_a_stopped_node_is_store_unavailable(local_cluster: LocalCluster) -> None:
    cluster = local_cluster
    cluster.wait_until_stable()
    cluster.flush()
    seed = cluster.nodes()[0]
    client = redis.cluster.RedisCluster(
        host=seed.host, port=seed.port, password=cluster.password, socket_timeout=2
    )
    try:
        facade = ta.TrainingAnalytics(client)
        course_id = "course-down"
        facade.record_enrollment("u1", course_id)
        owner = cluster.owner(cluster.keyslot(f"training:enrollments:{{{course_id}}}"))
        port = int(owner.address.rsplit(":", 1)[1])
        cluster.stop_node(port)
        many_courses = [
            {"kind": "enrollment", "userId": "u3", "courseId": f"course-{n}"} for n in range(30)
        ]

        async def record_async() -> None:
            aclient = redis.asyncio.cluster.RedisCluster(
                host=seed.host, port=seed.port, password=cluster.password, socket_timeout=2
            )
            try:
                await ta.AsyncTrainingAnalytics(aclient).record_many(many_courses)
            finally:
                await aclient.aclose()

        try:
            with pytest.raises(ta.StoreUnavailableError):
                facade.record_enrollment("u2", course_id)
            # A batch split over every primary, one of them down: sync and asyncio.
            with pytest.raises(ta.StoreUnavailableError):
                facade.record_many(many_courses)
            with pytest.raises(ta.StoreUnavailableError):
                asyncio.run(record_async())
        finally:
            cluster.start_node(port)
            cluster.wait_until_stable(timeout=60)
    finally:
        client.close()


def test_ask_and_tryagain_during_a_slot_migration_are_followed(
    cluster_facade: Any,
    cluster: ClusterControl,
) -> None:
    """Keys already migrated, the slot not yet handed over: the source answers ASK, and reads go
    to the target after ASKING. A write that would create a key there gets TRYAGAIN (the
    target refuses keys it does not hold yet) and waits until the slot is handed over (here by
    another thread, while it waits); the target first loads the code it lacks."""
    course_id = "course-asked"
    slot = cluster.keyslot(f"training:enrollments:{{{course_id}}}")
    cluster_facade.record_many(
        [{"kind": "enrollment", "userId": f"u{i}", "courseId": course_id} for i in range(20)]
    )
    source = cluster.owner(slot)
    target = next(node for node in cluster.primaries() if node.node_id != source.node_id)
    cluster.command(target.address, "FUNCTION", "FLUSH")
    move = cluster.slot_move(slot, target)
    move.begin()
    handover = threading.Timer(0.3, move.finish)
    try:
        assert move.migrate_all() > 0
        assert cluster_facade.get_course_enrollment_count(course_id) == 20  # ASK
        assert cluster_facade.get_course_enrollments(course_id)[:2] == ["u0", "u1"]
        handover.start()
        assert cluster_facade.record_enrollment("late", course_id) is True  # TRYAGAIN, then ok
    finally:
        if handover.ident is not None:
            handover.join()
        if cluster.owner(slot).node_id != target.node_id:
            move.finish()
    assert handover.finished.is_set()
    assert cluster_facade.get_course_enrollment_count(course_id) == 21
    assert cluster_facade.get_course_detailed_analytics(course_id).enrollments == 21
    cluster.move_slot(slot, source)


def test_calls_are_routed_by_their_first_key() -> None:
    script = load_script("cardinalities.lua", read_only=True)
    assert _key(ScriptCall(script, ("a{x}", "b{x}"), ())) == "a{x}"
    assert _key(Command(("SCARD", "training:enrollments:{c}"))) == "training:enrollments:{c}"
    assert _key(Command(("EXISTS", "k1", "k2"))) == "k1"
    assert _key(Command(("PING",))) is None
    assert _key(Command(("SCAN", 0, "MATCH", "x*"))) is None  # a cursor, not a key


def test_a_course_written_again_after_the_store_was_emptied_is_registered_again(
    cluster_facade: Any, cluster: ClusterControl, cluster_client: redis.cluster.RedisCluster
) -> None:
    # The facade remembers the courses it registered; emptied under it, the store lost the
    # registry, and global sums run over the registry only.
    registry = cluster_facade.keys.course_registry()
    cluster_facade.create_training_course(course("c1"))
    cluster_facade.record_enrollment("u1", "c1")
    assert cluster_client.smembers(registry) == {"c1"}
    cluster.flush()
    cluster_facade.create_training_course(course("c1"))
    cluster_facade.record_enrollment("u2", "c1")  # one write, no other after it
    assert cluster_client.smembers(registry) == {"c1"}
    assert cluster_facade.get_training_overview_metrics().total_enrollments == 1
    cluster.flush()
    cluster_facade.create_training_course(course("c1"))
    stream = [{"kind": "enrollment", "userId": f"u{n}", "courseId": "c1"} for n in range(3)]
    assert cluster_facade.record_many(stream, stream=True).applied == 3
    assert cluster_client.smembers(registry) == {"c1"}
    assert cluster_facade.get_training_overview_metrics().total_enrollments == 3
    # Once registered, a write asks the marker beside its call and registers nothing again.
    before = cluster_client.info("commandstats")
    cluster_facade.record_enrollment("u9", "c1")
    after = cluster_client.info("commandstats")
    assert _calls(after, "sadd") == _calls(before, "sadd")


def _calls(stats: Any, command: str) -> int:
    # RedisCluster.info gives each node's figures; summed over the nodes.
    total = 0
    for node_stats in stats.values():
        found = node_stats.get(f"cmdstat_{command}")
        total += int(found["calls"]) if found else 0
    return total
