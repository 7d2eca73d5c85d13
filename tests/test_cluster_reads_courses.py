"""The global course reads on a real cluster (three primaries, three replicas: the ``cluster``
fixture), compared with the suite's single server: the overview, average completion, global and
per-course daily series and series reports, the course-analytics pages, the enhanced courses,
the catalog listings, the store version, kept answers and cache invalidation.

The same mixed history (every event kind, 20 courses, certificates) and the same catalog
(published and draft courses in three categories, tied orders, a course with no data, two
courses with data but no catalog entry) go into both stores; every operation must answer the
same, read through the sync and the asyncio facade on each store. Plus what only the cluster
layout has: the per-course marker rule of global reads, a registered course without data, the
store version as a sum of per-tag counters (and the digest kept answers compare), and the
round trips of a global read (per node, not per course or learner).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

import training_analytics as ta
from training_analytics import changes, courses, timeseries
from training_analytics._context import Context
from training_analytics._exec import run_on
from training_analytics._protocol import (
    Batch,
    Op,
    ScriptCall,
    cardinalities_per_slot,
    cmd,
    load_script,
)
from training_analytics.answers import AnswerCache
from training_analytics.bench.mixed import MixedHistory, events
from training_analytics.cluster.executor import _node_of, _OnCluster
from training_analytics.cluster.local import ClusterControl
from training_analytics.keys import TrainingKeys

from .factories import NOW, course

HISTORY = MixedHistory(pairs=1200, seed=11)
SMALL = MixedHistory(pairs=150, seed=5)
# History courses left out of the catalog (events name courses the catalog lacks), and a
# catalog course nobody took.
UNCATALOGUED = ("course-18", "course-19")
EMPTY_COURSE = "course-empty"
CATEGORIES = ("sales", "technical", "legal")
RANGES = [
    ("2025-01-01", "2025-03-31"),
    ("2025-06-01", "2025-06-30"),
    ("2025-10-15", "2026-01-10"),
    ("2025-04-02", "2025-04-02"),
    ("2024-01-01", "2024-12-31"),  # before the history: zeros
]


def _clock() -> datetime:
    return NOW


class View:
    """An asyncio facade called like the sync one, on a loop of its own."""

    def __init__(self, facade: ta.AsyncTrainingAnalytics, loop: asyncio.AbstractEventLoop):
        self._facade, self._loop = facade, loop
        self.keys = facade.keys
        self.context = facade.context

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._facade, name)
        return lambda *a, **k: self._loop.run_until_complete(method(*a, **k))


class Stores:
    """Facades on the single server and on the cluster, sync and asyncio, one time zone."""

    def __init__(self, client: redis.Redis, redis_url: str, cluster: ClusterControl, tz: str):
        self.loop = asyncio.new_event_loop()
        seed = cluster.nodes()[0]
        self.cluster_client = redis.cluster.RedisCluster(
            host=seed.host, port=seed.port, password=cluster.password, decode_responses=True
        )
        self.aclients: list[Any] = [
            redis.asyncio.Redis.from_url(redis_url, decode_responses=False, protocol=3),
            redis.asyncio.cluster.RedisCluster(
                host=seed.host, port=seed.port, password=cluster.password
            ),
        ]
        options: dict[str, Any] = {"clock": _clock, "tz": tz}
        self.single = ta.TrainingAnalytics(client, **options)
        self.cluster = ta.TrainingAnalytics(self.cluster_client, **options)
        self.single_async = View(ta.AsyncTrainingAnalytics(self.aclients[0], **options), self.loop)
        self.cluster_async = View(ta.AsyncTrainingAnalytics(self.aclients[1], **options), self.loop)

    def on_cluster(self) -> list[Any]:
        return [self.cluster, self.cluster_async]

    def everywhere(self) -> list[Any]:
        return [self.single, self.single_async, self.cluster, self.cluster_async]

    def close(self) -> None:
        for aclient in self.aclients:
            self.loop.run_until_complete(aclient.aclose())
        self.loop.close()
        self.cluster_client.close()


@pytest.fixture
def stores(
    client: redis.Redis, redis_url: str, cluster: ClusterControl, cluster_client: Any
) -> Iterator[Stores]:
    """Both stores flushed (``client`` and ``cluster_client`` flush them), facades in UTC."""
    made = Stores(client, redis_url, cluster, "UTC")
    yield made
    made.close()


def _catalog(facade: Any, history: MixedHistory) -> None:
    ids = [c for c in history.course_ids() if c not in UNCATALOGUED] + [EMPTY_COURSE]
    for n, course_id in enumerate(ids):
        facade.create_training_course(
            course(
                course_id,
                modules=history.modules,
                isPublished=n % 3 != 0,
                category=CATEGORIES[n % 3],
                order=n % 7,  # ties: pages resume by (order, id)
                certificateEnabled=n % 2 == 0,
                duration=30 + 17 * n,
            )
        )


def _load(facade: Any, history: MixedHistory) -> None:
    _catalog(facade, history)
    result = facade.record_many(events(history), stream=True, batch_size=500)
    assert result.rejected == []


def _pages(facade: Any, limit: int) -> list[Any]:
    pages, cursor = [], None
    while True:
        page = facade.list_course_analytics(limit=limit, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages


def answers(facade: Any, history: MixedHistory) -> dict[str, Any]:
    """Every operation of this part, as a JSON-able value per name."""
    found: dict[str, Any] = {
        "overview": facade.get_training_overview_metrics(),
        "average completion": facade.calculate_average_completion(),
        "all courses": facade.get_all_training_courses(),
        "published courses": facade.get_published_training_courses(),
        "enhanced": facade.get_all_enhanced_courses(),
        "series report default": facade.get_series_report("enrollments"),
        "series report end only": facade.get_series_report("completions", end_date="2025-09-30"),
    }
    for shown in ("published", "draft"):
        found[f"enhanced {shown}"] = facade.get_enhanced_courses_by_status(shown)
    statuses: tuple[str | None, ...] = (None, "published", "draft")
    for category in (*CATEGORIES, "none-such"):
        found[f"category {category}"] = facade.get_training_courses_by_category(category)
        for status in statuses:
            found[f"find {status} {category}"] = facade.find_training_courses(
                status=status, category=category
            )
    for status in statuses:
        found[f"find {status}"] = facade.find_training_courses(status=status)
    for limit in (1, 4, 1000):
        found[f"pages {limit}"] = _pages(facade, limit)
    course_ids = [None, *history.course_ids()[:3], UNCATALOGUED[0], EMPTY_COURSE]
    for start, end in RANGES:
        for course_id in course_ids:
            where = f"{start} {end} {course_id}"
            found[f"daily enrolments {where}"] = facade.get_daily_enrollment_counts(
                start, end, course_id
            )
            found[f"daily completions {where}"] = facade.get_daily_completion_counts(
                start, end, course_id
            )
            found[f"enrolment series {where}"] = facade.get_enrollment_time_series(
                start, end, course_id
            )
            found[f"completion series {where}"] = facade.get_completion_time_series(
                start, end, course_id=course_id
            )
        for kind in ("enrollments", "completions"):
            found[f"report {kind} {start} {end}"] = facade.get_series_report(kind, start, end)
            found[f"report {kind} {start} {end} course-01"] = facade.get_series_report(
                kind, start, end, "course-01"
            )
    return {name: _plain(value) for name, value in found.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True)
    return value


def _differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    assert found.keys() == expected.keys()
    return [name for name in expected if found[name] != expected[name]]


def test_every_global_read_gives_the_single_servers_answers(stores: Stores) -> None:
    _load(stores.single, HISTORY)
    _load(stores.cluster, HISTORY)
    expected = answers(stores.single, HISTORY)
    # The history is not trivial: figures, series and pages have something in them.
    overview = expected["overview"]
    assert overview["totalEnrollments"] > 1000
    assert overview["totalCertifications"] > 200
    assert 0 < overview["publishedCourses"] < overview["totalCourses"] == 19
    assert sum(p["count"] for p in expected["daily enrolments 2025-01-01 2025-03-31 None"]) > 100
    assert len(expected["pages 4"]) == 5
    assert answers(stores.single_async, HISTORY) == expected
    for facade in stores.on_cluster():
        assert _differences(expected, answers(facade, HISTORY)) == []


def test_answers_in_another_time_zone(
    client: redis.Redis, redis_url: str, cluster: ClusterControl, cluster_client: Any
) -> None:
    """Day buckets written in Auckland (UTC+12/13): the summed series keep the zone's days."""
    made = Stores(client, redis_url, cluster, "Pacific/Auckland")
    try:
        _load(made.single, SMALL)
        _load(made.cluster, SMALL)
        expected = answers(made.single, SMALL)
        for facade in made.on_cluster():
            assert _differences(expected, answers(facade, SMALL)) == []
    finally:
        made.close()


