"""``TrainingAnalytics`` (sync) and ``AsyncTrainingAnalytics`` (asyncio): one declaration each.

Every method is declared once, in ``_Operations``, as ``operation(module.function)``: a typed
descriptor that binds the sans-I/O operation to the instance's executor. On a TrainingAnalytics
it is a plain method returning ``T``; on an AsyncTrainingAnalytics a coroutine method returning
``T``. The signature (``P``) and the result (``T``) come from the operation itself, so both
facades are fully typed without a second copy.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from . import (
    analytics,
    answers,
    apikeys,
    catalog,
    certifications,
    changes,
    courses,
    credentials,
    enhanced,
    enrollments,
    health,
    ingest,
    outcomes,
    pages,
    presence,
    reindex,
    series,
    statements,
    timeseries,
    transfer,
    zone,
)
from . import layout as store_layout
from ._context import Context, utc_now
from ._exec import arun, run
from ._protocol import Op
from .cluster.executor import arun_on_cluster, run_on_cluster
from .cluster.health import is_cluster_client
from .errors import InvalidInputError
from .helpers import DEFAULT_MAX_RANGE_DAYS
from .keys import DEFAULT_CERT_BUCKETS, Layout, TrainingKeys

P = ParamSpec("P")
T = TypeVar("T")


class operation(Generic[P, T]):  # noqa: N801 - used like a decorator/function
    """Binds ``op(ctx, *args)`` as a method of both facades (on a server or a cluster alike)."""

    def __init__(self, op: Callable[Concatenate[Context, P], Op[T]]) -> None:
        self.op = op
        self.__doc__ = op.__doc__
        self.__wrapped__ = op

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> operation[P, T]: ...

    @overload
    def __get__(self, instance: TrainingAnalytics, owner: type) -> Callable[P, T]: ...

    @overload
    def __get__(
        self, instance: AsyncTrainingAnalytics, owner: type
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(self, instance: object, owner: type) -> Any:
        if instance is None:
            return self
        if not isinstance(instance, _Facade):
            raise TypeError(f"{self.name} is an operation of a training analytics facade")
        bound = instance._bind(self.op)
        # Cache on the instance: later lookups skip the descriptor (it defines no __set__).
        instance.__dict__[self.name] = bound
        return bound


ClientT = TypeVar("ClientT")


class _Facade(Generic[ClientT]):
    """The client and the configuration; both facades take the same arguments."""

    def __init__(
        self,
        client: ClientT,
        *,
        prefix: str = "",
        tz: str | ZoneInfo = "UTC",
        clock: Callable[[], datetime] = utc_now,
        max_range_days: int = DEFAULT_MAX_RANGE_DAYS,
        cert_buckets: int = DEFAULT_CERT_BUCKETS,
    ) -> None:
        if isinstance(tz, str):
            try:
                tz = ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # 'America' is a directory
                raise InvalidInputError(f"unknown time zone {tz!r}") from exc
        if max_range_days < 1:
            raise InvalidInputError("max_range_days must be at least 1")
        self.on_cluster = is_cluster_client(client)
        """A Redis Cluster client: the cluster key layout (docs/architecture.md, "Redis
        Cluster")."""
        self.client = client
        layout: Layout = "cluster" if self.on_cluster else "single"
        self.context = Context(
            # cert_buckets: a cluster store's certificate buckets (fixed when it is created; a
            # facade with another count is refused before its first write: layout.py).
            keys=TrainingKeys(prefix, layout=layout, cert_buckets=cert_buckets),
            tz=tz,
            clock=clock,
            max_range_days=max_range_days,
        )

    @property
    def keys(self) -> TrainingKeys:
        return self.context.keys

    def _bind(self, op: Callable[..., Op[Any]]) -> Callable[..., Any]:
        raise NotImplementedError


class _Operations(_Facade[ClientT]):
    # enrollments
    get_course_enrollments = operation(enrollments.get_course_enrollments)
    get_course_enrollment_count = operation(enrollments.get_course_enrollment_count)
    get_course_completions = operation(enrollments.get_course_completions)
    get_course_completion_count = operation(enrollments.get_course_completion_count)
    get_user_course_progress_data = operation(enrollments.get_user_course_progress_data)
    record_enrollment = operation(enrollments.record_enrollment)
    record_completion = operation(enrollments.record_completion)
    record_module_start = operation(enrollments.record_module_start)
    record_module_completion = operation(enrollments.record_module_completion)
    save_user_course_progress = operation(enrollments.save_user_course_progress)
    # analytics
    get_module_dropoff_rate = operation(analytics.get_module_dropoff_rate)
    get_course_module_dropoff_rates = operation(analytics.get_course_module_dropoff_rates)
    get_course_module_funnel = operation(analytics.get_course_module_funnel)
    get_store_version = operation(changes.get_store_version)
    # timeseries
    get_daily_enrollment_counts = operation(timeseries.get_daily_enrollment_counts)
    get_daily_completion_counts = operation(timeseries.get_daily_completion_counts)
    get_enrollment_time_series = operation(timeseries.get_enrollment_time_series)
    get_completion_time_series = operation(timeseries.get_completion_time_series)
    # certifications
    get_all_training_certifications = operation(certifications.get_all_training_certifications)
    get_training_certification = operation(certifications.get_training_certification)
    get_credential_stats = operation(certifications.get_credential_stats)
    issue_training_certification = operation(certifications.issue_training_certification)
    update_certification_status = operation(certifications.update_certification_status)
    # credentials
    get_credential_claim_analytics = operation(credentials.get_credential_claim_analytics)
    # courses
    get_course_detailed_analytics = operation(courses.get_course_detailed_analytics)
    calculate_average_completion = operation(courses.calculate_average_completion)
    get_training_overview_metrics = operation(courses.get_training_overview_metrics)
    invalidate_all_training_caches = operation(courses.invalidate_all_training_caches)
    invalidate_course_cache = operation(courses.invalidate_course_cache)
    # enhanced
    get_all_enhanced_courses = operation(enhanced.get_all_enhanced_courses)
    get_enhanced_courses_by_status = operation(enhanced.get_enhanced_courses_by_status)
    # catalog
    get_training_course = operation(catalog.get_training_course)
    get_all_training_courses = operation(catalog.get_all_training_courses)
    get_published_training_courses = operation(catalog.get_published_training_courses)
    get_training_courses_by_category = operation(catalog.get_training_courses_by_category)
    create_training_course = operation(catalog.create_training_course)
    update_training_course = operation(catalog.update_training_course)
    delete_training_course = operation(catalog.delete_training_course)
    publish_training_course = operation(catalog.publish_training_course)
    unpublish_training_course = operation(catalog.unpublish_training_course)
    put_training_course = operation(catalog.put_training_course)
    # listings (cursor-paginated) and the HTTP service's API keys
    list_certifications = operation(pages.list_certifications)
    get_expiring_certifications = operation(pages.get_expiring_certifications)
    list_course_analytics = operation(pages.list_course_analytics)
    find_training_courses = operation(catalog.find_training_courses)
    change_certification_status = operation(certifications.change_certification_status)
    get_series_report = operation(series.get_series_report)
    ping_store = operation(health.ping_store)
    holds_training_data = operation(presence.holds_training_data)
    create_api_key = operation(apikeys.create_api_key)
    list_api_keys = operation(apikeys.list_api_keys)
    has_api_keys = operation(apikeys.has_api_keys)
    revoke_api_key = operation(apikeys.revoke_api_key)
    verify_api_key = operation(apikeys.verify_api_key)
    read_with_api_key = operation(apikeys.read_with_api_key)
    # answers kept while the store is unchanged (what the HTTP service's analytics GETs give)
    check_keys = operation(answers.check_keys)
    read_stamp = operation(answers.read_stamp)
    answer_at = operation(answers.answer_at)
    cached_answer = operation(answers.cached_answer)
    # bulk and maintenance
    record_many = operation(ingest.record_many)
    record_each = operation(outcomes.record_each)
    record_each_report = operation(outcomes.record_each_report)
    import_records = operation(transfer.import_records)
    import_lines = operation(transfer.import_lines)
    export_page = operation(transfer.export_page)
    record_statements = operation(statements.record_statements)
    import_statements = operation(statements.import_statements)
    reindex = operation(reindex.reindex)

    get_recorded_time_zone = operation(zone.get_recorded_time_zone)
    record_time_zone = operation(zone.record_time_zone)
    get_recorded_layout = operation(store_layout.get_recorded_layout)


SyncClient = redis.Redis | redis.cluster.RedisCluster
"""What ``connect()`` gives."""
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster


class TrainingAnalytics(_Operations[SyncClient]):
    """Training analytics on a sync redis-py client (``redis.Redis`` or
    ``redis.cluster.RedisCluster``)."""

    def _bind(self, op: Callable[..., Op[Any]]) -> Callable[..., Any]:
        context, client = self.context, self.client
        if isinstance(client, redis.cluster.RedisCluster):
            cluster = client

            @wraps(op)
            def on_cluster(*args: Any, **kwargs: Any) -> Any:
                return run_on_cluster(op(context, *args, **kwargs), cluster)

            return on_cluster

        @wraps(op)
        def method(*args: Any, **kwargs: Any) -> Any:
            return run(op(context, *args, **kwargs), client)

        return method


class AsyncTrainingAnalytics(_Operations[AsyncClient]):
    """Training analytics on an asyncio redis-py client (``redis.asyncio.Redis``)."""

    def _bind(self, op: Callable[..., Op[Any]]) -> Callable[..., Any]:
        context, client = self.context, self.client
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            cluster = client

            @wraps(op)
            async def on_cluster(*args: Any, **kwargs: Any) -> Any:
                return await arun_on_cluster(op(context, *args, **kwargs), cluster)

            return on_cluster

        @wraps(op)
        async def method(*args: Any, **kwargs: Any) -> Any:
            return await arun(op(context, *args, **kwargs), client)

        return method


if TYPE_CHECKING:
    # Both facades expose the same, fully typed methods.
    def _check(sync: TrainingAnalytics, aio: AsyncTrainingAnalytics) -> None:
        count: int = sync.get_course_enrollment_count("c")
        later: Coroutine[Any, Any, int] = aio.get_course_enrollment_count("c")
        del count, later
