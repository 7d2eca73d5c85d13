"""``TrainingAnalytics`` (sync) and ``AsyncTrainingAnalytics`` (asyncio): one declaration each.

Every method is declared once, in ``_Operations``, as ``operation(module.function)``: a typed
descriptor that binds the sans-I/O operation to the instance's executor. On a TrainingAnalytics
it is a plain method returning ``T``; on an AsyncTrainingAnalytics a coroutine method returning
``T``. The signature (``P``) and the result (``T``) come from the operation itself, so both
facades are fully typed without a second copy.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from functools import partial, wraps
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
from .errors import ClusterUnsupportedError, InvalidInputError
from .helpers import DEFAULT_MAX_RANGE_DAYS
from .keys import DEFAULT_CERT_BUCKETS, Layout, TrainingKeys

P = ParamSpec("P")
T = TypeVar("T")


class operation(Generic[P, T]):  # noqa: N801 - used like a decorator/function
    """Binds ``op(ctx, *args)`` as a method of both facades. ``cluster``: the operation runs on
    a Redis Cluster (its keys share a hash tag per call); the others raise
    ClusterUnsupportedError there, naming themselves, before anything is sent."""

    def __init__(
        self, op: Callable[Concatenate[Context, P], Op[T]], *, cluster: bool = False
    ) -> None:
        self.op = op
        self.cluster = cluster
        self.__doc__ = op.__doc__
        self.__wrapped__ = op

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        _OPERATIONS[self.op] = self

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
        if instance.on_cluster and not self.cluster:
            bound = instance._refuse(self.name)
        else:
            bound = instance._bind(self.op)
        # Cache on the instance: later lookups skip the descriptor (it defines no __set__).
        instance.__dict__[self.name] = bound
        return bound


#: Every operation of the facades by its core function: what a read handed to another
#: operation (``read_with_api_key``'s, ``answer_at``'s) is checked against on a cluster.
_OPERATIONS: dict[object, operation[Any, Any]] = {}


def _operation_of(read: object) -> operation[Any, Any] | None:
    """The facade operation ``read`` is (a ``functools.partial`` of), if any."""
    while isinstance(read, partial):
        read = read.func
    try:
        return _OPERATIONS.get(read)
    except TypeError:  # an unhashable callable object: none of ours
        return None


def _unready_read(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    """The name of an operation passed as an argument (a read another operation runs) that
    does not run on a cluster, if there is one: run inside a cluster-ready operation, it
    would otherwise slip past the facade's refusal."""
    for value in (*args, *kwargs.values()):
        if callable(value):
            found = _operation_of(value)
            if found is not None and not found.cluster:
                return found.name
    return None


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
        """A Redis Cluster client: the cluster key layout, and only the operations built for
        it (docs/architecture.md, "Redis Cluster")."""
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

    def runs(self, op: str | Callable[..., Any]) -> bool:
        """Whether this facade runs ``op`` on its client: an operation's name, or a core read
        (as given to ``read_with_api_key``; a ``functools.partial`` of one too). Always True
        on a single server; on a cluster, for the operations built for it."""
        if not self.on_cluster:
            return True
        if isinstance(op, str):
            found = getattr(type(self), op, None)
            if not isinstance(found, operation):
                raise InvalidInputError(f"{op!r} is not an operation of the facades")
        else:
            found = _operation_of(op)
        # A read that is no facade operation (an application's own) cannot be judged: it runs.
        return found is None or found.cluster

    def ensure_runs(self, name: str) -> None:
        """ClusterUnsupportedError naming the operation ``name`` unless this facade runs it
        (for a caller that must know before it starts, as the CLI's parallel import)."""
        if not self.runs(name):
            raise _unsupported(name)

    def _bind(self, op: Callable[..., Op[Any]]) -> Callable[..., Any]:
        raise NotImplementedError

    def _refuse(self, name: str) -> Callable[..., Any]:
        raise NotImplementedError