def test_an_empty_cluster_store_answers_zeros(stores: Stores) -> None:
    expected = answers(stores.single, SMALL)
    assert expected["overview"]["totalCourses"] == 0
    for facade in stores.on_cluster():
        assert _differences(expected, answers(facade, SMALL)) == []
        assert facade.get_store_version().version == 0
        assert facade.invalidate_all_training_caches() == 0
        assert facade.invalidate_course_cache("course-00") == 0


def test_cache_invalidation_is_zero_on_a_cluster_and_checks_its_input(stores: Stores) -> None:
    _load(stores.cluster, SMALL)
    for facade in stores.on_cluster():
        assert facade.invalidate_all_training_caches() == 0
        assert facade.invalidate_course_cache("course-01") == 0
        with pytest.raises(ta.InvalidIdError):
            facade.invalidate_course_cache("bad:id")
    # The single server still deletes the older system's caches.
    stores.single.record_enrollment("u1", "c1")
    single_client = stores.single.client
    single_client.set("cache:training:analytics:course:c1", "{}")
    single_client.set("cache:training:analytics:overview", "{}")
    assert stores.single.invalidate_course_cache("c1") == 2


def _raw_course(cluster_client: redis.cluster.RedisCluster, course_id: str) -> None:
    """A course's base keys as a copy from an unindexed store leaves them: no marker."""
    cluster_client.sadd(f"training:enrollments:{{{course_id}}}", "old-learner")
    cluster_client.sadd("training:agg:courses:{:meta}", course_id)


