"""Key names of both layouts: the single-server one byte for byte (the older system's, and this
library's derived keys as they are stored today), and the cluster one (docs/architecture.md,
"Cluster layout"): the keys each write call touches share one hash slot. Pure: no server."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

import training_analytics as ta
from training_analytics.keys import CERTIFICATION_STATUSES, EXPIRABLE_STATUSES

SINGLE = {
    "course_enrollments": (("c1",), "training:enrollments:c1"),
    "course_completions": (("c1",), "training:completions:c1"),
    "module_enrollments": (("c1", "m1"), "training:module:enrolled:c1:m1"),
    "module_completions": (("c1", "m1"), "training:module:completed:c1:m1"),
    "user_course_progress": (("u1", "c1"), "training:progress:u1:c1"),
    "enrollment_by_date": (("2025-01-02",), "training:enrollment:date:2025-01-02"),
    "completion_by_date": (("2025-01-02",), "training:completion:date:2025-01-02"),
    "enrollment_timeseries": ((), "training:enrollment:timeseries"),
    "completion_timeseries": ((), "training:completion:timeseries"),
    "all_training_certifications": ((), "training:certifications:all"),
    "training_certification": (("x",), "training:certification:x"),
    "certifications_by_status": (("claimed",), "training:certifications:status:claimed"),
    "course_analytics_cache": (("c1",), "cache:training:analytics:course:c1"),
    "overview_metrics_cache": ((), "cache:training:analytics:overview"),
    "credential_analytics_cache": ((), "cache:training:analytics:credentials"),
    "course_analytics_cache_pattern": ((), "cache:training:analytics:course:*"),
    "training_course": (("c1",), "training:course:c1"),
    "all_training_courses": ((), "training:courses:all"),
    "published_training_courses": ((), "training:courses:published"),
    "training_courses_by_category": (("sales",), "training:courses:by-category:sales"),
    "index_marker": ((), "training:agg:schema"),
    "course_stats": (("c1",), "training:agg:course:c1"),
    "course_enrollments_by_day": (("c1",), "training:agg:course:c1:enrollments"),
    "course_completions_by_day": (("c1",), "training:agg:course:c1:completions"),
    "course_unenrolled_progress": (("c1",), "training:agg:course:c1:unenrolled-progress"),
    "credential_stats": ((), "training:agg:credentials"),
    "certification_expiry": (("issued",), "training:agg:certifications:expiry:issued"),
    "reindex_lock": ((), "training:reindex:lock"),
    "reindex_idle": ((), "training:reindex:idle"),
    "reindex_scratch": (("tok", "sums"), "training:agg:reindex:tok:sums"),
    "ingest_sequence": (("tok",), "training:ingest:tok"),
    "derived_pattern": ((), "training:agg:*"),
    "course_enrollments_pattern": ((), "training:enrollments:*"),
    "course_completions_pattern": ((), "training:completions:*"),
    "user_course_progress_pattern": ((), "training:progress:*"),
    "training_patterns": ((), ["training:*", "cache:training:*"]),
    "time_zone_marker": ((), "training:meta:time-zone"),
    "demo_marker": ((), "training:meta:demo"),
    "migration_record": ((), "training:meta:migrate"),
    "store_version": ((), "training:version"),
    "api_keys": ((), "training:service:apikeys"),
    "api_key": (("abc",), "training:service:apikey:abc"),
    "store_epoch": ((), "training:service:epoch"),
    "xapi_statement": (("s1",), "training:xapi:statement:s1"),
}


@pytest.mark.parametrize("prefix", ["", "tenant-a:"])
def test_the_single_server_layout_is_unchanged(prefix: str) -> None:
    for layout in ({}, {"layout": "single"}):
        k = ta.TrainingKeys(prefix, **layout)  # type: ignore[arg-type]
        for name, (args, expected) in SINGLE.items():
            got = getattr(k, name)(*args)
            if isinstance(expected, list):
                assert got == [f"{prefix}{p}" for p in expected], name
            else:
                assert got == f"{prefix}{expected}", name


def test_every_key_method_has_a_single_layout_expectation() -> None:
    public = {
        name
        for name in dir(ta.TrainingKeys)
        if not name.startswith("_") and callable(getattr(ta.TrainingKeys, name))
    }
    cluster_only = {
        "course_enrollment_timeseries",
        "course_completion_timeseries",
        "course_registry",
        "layout_record",
        "certification_bucket",
        "certification_buckets",
        "slot_tag",
    }
    assert public - cluster_only == set(SINGLE)


CLUSTER = ta.TrainingKeys(layout="cluster")
ids = st.from_regex(r"[A-Za-z0-9@._\-]{1,40}", fullmatch=True)


def test_cluster_keys_by_name() -> None:
    k = CLUSTER
    assert k.course_enrollments("c1") == "training:enrollments:{c1}"
    assert k.module_completions("c1", "m1") == "training:module:completed:{c1}:m1"
    assert k.user_course_progress("u1", "c1") == "training:progress:u1:{c1}"
    assert k.course_enrollment_timeseries("c1") == "training:enrollment:timeseries:{c1}"
    assert k.course_stats("c1") == "training:agg:course:{c1}"
    assert k.course_unenrolled_progress("c1") == "training:agg:course:{c1}:unenrolled-progress"
    assert k.index_marker("c1") == "training:agg:schema:{c1}"
    assert k.index_marker() == "training:agg:schema:{:meta}"
    assert k.store_version("c1") == "training:version:{c1}"
    assert k.ingest_sequence("tok", "c1") == "training:ingest:tok:{c1}"
    assert k.training_course("c1") == "training:course:{:catalog}:c1"
    assert k.all_training_courses() == "training:courses:all:{:catalog}"
    assert k.training_courses_by_category("x") == "training:courses:by-category:x:{:catalog}"
    assert k.api_keys() == "training:service:apikeys:{:service}"
    assert k.store_epoch() == "training:service:epoch:{:service}"
    assert k.api_key("ab") == "training:service:apikey:{:service}:ab"
    assert k.time_zone_marker() == "training:meta:time-zone:{:meta}"
    assert k.course_registry() == "training:agg:courses:{:meta}"
    assert k.migration_record() == "training:meta:migrate:{:meta}"
    bucket = k.certification_bucket("cert-1")
    assert bucket == f":cert:{zlib.crc32(b'cert-1') % 256:03d}"
    assert k.training_certification("cert-1") == f"training:certification:{{{bucket}}}:cert-1"
    assert k.all_training_certifications(bucket) == f"training:certifications:all:{{{bucket}}}"
    assert len(k.certification_buckets()) == 256
    assert ta.TrainingKeys("t:", layout="cluster").course_stats("c") == "t:training:agg:course:{c}"


def test_cluster_layout_has_no_global_counters_or_caches() -> None:
    for name, args in [
        ("enrollment_by_date", ("2025-01-01",)),
        ("completion_timeseries", ()),
        ("course_analytics_cache", ("c1",)),
        ("overview_metrics_cache", ()),
        ("credential_analytics_cache", ()),
        ("all_training_certifications", ()),  # one per bucket: the bucket is needed
        ("credential_stats", ()),
        ("store_version", ()),
    ]:
        with pytest.raises(ta.LayoutError):
            getattr(CLUSTER, name)(*args)
    with pytest.raises(ta.LayoutError):
        ta.TrainingKeys().course_registry()  # and the single layout has no cluster-only key
    with pytest.raises(ta.LayoutError):
        ta.TrainingKeys().store_version("c1")
    with pytest.raises(ta.InvalidIdError):
        CLUSTER.credential_stats(":cert:999")  # not a bucket of 256


@pytest.mark.parametrize(
    "options",
    [
        {"layout": "sharded"},
        {"layout": "cluster", "cert_buckets": 0},
        {"layout": "cluster", "cert_buckets": 20_000},
        {"prefix": "tenant-{a}:", "layout": "cluster"},
    ],
)
def test_bad_layout_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ta.InvalidInputError):
        ta.TrainingKeys(**options)  # type: ignore[arg-type]


@given(course=ids, module=ids, user=ids, day=st.just("2025-03-04"))
def test_a_course_events_keys_share_one_slot(course: str, module: str, user: str, day: str) -> None:
    k = CLUSTER
    keys = [
        k.index_marker(course),
        k.course_enrollment_timeseries(course),
        k.course_completion_timeseries(course),
        k.store_version(course),
        k.course_enrollments(course),
        k.course_completions(course),
        k.module_enrollments(course, module),
        k.module_completions(course, module),
        k.user_course_progress(user, course),
        k.course_stats(course),
        k.course_enrollments_by_day(course),
        k.course_completions_by_day(course),
        k.course_unenrolled_progress(course),
        k.ingest_sequence("stream-1", course),
        k.reindex_scratch("tok", "sums", course),
    ]
    assert {key_slot(key.encode()) for key in keys} == {key_slot(course.encode())}
    assert {k.slot_tag(key) for key in keys} == {course}
    del day


@given(cert=ids)
def test_a_certificates_keys_share_its_buckets_slot(cert: str) -> None:
    k = CLUSTER
    bucket = k.certification_bucket(cert)
    keys = [
        k.index_marker(bucket),
        k.store_version(bucket),
        k.training_certification(cert),
        k.all_training_certifications(bucket),
        *(k.certifications_by_status(s, bucket) for s in CERTIFICATION_STATUSES),
        *(k.certification_expiry(s, bucket) for s in EXPIRABLE_STATUSES),
        k.credential_stats(bucket),
    ]
    assert len({key_slot(key.encode()) for key in keys}) == 1


def test_store_wide_keys_share_their_tags_slot() -> None:
    k = CLUSTER
    catalog = [
        k.training_course("c1"),
        k.all_training_courses(),
        k.published_training_courses(),
        k.training_courses_by_category("sales"),
        k.store_version(":catalog"),
    ]
    assert len({key_slot(key.encode()) for key in catalog}) == 1
    assert len({key_slot(key.encode()) for key in (k.api_keys(), k.api_key("d"))}) == 1
    meta = [k.index_marker(), k.course_registry(), k.layout_record(), k.time_zone_marker()]
    meta.append(k.migration_record())
    assert len({key_slot(key.encode()) for key in meta}) == 1


def test_buckets_spread_over_slots() -> None:
    slots = {key_slot(f"{{{b}}}".encode()) for b in CLUSTER.certification_buckets()}
    assert len(slots) == 256  # each bucket its own slot: they spread as slots do
