"""Least privilege: the ACL rules docs/architecture.md gives, tested as written.

A reader (``+@read +fcall_ro +evalsha_ro``) reads every analytic, even when no code is loaded and
it may load none; a writer records, ingests, edits the catalog and reindexes; the admin also loads
function libraries. Reads also work on a server at its maxmemory whose read function is not
loaded (FUNCTION LOAD is refused there).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics._protocol import load_script
from training_analytics._writes import APPLY

from .factories import NOW, certification, course
from .stores import ONE_SERVER
from .test_refusals import dump_all, memory_full

pytestmark = ONE_SERVER

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"
AT = "2025-06-01T10:00:00Z"


def _rules() -> dict[str, list[str]]:
    block = re.search(r"```acl\n(.*?)```", ARCHITECTURE.read_text(encoding="utf-8"), re.S)
    assert block is not None, "docs/architecture.md lists no ACL rules"
    rules = {}
    for line in block.group(1).splitlines():
        role, _, text = line.partition(":")
        rules[role.strip()] = text.split()
    return rules


RULES = _rules()


@pytest.fixture
def acl_url(client: redis.Redis, redis_url: str) -> Iterator[Callable[[str], str]]:
    """A URL for a new ACL user holding a role's documented rules."""
    names: list[str] = []

    def make(role: str) -> str:
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        names.append(name)
        client.acl_setuser(name, reset=True)
        client.execute_command("ACL", "SETUSER", name, "on", ">secret", *RULES[role])  # type: ignore[no-untyped-call]
        return f"redis://{name}:secret@{redis_url.split('://', 1)[1]}"

    yield make
    for name in names:
        client.acl_deluser(name)


def _populate(analytics: Any) -> None:
    analytics.create_training_course(course("c1", modules=2))
    analytics.create_training_course(course("c2", modules=1, isPublished=False, order=2))
    analytics.record_enrollment("u1", "c1", at=AT)
    analytics.record_enrollment("u2", "c1", at=AT)
    analytics.record_completion("u1", "c1", at="2025-06-02T10:00:00Z")
    analytics.record_module_start("u2", "c1", "m1")
    analytics.record_module_completion("u1", "c1", "m1")
    analytics.save_user_course_progress(
        {
            "userId": "u1",
            "courseId": "c1",
            "status": "completed",
            "moduleProgress": [],
            "overallScore": 90,
            "startedAt": AT,
            "completedAt": "2025-06-02T10:00:00Z",
            "lastAccessedAt": AT,
            "totalTimeSpentMinutes": 30,
        }
    )
    analytics.issue_training_certification(certification("cert1"))
    analytics.issue_training_certification(certification("cert2"))
    analytics.update_certification_status("cert1", "claimed", claimed_at="2025-06-03T00:00:00Z")


READS: dict[str, Callable[[Any], object]] = {
    "enrollments": lambda a: sorted(a.get_course_enrollments("c1")),
    "enrollment count": lambda a: a.get_course_enrollment_count("c1"),
    "completions": lambda a: sorted(a.get_course_completions("c1")),
    "completion count": lambda a: a.get_course_completion_count("c1"),
    "progress": lambda a: a.get_user_course_progress_data("u1", "c1"),
    "drop-off": lambda a: a.get_module_dropoff_rate("c1", "m1"),
    "drop-offs": lambda a: a.get_course_module_dropoff_rates("c1"),
    "daily enrolments": lambda a: a.get_daily_enrollment_counts("2025-06-01", "2025-06-03"),
    "daily completions": lambda a: a.get_daily_completion_counts("2025-06-01", "2025-06-03"),
    "enrolment series": lambda a: a.get_enrollment_time_series(
        "2025-06-01", "2025-06-03", course_id="c1"
    ),
    "completion series": lambda a: a.get_completion_time_series("2025-06-01", "2025-06-03"),
    "certifications": lambda a: sorted(c.id for c in a.get_all_training_certifications()),
    "certification": lambda a: a.get_training_certification("cert1"),
    "credential stats": lambda a: a.get_credential_stats(),
    "claim analytics": lambda a: a.get_credential_claim_analytics(),
    "course analytics": lambda a: a.get_course_detailed_analytics("c1"),
    "average completion": lambda a: a.calculate_average_completion(),
    "overview": lambda a: a.get_training_overview_metrics(),
    "enhanced": lambda a: a.get_all_enhanced_courses(),
    "enhanced by status": lambda a: a.get_enhanced_courses_by_status("published"),
    "course": lambda a: a.get_training_course("c1"),
    "courses": lambda a: a.get_all_training_courses(),
    "published": lambda a: a.get_published_training_courses(),
    "by category": lambda a: a.get_training_courses_by_category("sales"),
}