def test_a_global_series_refuses_a_course_with_data_but_no_marker(stores: Stores) -> None:
    _load(stores.cluster, SMALL)
    for facade in stores.on_cluster():
        assert sum(p.count for p in facade.get_enrollment_time_series("2025-01-01", "2025-12-31"))
    _raw_course(stores.cluster_client, "copied")
    for facade in stores.on_cluster():
        reads: list[Callable[[Any], Any]] = [
            lambda f: f.get_daily_enrollment_counts("2025-01-01", "2025-01-31"),
            lambda f: f.get_completion_time_series("2025-01-01", "2025-01-31"),
            lambda f: f.get_series_report("enrollments", "2025-01-01", "2025-01-31"),
            lambda f: f.get_enrollment_time_series("2025-01-01", "2025-01-31", "copied"),
        ]
        for read in reads:
            with pytest.raises(ta.NotIndexedError):
                read(facade)
        # Reads of base sets only need no marker, as on one server; nor other courses' reads.
        assert facade.get_training_overview_metrics().total_enrollments > 0
        assert facade.get_daily_enrollment_counts("2025-01-01", "2025-01-31", "course-01")


def test_a_registered_course_without_data_counts_zero(stores: Stores) -> None:
    """The registry is added to before a course's first write: a writer that stopped in
    between leaves a registered course with nothing, which the sums read as zeros."""
    _load(stores.single, SMALL)
    _load(stores.cluster, SMALL)
    stores.cluster_client.sadd("training:agg:courses:{:meta}", "never-written")
    expected = answers(stores.single, SMALL)
    for facade in stores.on_cluster():
        assert _differences(expected, answers(facade, SMALL)) == []


