"""The course catalog and its indexes."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import training_analytics as ta
from training_analytics._exec import run
from training_analytics._protocol import Op, ScriptCall, batch
from training_analytics.catalog import CATALOG

from .factories import course, snapshot
from .stores import RAW_KEYS


@RAW_KEYS
def test_create_and_read(analytics: Any, client: redis.Redis) -> None:
    analytics.create_training_course(course("c1", order=5, category="technical"))
    stored = analytics.get_training_course("c1")
    assert stored is not None
    assert stored.title == {"en": "Course c1", "es": "Curso c1"}
    assert [m.id for m in stored.modules] == ["m1", "m2", "m3"]
    assert stored.created_at and stored.updated_at  # stamped from the clock
    assert client.zscore("training:courses:all", "c1") == 5
    assert client.smembers("training:courses:by-category:technical") == {"c1"}
    assert analytics.get_training_course("nope") is None
    with pytest.raises(ta.CourseExistsError):
        analytics.create_training_course(course("c1"))


def test_lists_are_ordered(analytics: Any) -> None:
    analytics.create_training_course(course("b", order=2))
    analytics.create_training_course(course("a", order=3, isPublished=False))
    analytics.create_training_course(course("c", order=1, category="legal"))
    assert [c.id for c in analytics.get_all_training_courses()] == ["c", "b", "a"]
    assert [c.id for c in analytics.get_published_training_courses()] == ["c", "b"]
    assert [c.id for c in analytics.get_training_courses_by_category("sales")] == ["b", "a"]


@RAW_KEYS
def test_update_moves_indexes(analytics: Any, client: redis.Redis) -> None:
    analytics.create_training_course(course("c1", order=1))
    analytics.update_training_course(
        "c1", {"category": "legal", "order": 9, "title": {"en": "New"}}
    )
    updated = analytics.get_training_course("c1")
    assert (updated.category, updated.order, updated.title) == ("legal", 9, {"en": "New"})
    assert client.smembers("training:courses:by-category:sales") == set()
    assert client.smembers("training:courses:by-category:legal") == {"c1"}
    assert client.zscore("training:courses:all", "c1") == 9
    analytics.update_training_course("c1", {"passing_score": 85})  # snake_case works too
    assert analytics.get_training_course("c1").passing_score == 85


@RAW_KEYS
def test_publish_unpublish_delete(analytics: Any, client: redis.Redis) -> None:
    analytics.create_training_course(course("c1", isPublished=False))
    analytics.publish_training_course("c1")
    assert client.smembers("training:courses:published") == {"c1"}
    assert analytics.get_training_course("c1").is_published is True
    analytics.unpublish_training_course("c1")
    assert client.smembers("training:courses:published") == set()
    assert client.hget("training:course:c1", "isPublished") == "false"
    analytics.delete_training_course("c1")
    assert analytics.get_training_course("c1") is None
    assert client.zcard("training:courses:all") == 0
    assert client.smembers("training:courses:by-category:sales") == set()


def test_missing_courses_and_bad_updates(analytics: Any, client: redis.Redis) -> None:
    analytics.create_training_course(course("c1"))
    before = snapshot(client)
    with pytest.raises(ta.CourseNotFoundError):
        analytics.update_training_course("ghost", {"order": 1})
    with pytest.raises(ta.CourseNotFoundError):
        analytics.delete_training_course("ghost")
    with pytest.raises(ta.CourseNotFoundError):
        analytics.publish_training_course("ghost")
    with pytest.raises(ta.InvalidInputError, match="unknown or read-only"):
        analytics.update_training_course("c1", {"colour": "red"})
    with pytest.raises(ta.InvalidInputError):
        analytics.update_training_course("c1", {"id": "c2"})
    with pytest.raises(ta.InvalidInputError):
        analytics.update_training_course("c1", {"level": "expert"})
    assert snapshot(client) == before


@RAW_KEYS
def test_a_refused_create_writes_neither_the_course_nor_any_index(
    analytics: Any, client: redis.Redis
) -> None:
    analytics.create_training_course(course("c0"))
    client.set("training:courses:by-category:legal", "not a set")  # written by another tool
    before = snapshot(client)
    with pytest.raises(ta.StoreError, match="nothing was written"):
        analytics.create_training_course(course("c1", category="legal"))
    assert snapshot(client) == before
    with pytest.raises(ta.InvalidInputError):
        analytics.create_training_course(course("c1", order=10**400))
    assert snapshot(client) == before
    # The id is still free: the course can be created once the input is right.
    analytics.create_training_course(course("c1", order=3))
    assert analytics.get_training_course("c1") is not None
    assert client.zscore("training:courses:all", "c1") == 3


@RAW_KEYS
@pytest.mark.parametrize("order", ["1e400", "nan", "-inf", "ten"])
def test_the_catalog_script_checks_the_order_before_writing(
    client: redis.Redis, order: str
) -> None:
    # What create_training_course sends, with an order Python would have refused.
    keys = ta.TrainingKeys()
    call = ScriptCall(
        CATALOG,
        (
            keys.training_course("c1"),
            keys.all_training_courses(),
            keys.published_training_courses(),
            keys.training_courses_by_category("sales"),
            keys.training_courses_by_category("sales"),
            keys.overview_metrics_cache(),
            keys.course_analytics_cache("c1"),
        ),
        ("create", "c1", "", order, "true", "id", "c1", "category", "sales"),
    )

    def op() -> Op[Any]:
        return (yield batch(call))

    with pytest.raises(ta.InvalidInputError, match="order must be a finite number"):
        run(op(), client)
    assert snapshot(client) == {}


@RAW_KEYS
def test_a_course_left_half_written_by_an_earlier_version_can_be_read_and_deleted(
    analytics: Any, client: redis.Redis
) -> None:
    # What create_training_course(order=10**400) left before it was refused up front: the hash
    # (its order past a double's range) and no index entries.
    analytics.create_training_course(course("c9"))
    client.hset("training:course:c9", "order", "1e400")
    client.zrem("training:courses:all", "c9")
    stored = analytics.get_training_course("c9")
    assert stored is not None and stored.order == 0
    analytics.delete_training_course("c9")
    assert not client.exists("training:course:c9")
    analytics.create_training_course(course("c9", order=2))
    assert client.zscore("training:courses:all", "c9") == 2