def _unsupported(name: str) -> ClusterUnsupportedError:
    return ClusterUnsupportedError(
        f"{name} does not run on a Redis Cluster: it is not built for the cluster key layout "
        "(docs/architecture.md, Redis Cluster); use a single server (redis://) for this one"
    )


class _Operations(_Facade[ClientT]):
    # enrollments
    get_course_enrollments = operation(enrollments.get_course_enrollments, cluster=True)
    get_course_enrollment_count = operation(enrollments.get_course_enrollment_count, cluster=True)
    get_course_completions = operation(enrollments.get_course_completions, cluster=True)
    get_course_completion_count = operation(enrollments.get_course_completion_count, cluster=True)
    get_user_course_progress_data = operation(
        enrollments.get_user_course_progress_data, cluster=True
    )
    record_enrollment = operation(enrollments.record_enrollment, cluster=True)
    record_completion = operation(enrollments.record_completion, cluster=True)
    record_module_start = operation(enrollments.record_module_start, cluster=True)
    record_module_completion = operation(enrollments.record_module_completion, cluster=True)
    save_user_course_progress = operation(enrollments.save_user_course_progress, cluster=True)
    # analytics
    get_module_dropoff_rate = operation(analytics.get_module_dropoff_rate, cluster=True)
    get_course_module_dropoff_rates = operation(
        analytics.get_course_module_dropoff_rates, cluster=True
    )
    get_course_module_funnel = operation(analytics.get_course_module_funnel, cluster=True)
    get_store_version = operation(changes.get_store_version, cluster=True)
    # timeseries
    get_daily_enrollment_counts = operation(timeseries.get_daily_enrollment_counts, cluster=True)
    get_daily_completion_counts = operation(timeseries.get_daily_completion_counts, cluster=True)
    get_enrollment_time_series = operation(timeseries.get_enrollment_time_series, cluster=True)
    get_completion_time_series = operation(timeseries.get_completion_time_series, cluster=True)
    # certifications
    get_all_training_certifications = operation(
        certifications.get_all_training_certifications, cluster=True
    )
    get_training_certification = operation(certifications.get_training_certification, cluster=True)
    get_credential_stats = operation(certifications.get_credential_stats, cluster=True)
    issue_training_certification = operation(
        certifications.issue_training_certification, cluster=True
    )
    update_certification_status = operation(
        certifications.update_certification_status, cluster=True
    )
    # credentials
    get_credential_claim_analytics = operation(
        credentials.get_credential_claim_analytics, cluster=True
    )
    # courses
    get_course_detailed_analytics = operation(courses.get_course_detailed_analytics, cluster=True)
    calculate_average_completion = operation(courses.calculate_average_completion, cluster=True)
    get_training_overview_metrics = operation(courses.get_training_overview_metrics, cluster=True)
    invalidate_all_training_caches = operation(courses.invalidate_all_training_caches, cluster=True)
    invalidate_course_cache = operation(courses.invalidate_course_cache, cluster=True)
    # enhanced
    get_all_enhanced_courses = operation(enhanced.get_all_enhanced_courses, cluster=True)
    get_enhanced_courses_by_status = operation(
        enhanced.get_enhanced_courses_by_status, cluster=True
    )
    # catalog
    get_training_course = operation(catalog.get_training_course, cluster=True)
    get_all_training_courses = operation(catalog.get_all_training_courses, cluster=True)
    get_published_training_courses = operation(catalog.get_published_training_courses, cluster=True)
    get_training_courses_by_category = operation(
        catalog.get_training_courses_by_category, cluster=True
    )
    create_training_course = operation(catalog.create_training_course, cluster=True)
    update_training_course = operation(catalog.update_training_course, cluster=True)
    delete_training_course = operation(catalog.delete_training_course, cluster=True)
    publish_training_course = operation(catalog.publish_training_course, cluster=True)
    unpublish_training_course = operation(catalog.unpublish_training_course, cluster=True)
    put_training_course = operation(catalog.put_training_course, cluster=True)
    # listings (cursor-paginated) and the HTTP service's API keys
    list_certifications = operation(pages.list_certifications, cluster=True)
    get_expiring_certifications = operation(pages.get_expiring_certifications, cluster=True)
    list_course_analytics = operation(pages.list_course_analytics, cluster=True)
    find_training_courses = operation(catalog.find_training_courses, cluster=True)
    change_certification_status = operation(
        certifications.change_certification_status, cluster=True
    )
    get_series_report = operation(series.get_series_report, cluster=True)
    ping_store = operation(health.ping_store, cluster=True)
    holds_training_data = operation(presence.holds_training_data, cluster=True)
    create_api_key = operation(apikeys.create_api_key, cluster=True)
    list_api_keys = operation(apikeys.list_api_keys, cluster=True)
    has_api_keys = operation(apikeys.has_api_keys, cluster=True)
    revoke_api_key = operation(apikeys.revoke_api_key, cluster=True)
    verify_api_key = operation(apikeys.verify_api_key, cluster=True)
    read_with_api_key = operation(apikeys.read_with_api_key, cluster=True)
    # answers kept while the store is unchanged (what the HTTP service's analytics GETs give)
    check_keys = operation(answers.check_keys, cluster=True)
    read_stamp = operation(answers.read_stamp, cluster=True)
    answer_at = operation(answers.answer_at, cluster=True)
    cached_answer = operation(answers.cached_answer, cluster=True)
    # bulk and maintenance
    record_many = operation(ingest.record_many, cluster=True)
    record_each = operation(outcomes.record_each, cluster=True)
    record_each_report = operation(outcomes.record_each_report, cluster=True)
    import_records = operation(transfer.import_records, cluster=True)
    import_lines = operation(transfer.import_lines, cluster=True)
    export_page = operation(transfer.export_page, cluster=True)
    record_statements = operation(statements.record_statements, cluster=True)
    import_statements = operation(statements.import_statements, cluster=True)
    reindex = operation(reindex.reindex, cluster=True)

    get_recorded_time_zone = operation(zone.get_recorded_time_zone, cluster=True)
    record_time_zone = operation(zone.record_time_zone, cluster=True)
    get_recorded_layout = operation(store_layout.get_recorded_layout, cluster=True)