def test_a_course_whose_set_was_written_behind_the_librarys_back_is_stale(
    stores: Stores,
) -> None:
    _load(stores.cluster, SMALL)
    stores.cluster_client.sadd("training:completions:{course-03}", "ghost")
    for facade in stores.on_cluster():
        with pytest.raises(ta.StaleIndexError, match="course-03"):
            facade.get_completion_time_series("2025-01-01", "2025-01-31")
        assert facade.get_enrollment_time_series("2025-01-01", "2025-01-31")  # not that set


def _write_each_kind(facade: Any, n: int) -> list[Callable[[], Any]]:
    """A write of each tag kind: a course, a certificate bucket, the catalog."""
    cert = f"cert-v{n}"
    return [
        lambda: facade.record_enrollment(f"v{n}", "course-02"),
        lambda: facade.record_enrollment(f"v{n}", f"new-course-{n}"),  # a new registration
        lambda: facade.issue_training_certification(
            {
                "id": cert,
                "userId": f"v{n}",
                "courseId": "course-02",
                "courseName": {"en": "C"},
                "userName": "V",
                "userEmail": "v@example.com",
                "status": "issued",
                "issuedAt": "2025-06-01T00:00:00.000Z",
                "expiresAt": "2026-06-01T00:00:00.000Z",
                "verificationCode": "X",
                "score": 80,
            }
        ),
        lambda: facade.update_certification_status(cert, "claimed"),
        lambda: facade.publish_training_course(f"course-0{3 * n}"),  # a draft
        lambda: facade.update_training_course("course-01", {"order": 40 + n}),
    ]


def test_the_store_version_moves_with_every_write_of_every_tag(stores: Stores) -> None:
    _load(stores.cluster, SMALL)
    sync, aio = stores.cluster, stores.cluster_async
    start = sync.get_store_version().version
    assert start == aio.get_store_version().version > 0
    versions = [start]
    for n, write in enumerate(_write_each_kind(sync, 0) + _write_each_kind(aio, 1)):
        write()
        now = (sync if n % 2 else aio).get_store_version().version
        assert now > versions[-1], n
        versions.append(now)
    # A replay changes nothing and moves nothing.
    sync.record_enrollment("v0", "course-02")
    assert sync.get_store_version().version == versions[-1]
    # A version counter something else broke: StoreError naming it, as on one server.
    stores.cluster_client.set("training:version:{course-05}", "x")
    with pytest.raises(ta.StoreError, match="course-05"):
        sync.get_store_version()
    assert sync.read_stamp() is None


def test_the_stamp_tells_equal_sums_of_different_counters_apart(stores: Stores) -> None:
    """Two readers that each saw one of two racing writes find the same sum; the digest of the
    counters tells their stamps apart, so neither is given the other's kept answer."""
    _load(stores.cluster, SMALL)
    facade = stores.cluster
    cache = AnswerCache(clock=lambda: 0.0)
    read = courses.get_training_overview_metrics
    facade.cached_answer(cache, "overview", read)  # the store's epoch: made by its first read
    before = facade.read_stamp()
    assert before is not None and before.digest is not None
    c = stores.cluster_client
    c.incr("training:version:{course-01}")
    one = facade.read_stamp()
    c.decr("training:version:{course-01}")
    c.incr("training:version:{course-02}")
    other = facade.read_stamp()
    assert one is not None and other is not None
    assert one.version == other.version == before.version + 1
    assert one != other
    facade.answer_at(cache, "overview", read, one)
    assert cache.get("overview", one) is not None
    assert cache.get("overview", other) is None