def _facade(url: str) -> tuple[ta.TrainingAnalytics, redis.Redis]:
    user = redis.Redis.from_url(url, decode_responses=True)
    return ta.TrainingAnalytics(user, clock=lambda: NOW), user


def _flush_code(client: redis.Redis) -> None:
    client.function_flush()
    client.script_flush()


def test_a_reader_reads_every_analytic_without_loading_code(
    client: redis.Redis, redis_url: str, acl_url: Callable[[str], str]
) -> None:
    owner = ta.TrainingAnalytics(client, clock=lambda: NOW)
    _populate(owner)
    expected = {name: read(owner) for name, read in READS.items()}
    reader, user = _facade(acl_url("reader"))
    for loaded in (False, True):
        if loaded:  # the read function loaded by someone else: FCALL_RO
            client.function_load(load_script("cardinalities.lua", read_only=True).library)
        else:
            _flush_code(client)
        before = dump_all(redis_url)
        for name, read in READS.items():
            assert read(reader) == expected[name], name
        assert dump_all(redis_url) == before
    # It may not write.
    before = dump_all(redis_url)
    with pytest.raises(ta.StoreError):
        reader.record_enrollment("u9", "c1", at=AT)
    with pytest.raises(ta.StoreError):
        reader.invalidate_all_training_caches()
    assert dump_all(redis_url) == before
    user.close()


@pytest.mark.parametrize("who", ["owner", "reader"])
def test_reads_work_on_a_full_server_whose_read_function_is_not_loaded(
    client: redis.Redis, acl_url: Callable[[str], str], who: str
) -> None:
    owner = ta.TrainingAnalytics(client, clock=lambda: NOW)
    _populate(owner)
    expected = {name: read(owner) for name, read in READS.items()}
    analytics, user = _facade(acl_url("reader")) if who == "reader" else (owner, None)
    _flush_code(client)
    with memory_full(client):
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.function_load(load_script("cardinalities.lua", read_only=True).library)
        for name, read in READS.items():
            assert read(analytics) == expected[name], name
    if user is not None:
        user.close()


def test_a_writer_records_ingests_edits_and_reindexes(
    client: redis.Redis, acl_url: Callable[[str], str]
) -> None:
    _flush_code(client)  # nothing loaded: the writer loads its script itself
    writer, user = _facade(acl_url("writer"))
    _populate(writer)
    result = writer.record_many(
        [ta.EnrollmentEvent(user_id=f"s{i}", course_id="c2", at=AT) for i in range(50)],
        batch_size=7,
        stream=True,
    )
    assert result.applied == 50
    writer.update_training_course("c2", {"duration": 60})
    writer.publish_training_course("c2")
    writer.invalidate_all_training_caches()
    writer.delete_training_course("c2")
    report = writer.reindex()
    assert report is not None
    assert writer.get_course_detailed_analytics("c1").enrollments == 2
    # It may not load functions, nor flush the store.
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.function_load(APPLY.library, replace=True)
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.flushdb()
    user.close()


def test_the_admin_loads_functions_and_reindexes(
    client: redis.Redis, acl_url: Callable[[str], str]
) -> None:
    _flush_code(client)
    admin, user = _facade(acl_url("admin"))
    _populate(admin)  # its first write loads the function library
    assert any(
        str(dict(zip(lib[::2], lib[1::2], strict=True))["library_name"]).startswith(
            "training_analytics_apply_"
        )
        for lib in user.function_list()
    )
    admin.reindex()
    assert admin.get_training_overview_metrics().total_enrollments == 2
    user.close()


def test_a_reader_without_code_still_detects_drift(
    client: redis.Redis, redis_url: str, acl_url: Callable[[str], str]
) -> None:
    """The drift check's confirming read falls back to plain commands for a reader that may not
    load code: another writer's certificate still raises StaleIndexError, not a code error."""
    owner = ta.TrainingAnalytics(client, clock=lambda: NOW)
    _populate(owner)
    client.sadd("training:certifications:all", "foreign")  # written behind the library's back
    client.sadd("training:certifications:status:issued", "foreign")
    reader, user = _facade(acl_url("reader"))
    _flush_code(client)
    for read in (reader.get_credential_stats, reader.get_credential_claim_analytics):
        with pytest.raises(ta.StaleIndexError):
            read()
    user.close()