SyncClient = redis.Redis | redis.cluster.RedisCluster
"""What ``connect()`` gives; on a cluster client some operations raise ClusterUnsupportedError."""
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
                unready = _unready_read(args, kwargs)
                if unready is not None:
                    raise _unsupported(unready)
                return run_on_cluster(op(context, *args, **kwargs), cluster)

            return on_cluster

        @wraps(op)
        def method(*args: Any, **kwargs: Any) -> Any:
            return run(op(context, *args, **kwargs), client)

        return method

    def _refuse(self, name: str) -> Callable[..., Any]:
        def method(*args: Any, **kwargs: Any) -> Any:
            raise _unsupported(name)

        return method


class AsyncTrainingAnalytics(_Operations[AsyncClient]):
    """Training analytics on an asyncio redis-py client (``redis.asyncio.Redis``)."""

    def _bind(self, op: Callable[..., Op[Any]]) -> Callable[..., Any]:
        context, client = self.context, self.client
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            cluster = client

            @wraps(op)
            async def on_cluster(*args: Any, **kwargs: Any) -> Any:
                unready = _unready_read(args, kwargs)
                if unready is not None:
                    raise _unsupported(unready)
                return await arun_on_cluster(op(context, *args, **kwargs), cluster)

            return on_cluster

        @wraps(op)
        async def method(*args: Any, **kwargs: Any) -> Any:
            return await arun(op(context, *args, **kwargs), client)

        return method

    def _refuse(self, name: str) -> Callable[..., Any]:
        async def method(*args: Any, **kwargs: Any) -> Any:
            raise _unsupported(name)

        return method


if TYPE_CHECKING:
    # Both facades expose the same, fully typed methods.
    def _check(sync: TrainingAnalytics, aio: AsyncTrainingAnalytics) -> None:
        count: int = sync.get_course_enrollment_count("c")
        later: Coroutine[Any, Any, int] = aio.get_course_enrollment_count("c")
        del count, later