def test_kept_answers_follow_the_cluster_stores_writes(stores: Stores) -> None:
    _load(stores.cluster, SMALL)
    keys: list[Any] = []
    for facade in stores.on_cluster():
        cache = AnswerCache(clock=lambda: 0.0)
        read = courses.get_training_overview_metrics
        first = facade.cached_answer(cache, "overview", read)  # creates the epoch
        assert first == facade.cached_answer(cache, "overview", read)
        assert len(cache) == 1
        facade.record_enrollment(f"late-{len(keys)}", "course-04")
        later = facade.cached_answer(cache, "overview", read)
        assert later != first
        checked = facade.check_keys(["ta_" + "x" * 43, "malformed"])
        assert checked.infos == [None, None]
        assert checked.stamp == facade.read_stamp()
        assert checked.stamp.epoch is not None
        keys.append(checked.stamp)
        assert facade.answer_at(cache, "overview", read, checked.stamp) == later
    assert keys[0].version < keys[1].version


def test_a_second_facade_reads_newly_registered_courses(stores: Stores) -> None:
    """A facade remembers the registered courses from its last version read; courses
    registered since are read in one more round trip, and counted."""
    _load(stores.cluster, SMALL)
    reader = stores.cluster
    before = reader.get_store_version().version
    ta.TrainingAnalytics(stores.cluster_client, clock=_clock).record_enrollment("u", "brand-new")
    assert reader.get_store_version().version == before + 1
    assert reader.get_store_version().version == before + 1


# --- round trips -------------------------------------------------------------------------------


class _Traced(_OnCluster):
    """The cluster's transport, recording per batch (round trip) the number of commands and
    of distinct primaries the executor sends them to."""

    def __init__(self, client: redis.cluster.RedisCluster) -> None:
        super().__init__(client)
        self.trace: list[tuple[int, int]] = []

    def execute(self, batch: Batch) -> list[Any]:
        nodes = {_node_of(self.client, call).name for call in batch.calls}
        self.trace.append((len(batch.calls), len(nodes)))
        return super().execute(batch)

    def submit(self, batch: Batch) -> int:
        raise AssertionError("a read submits nothing")


def _traced(facade: ta.TrainingAnalytics, op: Op[Any]) -> tuple[Any, list[tuple[int, int]]]:
    """Drive ``op`` on the cluster as ``run_on_cluster`` does (the same loop and transport),
    recording its round trips."""
    client = facade.client
    assert isinstance(client, redis.cluster.RedisCluster)
    traced = _Traced(client)
    return run_on(op, traced), traced.trace


def test_a_global_read_costs_round_trips_per_node_not_per_course_or_learner(
    stores: Stores, cluster: ClusterControl
) -> None:
    """Recorded as the executor routes them: the overview, a global series and the version
    cost a fixed number of batches whatever the history's size, each batch going to at most
    one pipeline per primary, all side by side; the commands grow with courses (and buckets),
    never with learners."""
    primaries = len(cluster.primaries())
    reads: dict[str, Callable[[Any], Op[Any]]] = {
        "overview": courses.get_training_overview_metrics,
        "series": lambda ctx: timeseries.get_enrollment_time_series(
            ctx, "2025-01-01", "2025-03-31"
        ),
        "version": changes.get_store_version,
    }
    traces: dict[str, list[list[tuple[int, int]]]] = {name: [] for name in reads}
    for history in (SMALL, HISTORY):
        cluster.flush()
        facade = ta.TrainingAnalytics(stores.cluster_client, clock=_clock)  # registers anew
        _load(facade, history)
        facade.get_store_version()  # the facade learns the registered courses
        for name, read in reads.items():
            _, trace = _traced(facade, read(facade.context))
            traces[name].append(trace)
    for name, (small, large) in traces.items():
        # The same batches, of the same commands, at 150 and at 1,200 learner-courses.
        assert small == large, name
        assert all(nodes <= primaries for _, nodes in large), name
    assert [nodes for _, nodes in traces["overview"][1]] == [primaries, primaries]
    # The registry, then every course's day counters (4 commands a course) in one batch.
    course_count = len(HISTORY.course_ids())
    assert traces["series"][1] == [(1, 1), (4 * course_count, primaries)]
    # The version: one batch once this facade knows the registered courses.
    assert len(traces["version"][1]) == 1


