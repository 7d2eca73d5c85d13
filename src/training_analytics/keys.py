"""Redis key names: the older system's layout, plus this library's derived keys.

Every key generator of the seed's ``trainingKeys`` exists here in snake_case and returns the
same string. Ids are checked before they become part of a key (see :func:`check_id`), so a
malformed id raises :class:`~training_analytics.errors.InvalidIdError` instead of silently
writing to some other key.

Derived keys (everything under ``training:agg:``) are this library's own; ``reindex`` rebuilds
all of them from the base keys.

Two layouts. ``layout="single"`` (the default) is the older system's, byte for byte.
``layout="cluster"`` is the plan of docs/architecture.md ("Cluster layout") for Redis Cluster:
every key one write call touches shares a hash tag (``{courseId}``, a certificate bucket
``{:cert:NNN}``, or ``{:catalog}`` / ``{:service}`` / ``{:meta}``), and the single layout's global
counters and caches have no key there (:class:`LayoutError`). A facade on a cluster client uses
it for writes and per-course reads (docs/architecture.md, "What runs on a cluster").
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Final, Literal

from .errors import InvalidIdError, InvalidInputError, LayoutError

Layout = Literal["single", "cluster"]
LAYOUTS: Final = ("single", "cluster")
#: Certificate (and xAPI statement) buckets of a cluster store unless it says otherwise: each
#: bucket is one hash slot (docs/architecture.md, "Cluster layout").
DEFAULT_CERT_BUCKETS: Final = 256
#: A cluster has 16384 hash slots: more buckets than that cannot spread further.
MAX_CERT_BUCKETS: Final = 16384
# Tags of the store-wide keys in the cluster layout. Each contains ':', which no id may, so no
# course id can be one of them.
CATALOG_TAG: Final = ":catalog"
SERVICE_TAG: Final = ":service"
META_TAG: Final = ":meta"

#: Cache TTLs in seconds, as the seed's ``CACHE_TTL``.
CACHE_TTL: Final = {"ANALYTICS": 5 * 60, "OVERVIEW": 10 * 60, "CREDENTIALS": 5 * 60}

CERTIFICATION_STATUSES: Final = ("issued", "claimed", "expired", "revoked")
#: Statuses whose certificates can still pass their expiry date (and so sit in an expiry index).
EXPIRABLE_STATUSES: Final = ("issued", "claimed")

MAX_ID_LENGTH: Final = 200
# ':' separates key parts and time-series member fields, braces are cluster hash tags, and
# glob characters would make SCAN patterns match other keys.
_FORBIDDEN = re.compile(r"[:{}*?\[\]\\\s\x00-\x1f\x7f]")


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it can be part of a key, else raise InvalidIdError."""
    if not isinstance(value, str):
        raise InvalidIdError(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidIdError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        raise InvalidIdError(
            f"{what} {value!r} contains {bad.group()!r}; ids may not contain ':', braces, "
            "glob characters, backslashes or whitespace"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no key can hold it
            raise InvalidIdError(f"{what} {value!r} is not valid Unicode text") from None
    return value


_GLOB = re.compile(r"[*?\[\]\\]")


def glob_escape(text: str) -> str:
    """``text`` as a SCAN / KEYS pattern that matches it literally (``x?:`` matches only ``x?:``,
    not ``x1:``): every pattern this library builds from a prefix goes through here."""
    return _GLOB.sub(r"\\\g<0>", text)


def _check_status(status: str) -> str:
    if status not in CERTIFICATION_STATUSES:
        raise InvalidIdError(f"unknown certification status {status!r}")
    return status


@dataclass(frozen=True, slots=True)
class TrainingKeys:
    """Key generators. ``prefix`` namespaces every key (e.g. ``"tenant-a:"``) for multi-tenancy.

    ``layout`` is ``"single"`` (the older system's) or ``"cluster"`` (one hash tag per write
    call; ``cert_buckets`` certificate buckets). In the cluster layout the methods for keys that
    are split per course or per bucket take the course id or the bucket tag, and those with no
    cluster key raise :class:`LayoutError`.
    """

    prefix: str = ""
    layout: Layout = "single"
    cert_buckets: int = DEFAULT_CERT_BUCKETS
    # layout == "cluster", set once: key methods test it on every call (an attribute load, not a
    # property call: the single layout's keys cost what they did before the cluster one).
    _cluster: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            raise InvalidInputError(f"prefix must be a string, got {type(self.prefix).__name__}")
        try:
            self.prefix.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"prefix {self.prefix!r} is not valid Unicode text") from None
        if self.layout not in LAYOUTS:
            raise InvalidInputError(f"layout must be 'single' or 'cluster', got {self.layout!r}")
        object.__setattr__(self, "_cluster", self.layout == "cluster")
        if self._cluster:
            if "{" in self.prefix or "}" in self.prefix:
                # Its braces would be every key's hash tag: the whole tenant in one slot.
                raise InvalidInputError(
                    f"prefix {self.prefix!r}: a cluster layout's prefix may not contain braces"
                )
            buckets = self.cert_buckets
            if not isinstance(buckets, int) or isinstance(buckets, bool):
                raise InvalidInputError("cert_buckets must be an integer")
            if not 1 <= buckets <= MAX_CERT_BUCKETS:
                raise InvalidInputError(f"cert_buckets must be 1 to {MAX_CERT_BUCKETS}")

    @property
    def cluster(self) -> bool:
        return self._cluster

    def _gone(self, what: str, instead: str) -> LayoutError:
        return LayoutError(f"the cluster layout has no {what}: {instead}")

    # --- cluster: tags --------------------------------------------------------------------------
    def certification_bucket(self, cert_id: str) -> str:
        """The tag (without braces) of the bucket holding certificate ``cert_id``: CRC32 of the
        id modulo the bucket count, so a lookup by id needs no index. Cluster layout only."""
        self._cluster_only("certificate buckets")
        return self._bucket("cert", check_id(cert_id, "certification id"))

    def certification_buckets(self) -> list[str]:
        """Every bucket tag, in order (reads sum or merge over them). Cluster layout only."""
        self._cluster_only("certificate buckets")
        return [self._bucket_tag("cert", n) for n in range(self.cert_buckets)]

    def slot_tag(self, key: str) -> str:
        """The hash tag of a key this object made (what decides its slot): the text between its
        first ``{`` and the next ``}``; the whole key when it has none."""
        start = key.find("{")
        if start >= 0:
            end = key.find("}", start + 1)
            if end > start + 1:
                return key[start + 1 : end]
        return key

    def _cluster_only(self, what: str) -> None:
        if not self._cluster:
            raise LayoutError(f"the single-server layout has no {what}")

    def _bucket(self, kind: str, item_id: str) -> str:
        return self._bucket_tag(kind, zlib.crc32(item_id.encode("utf-8")) % self.cert_buckets)

    def _bucket_tag(self, kind: str, number: int) -> str:
        width = len(str(self.cert_buckets - 1))
        return f":{kind}:{number:0{width}d}"

    def _bucket_of(self, bucket: str | None, what: str) -> str:
        if bucket is None:
            raise self._gone(
                f"single {what} key", "it is one per certificate bucket; pass the bucket tag"
            )
        if bucket not in self._bucket_set():
            raise InvalidIdError(f"{bucket!r} is not a certificate bucket of this layout")
        return bucket

    def _bucket_set(self) -> frozenset[str]:
        return _bucket_tags(self.cert_buckets)

    def _tag(self, tag: str | None, what: str) -> str:
        """A write tag: a course id, a bucket tag, or one of the store-wide tags."""
        if tag is None:
            raise self._gone(f"single {what}", "there is one per hash tag; pass the tag")
        if tag in (CATALOG_TAG, META_TAG, SERVICE_TAG) or tag in self._bucket_set():
            return tag
        return check_id(tag, "course id")

    # --- seed: enrolments and progress -------------------------------------------------------
    def course_enrollments(self, course_id: str) -> str:
        course = check_id(course_id, "course id")
        if self._cluster:
            return f"{self.prefix}training:enrollments:{{{course}}}"
        return f"{self.prefix}training:enrollments:{course}"

    def course_completions(self, course_id: str) -> str:
        course = check_id(course_id, "course id")
        if self._cluster:
            return f"{self.prefix}training:completions:{{{course}}}"
        return f"{self.prefix}training:completions:{course}"

    def module_enrollments(self, course_id: str, module_id: str) -> str:
        course, module = check_id(course_id, "course id"), check_id(module_id, "module id")
        if self._cluster:
            return f"{self.prefix}training:module:enrolled:{{{course}}}:{module}"
        return f"{self.prefix}training:module:enrolled:{course}:{module}"

    def module_completions(self, course_id: str, module_id: str) -> str:
        course, module = check_id(course_id, "course id"), check_id(module_id, "module id")
        if self._cluster:
            return f"{self.prefix}training:module:completed:{{{course}}}:{module}"
        return f"{self.prefix}training:module:completed:{course}:{module}"

    def user_course_progress(self, user_id: str, course_id: str) -> str:
        user, course = check_id(user_id, "user id"), check_id(course_id, "course id")
        if self._cluster:  # the course is the tag: a progress event writes it with the course's
            return f"{self.prefix}training:progress:{user}:{{{course}}}"
        return f"{self.prefix}training:progress:{user}:{course}"

    # --- seed: time series -------------------------------------------------------------------
    def enrollment_by_date(self, day: str) -> str:
        if self._cluster:
            raise self._gone("global day counter", "sum the courses' course_enrollments_by_day")
        return f"{self.prefix}training:enrollment:date:{day}"

    def completion_by_date(self, day: str) -> str:
        if self._cluster:
            raise self._gone("global day counter", "sum the courses' course_completions_by_day")
        return f"{self.prefix}training:completion:date:{day}"

    def enrollment_timeseries(self) -> str:
        if self._cluster:
            raise self._gone("global series", "merge course_enrollment_timeseries by score")
        return f"{self.prefix}training:enrollment:timeseries"

    def completion_timeseries(self) -> str:
        if self._cluster:
            raise self._gone("global series", "merge course_completion_timeseries by score")
        return f"{self.prefix}training:completion:timeseries"

    def course_enrollment_timeseries(self, course_id: str) -> str:
        """Cluster layout: one course's part of the enrollment series (same members and
        scores as the global one)."""
        self._cluster_only("per-course event series")
        return f"{self.prefix}training:enrollment:timeseries:{{{check_id(course_id, 'course id')}}}"

    def course_completion_timeseries(self, course_id: str) -> str:
        """Cluster layout: one course's part of the completion series."""
        self._cluster_only("per-course event series")
        return f"{self.prefix}training:completion:timeseries:{{{check_id(course_id, 'course id')}}}"

    # --- seed: certifications ----------------------------------------------------------------
    def all_training_certifications(self, bucket: str | None = None) -> str:
        if self._cluster:
            tag = self._bucket_of(bucket, "certificate set")
            return f"{self.prefix}training:certifications:all:{{{tag}}}"
        _single_only(bucket)
        return f"{self.prefix}training:certifications:all"

    def training_certification(self, cert_id: str) -> str:
        cert = check_id(cert_id, "certification id")
        if self._cluster:
            return f"{self.prefix}training:certification:{{{self._bucket('cert', cert)}}}:{cert}"
        return f"{self.prefix}training:certification:{cert}"

    def certifications_by_status(self, status: str, bucket: str | None = None) -> str:
        if self._cluster:
            tag = self._bucket_of(bucket, "status set")
            return f"{self.prefix}training:certifications:status:{_check_status(status)}:{{{tag}}}"
        _single_only(bucket)
        return f"{self.prefix}training:certifications:status:{_check_status(status)}"

    # --- seed: caches ------------------------------------------------------------------------
    def course_analytics_cache(self, course_id: str) -> str:
        if self._cluster:
            raise self._gone("analytics caches", _NO_CACHES)
        return f"{self.prefix}cache:training:analytics:course:{check_id(course_id, 'course id')}"

    def overview_metrics_cache(self) -> str:
        if self._cluster:
            raise self._gone("analytics caches", _NO_CACHES)
        return f"{self.prefix}cache:training:analytics:overview"

    def credential_analytics_cache(self) -> str:
        if self._cluster:
            raise self._gone("analytics caches", _NO_CACHES)
        return f"{self.prefix}cache:training:analytics:credentials"

    def course_analytics_cache_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}cache:training:analytics:course:*"

    # --- seed: course catalog ----------------------------------------------------------------
    # In the cluster layout the whole catalog shares {:catalog}: catalog.lua changes a course and
    # its indexes in one call, and a catalog is small.
    def training_course(self, course_id: str) -> str:
        course = check_id(course_id, "course id")
        return f"{self.prefix}training:course:{self._catalog()}{course}"

    def all_training_courses(self) -> str:
        return f"{self.prefix}training:courses:all{self._catalog_end()}"

    def published_training_courses(self) -> str:
        return f"{self.prefix}training:courses:published{self._catalog_end()}"

    def training_courses_by_category(self, category: str) -> str:
        name = check_id(category, "category")
        return f"{self.prefix}training:courses:by-category:{name}{self._catalog_end()}"

    def _catalog(self) -> str:
        return f"{{{CATALOG_TAG}}}:" if self._cluster else ""

    def _catalog_end(self) -> str:
        return f":{{{CATALOG_TAG}}}" if self._cluster else ""

    # --- derived keys (this library; rebuilt by reindex) -------------------------------------
    def index_marker(self, tag: str | None = None) -> str:
        """String ``"1"``: the derived keys below are complete for this store. In the cluster
        layout: one per write tag (a course id, a bucket tag; ``apply.lua``'s KEYS[1] for calls
        of that tag), and the store-wide one for ``tag=None`` (set by migrate and reindex)."""
        if self._cluster:
            tag = META_TAG if tag is None else self._tag(tag, "marker")
            return f"{self.prefix}training:agg:schema:{{{tag}}}"
        _single_only(tag)
        return f"{self.prefix}training:agg:schema"

    def course_stats(self, course_id: str) -> str:
        """Hash over enrolled learners: score_milli_sum, score_n, time_ms_sum, time_n."""
        course = check_id(course_id, "course id")
        if self._cluster:
            return f"{self.prefix}training:agg:course:{{{course}}}"
        return f"{self.prefix}training:agg:course:{course}"

    def course_enrollments_by_day(self, course_id: str) -> str:
        """Hash: ``YYYY-MM-DD`` -> new enrolments in the course that day."""
        course = check_id(course_id, "course id")
        if self._cluster:
            return f"{self.prefix}training:agg:course:{{{course}}}:enrollments"
        return f"{self.prefix}training:agg:course:{course}:enrollments"

    def course_completions_by_day(self, course_id: str) -> str:
        """Hash: ``YYYY-MM-DD`` -> new completions of the course that day."""
        course = check_id(course_id, "course id")
        if self._cluster:
            return f"{self.prefix}training:agg:course:{{{course}}}:completions"
        return f"{self.prefix}training:agg:course:{course}:completions"

    def course_unenrolled_progress(self, course_id: str) -> str:
        """Hash: user id -> ``milli|ms``, the score (thousandths) and time to complete of progress
        saved by a learner not enrolled yet, counted into the course sums when they enrol."""
        course = check_id(course_id, "course id")
        if self._cluster:
            return f"{self.prefix}training:agg:course:{{{course}}}:unenrolled-progress"
        return f"{self.prefix}training:agg:course:{course}:unenrolled-progress"

    def credential_stats(self, bucket: str | None = None) -> str:
        """Hash: ``claimed`` (ever claimed), ``claim_ms_sum``, ``claim_n``."""
        if self._cluster:
            tag = self._bucket_of(bucket, "credential stats")
            return f"{self.prefix}training:agg:credentials:{{{tag}}}"
        _single_only(bucket)
        return f"{self.prefix}training:agg:credentials"

    def certification_expiry(self, status: str, bucket: str | None = None) -> str:
        """Sorted set: ids of certificates in ``status`` (issued/claimed) scored by expiry ms."""
        if status not in EXPIRABLE_STATUSES:
            raise InvalidIdError(f"no expiry index for status {status!r}")
        if self._cluster:
            tag = self._bucket_of(bucket, "expiry index")
            return f"{self.prefix}training:agg:certifications:expiry:{status}:{{{tag}}}"
        _single_only(bucket)
        return f"{self.prefix}training:agg:certifications:expiry:{status}"

    def reindex_lock(self) -> str:
        """String: the token of the reindex running now (a lease; see ``reindex``)."""
        return f"{self.prefix}training:reindex:lock{self._meta_end()}"

    def reindex_idle(self) -> str:
        """Never written: a reindex waiting for the lock blocks on it (BLPOP) as a pause."""
        return f"{self.prefix}training:reindex:idle{self._meta_end()}"

    def reindex_scratch(self, token: str, name: str, tag: str | None = None) -> str:
        """A rebuild's own temporary key: under ``training:agg:`` so the next one sweeps it. In
        the cluster layout it takes the tag of what it rebuilds."""
        if self._cluster:
            return (
                f"{self.prefix}training:agg:reindex:{token}:{name}:"
                f"{{{self._tag(tag, 'scratch key')}}}"
            )
        _single_only(tag)
        return f"{self.prefix}training:agg:reindex:{token}:{name}"

    def ingest_sequence(self, token: str, tag: str | None = None) -> str:
        """String: the last batch applied of one streamed ``record_many`` (kept in order by
        ``lua/apply.lua``); deleted at the end of the import, else expires after a day. Not a
        derived key: reindex leaves it alone. In the cluster layout: one per tag the stream
        writes."""
        stream = check_id(token, "stream token")
        if self._cluster:
            return f"{self.prefix}training:ingest:{stream}:{{{self._tag(tag, 'stream sequence')}}}"
        _single_only(tag)
        return f"{self.prefix}training:ingest:{stream}"

    def course_registry(self) -> str:
        """Cluster layout: set of the course ids that have any data (what global sums run
        over); added to before a course's first write."""
        self._cluster_only("course registry")
        return f"{self.prefix}training:agg:courses:{{{META_TAG}}}"

    def layout_record(self) -> str:
        """Cluster layout: string (JSON) naming the layout and its certificate bucket count,
        written by the store's first write or by ``migrate`` (see ``layout.py``)."""
        self._cluster_only("layout record")
        return f"{self.prefix}training:meta:layout:{{{META_TAG}}}"

    def migration_record(self) -> str:
        """String (JSON): where ``migrate`` into this store stands (its source, its export
        cursor, what it counted): written before its first copied record, so that a run
        interrupted at any point is resumed, not refused as a non-empty target."""
        return f"{self.prefix}training:meta:migrate{self._meta_end()}"

    def _meta_end(self) -> str:
        return f":{{{META_TAG}}}" if self._cluster else ""

    # --- SCAN patterns: the prefix is escaped, so a tenant's glob characters stay literal --------
    def derived_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}training:agg:*"

    def course_enrollments_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}training:enrollments:*"

    def course_completions_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}training:completions:*"

    def user_course_progress_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}training:progress:*"

    def training_patterns(self) -> list[str]:
        """Every key the library (and the older system) writes under the prefix."""
        escaped = glob_escape(self.prefix)
        return [f"{escaped}training:*", f"{escaped}cache:training:*"]

    # --- facts about the store, not derived from the base keys (kept by reindex) -------------
    def time_zone_marker(self) -> str:
        """String: the IANA zone the store's day buckets were written in (see ``zone``)."""
        return f"{self.prefix}training:meta:time-zone{self._meta_end()}"

    def demo_marker(self) -> str:
        """Hash: the generated demo programme in this store and how far its loading got."""
        return f"{self.prefix}training:meta:demo{self._meta_end()}"

    # --- the store version (not derived: reindex leaves it alone, and bumps it) ---------------
    def store_version(self, tag: str | None = None) -> str:
        """String counter: raised by every write call that changed training data (events,
        catalog, reindex), atomically with it. Readers that poll it (the dashboard) refetch
        only when it moved. In the cluster layout: one per write tag (a course id, a bucket tag,
        ``:catalog``), the store's version being their sum."""
        if self._cluster:
            return f"{self.prefix}training:version:{{{self._tag(tag, 'store version')}}}"
        _single_only(tag)
        return f"{self.prefix}training:version"

    # --- the HTTP service's own keys (not derived: reindex leaves them alone) ------------------
    def api_keys(self) -> str:
        """Hash: API key name -> SHA-256 (hex) of the key."""
        end = f":{{{SERVICE_TAG}}}" if self._cluster else ""
        return f"{self.prefix}training:service:apikeys{end}"

    def api_key(self, digest: str) -> str:
        """Hash of one API key, addressed by its SHA-256: name, role, createdAt, lastUsedAt."""
        tag = f"{{{SERVICE_TAG}}}:" if self._cluster else ""
        return f"{self.prefix}training:service:apikey:{tag}{check_id(digest, 'key digest')}"

    def store_epoch(self) -> str:
        """String: a random token naming this store's life since it was last emptied, created
        by the first reader that finds it absent (``answers``). A store emptied and written
        again restarts its version from 0; its new epoch tells answers read before apart."""
        end = f":{{{SERVICE_TAG}}}" if self._cluster else ""
        return f"{self.prefix}training:service:epoch{end}"

    def xapi_statement(self, statement_id: str) -> str:
        """String: the SHA-256 of an xAPI statement received under this id (a UUID), kept for
        the configured retention so that a statement sent again counts once. In the cluster
        layout bucketed like certificates (``{:xapi:NNN}``)."""
        statement = check_id(statement_id, "statement id")
        tag = f"{{{self._bucket('xapi', statement)}}}:" if self._cluster else ""
        return f"{self.prefix}training:xapi:statement:{tag}{statement}"


_NO_CACHES = (
    "this library never fills them and the older system's readers cannot read a cluster store"
)


def _single_only(argument: str | None) -> None:
    if argument is not None:
        raise LayoutError("the single-server layout has one such key: pass no tag or bucket")


_BUCKET_TAGS: dict[int, frozenset[str]] = {}


def _bucket_tags(count: int) -> frozenset[str]:
    found = _BUCKET_TAGS.get(count)
    if found is None:
        width = len(str(count - 1))
        found = _BUCKET_TAGS[count] = frozenset(f":cert:{n:0{width}d}" for n in range(count))
    return found