# --- the pure parts, driven with hand-made replies (no store) ----------------------------------


def _drive(op: Op[Any], *replies: list[Any]) -> tuple[Any, list[Batch]]:
    """Run ``op`` giving it ``replies`` batch after batch; its result and the batches sent."""
    sent: list[Batch] = []
    pending = iter(replies)
    try:
        request = next(op)
        while True:
            assert isinstance(request, Batch)
            sent.append(request)
            request = op.send(next(pending))
    except StopIteration as stop:
        return stop.value, sent


def _cluster_context(buckets: int = 2) -> Context:
    return Context(keys=TrainingKeys(layout="cluster", cert_buckets=buckets))


def test_the_single_layouts_version_read_is_one_get() -> None:
    ctx = Context()
    read = changes.version_read(ctx)
    assert read.calls == (cmd("GET", "training:version"),)
    assert _drive(changes.versions(ctx, read, ["7"]))[0] == changes.Versions(7, None)


def test_the_version_sums_the_counters_and_digests_which_they_are() -> None:
    ctx = _cluster_context()
    first = changes.version_read(ctx)
    assert [c.args for c in first.calls] == [
        ("SMEMBERS", "training:agg:courses:{:meta}"),
        ("GET", "training:version:{:catalog}"),
        ("GET", "training:version:{:cert:0}"),
        ("GET", "training:version:{:cert:1}"),
    ]
    # Two registered courses this context has not seen: one more batch, for them only.
    found, sent = _drive(changes.versions(ctx, first, [["b", "a"], "1", None, "2"]), ["3", "4"])
    assert [c.args for c in sent[0].calls] == [
        ("GET", "training:version:{a}"),
        ("GET", "training:version:{b}"),
    ]
    assert found.total == 1 + 2 + 3 + 4
    # Now known: asked in the first batch, nothing more sent.
    second = changes.version_read(ctx)
    assert [c.args[1] for c in second.calls[-2:]] == [
        "training:version:{a}",
        "training:version:{b}",
    ]
    again, sent = _drive(changes.versions(ctx, second, [["a", "b"], "1", None, "2", "3", "4"]))
    assert sent == [] and again == found
    # The same sum of other counters is another digest.
    moved, _ = _drive(changes.versions(ctx, second, [["a", "b"], "1", None, "2", "4", "3"]))
    assert moved.total == found.total and moved.digest != found.digest
    # A course no longer registered (the store emptied) does not count.
    emptied, _ = _drive(changes.versions(ctx, second, [[], None, None, None, "3", "4"]))
    assert emptied.total == 0
    with pytest.raises(ta.StoreError, match=r"training:version:\{:cert:1\}"):
        _drive(changes.versions(ctx, changes.version_read(ctx), [[], None, None, "x"]))


def test_cardinalities_per_slot_sends_one_call_per_group() -> None:
    groups = [("a{x}", "b{x}"), (), ("c{y}",)]
    counts, sent = _drive(cardinalities_per_slot(groups), [["1", "2"], ["3"]])
    assert counts == [[1, 2], [], [3]]
    assert sent[0].calls == tuple(
        ScriptCall(load_script("cardinalities.lua", read_only=True), keys, ())
        for keys in (("a{x}", "b{x}"), ("c{y}",))
    )
    assert _drive(cardinalities_per_slot([(), ()]))[0] == [[], []]


def test_cardinalities_per_slot_falls_back_to_scard_when_the_code_is_refused() -> None:
    op = cardinalities_per_slot([("a{x}", "b{x}"), ("c{y}",)])
    first = next(op)
    assert len(first.calls) == 2
    fallback = op.throw(ta.CodeUnavailableError("no code"))
    assert [c.args for c in fallback.calls] == [
        ("SCARD", "a{x}"),
        ("SCARD", "b{x}"),
        ("SCARD", "c{y}"),
    ]
    with pytest.raises(StopIteration) as stop:
        op.send(["4", "5", "6"])
    assert stop.value.value == [[4, 5], [6]]
