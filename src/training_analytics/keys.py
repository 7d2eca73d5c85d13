"""Redis key names: the older system's layout, plus this library's derived keys.

Every key generator of the seed's ``trainingKeys`` exists here in snake_case and returns the
same string. Ids are checked before they become part of a key (see :func:`check_id`), so a
malformed id raises :class:`~training_analytics.errors.InvalidIdError` instead of silently
writing to some other key.

Derived keys (everything under ``training:agg:``) are this library's own; ``reindex`` rebuilds
all of them from the base keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .errors import InvalidIdError, InvalidInputError

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
    """Key generators. ``prefix`` namespaces every key (e.g. ``"tenant-a:"``) for multi-tenancy."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            raise InvalidInputError(f"prefix must be a string, got {type(self.prefix).__name__}")
        try:
            self.prefix.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"prefix {self.prefix!r} is not valid Unicode text") from None

    # --- seed: enrolments and progress -------------------------------------------------------
    def course_enrollments(self, course_id: str) -> str:
        return f"{self.prefix}training:enrollments:{check_id(course_id, 'course id')}"

    def course_completions(self, course_id: str) -> str:
        return f"{self.prefix}training:completions:{check_id(course_id, 'course id')}"

    def module_enrollments(self, course_id: str, module_id: str) -> str:
        return (
            f"{self.prefix}training:module:enrolled:"
            f"{check_id(course_id, 'course id')}:{check_id(module_id, 'module id')}"
        )

    def module_completions(self, course_id: str, module_id: str) -> str:
        return (
            f"{self.prefix}training:module:completed:"
            f"{check_id(course_id, 'course id')}:{check_id(module_id, 'module id')}"
        )

    def user_course_progress(self, user_id: str, course_id: str) -> str:
        return (
            f"{self.prefix}training:progress:"
            f"{check_id(user_id, 'user id')}:{check_id(course_id, 'course id')}"
        )

    # --- seed: time series -------------------------------------------------------------------
    def enrollment_by_date(self, day: str) -> str:
        return f"{self.prefix}training:enrollment:date:{day}"

    def completion_by_date(self, day: str) -> str:
        return f"{self.prefix}training:completion:date:{day}"

    def enrollment_timeseries(self) -> str:
        return f"{self.prefix}training:enrollment:timeseries"

    def completion_timeseries(self) -> str:
        return f"{self.prefix}training:completion:timeseries"

    # --- seed: certifications ----------------------------------------------------------------
    def all_training_certifications(self) -> str:
        return f"{self.prefix}training:certifications:all"

    def training_certification(self, cert_id: str) -> str:
        return f"{self.prefix}training:certification:{check_id(cert_id, 'certification id')}"

    def certifications_by_status(self, status: str) -> str:
        return f"{self.prefix}training:certifications:status:{_check_status(status)}"

    # --- seed: caches ------------------------------------------------------------------------
    def course_analytics_cache(self, course_id: str) -> str:
        return f"{self.prefix}cache:training:analytics:course:{check_id(course_id, 'course id')}"

    def overview_metrics_cache(self) -> str:
        return f"{self.prefix}cache:training:analytics:overview"

    def credential_analytics_cache(self) -> str:
        return f"{self.prefix}cache:training:analytics:credentials"

    def course_analytics_cache_pattern(self) -> str:
        return f"{glob_escape(self.prefix)}cache:training:analytics:course:*"

    # --- seed: course catalog ----------------------------------------------------------------
    def training_course(self, course_id: str) -> str:
        return f"{self.prefix}training:course:{check_id(course_id, 'course id')}"

    def all_training_courses(self) -> str:
        return f"{self.prefix}training:courses:all"

    def published_training_courses(self) -> str:
        return f"{self.prefix}training:courses:published"

    def training_courses_by_category(self, category: str) -> str:
        return f"{self.prefix}training:courses:by-category:{check_id(category, 'category')}"

    # --- derived keys (this library; rebuilt by reindex) -------------------------------------
    def index_marker(self) -> str:
        """String ``"1"``: the derived keys below are complete for this store."""
        return f"{self.prefix}training:agg:schema"

    def course_stats(self, course_id: str) -> str:
        """Hash over enrolled learners: score_milli_sum, score_n, time_ms_sum, time_n."""
        return f"{self.prefix}training:agg:course:{check_id(course_id, 'course id')}"

    def course_enrollments_by_day(self, course_id: str) -> str:
        """Hash: ``YYYY-MM-DD`` -> new enrolments in the course that day."""
        return f"{self.prefix}training:agg:course:{check_id(course_id, 'course id')}:enrollments"

    def course_completions_by_day(self, course_id: str) -> str:
        """Hash: ``YYYY-MM-DD`` -> new completions of the course that day."""
        return f"{self.prefix}training:agg:course:{check_id(course_id, 'course id')}:completions"

    def course_unenrolled_progress(self, course_id: str) -> str:
        """Hash: user id -> ``milli|ms``, the score (thousandths) and time to complete of progress
        saved by a learner not enrolled yet, counted into the course sums when they enrol."""
        return (
            f"{self.prefix}training:agg:course:{check_id(course_id, 'course id')}"
            ":unenrolled-progress"
        )

    def credential_stats(self) -> str:
        """Hash: ``claimed`` (ever claimed), ``claim_ms_sum``, ``claim_n``."""
        return f"{self.prefix}training:agg:credentials"

    def certification_expiry(self, status: str) -> str:
        """Sorted set: ids of certificates in ``status`` (issued/claimed) scored by expiry ms."""
        if status not in EXPIRABLE_STATUSES:
            raise InvalidIdError(f"no expiry index for status {status!r}")
        return f"{self.prefix}training:agg:certifications:expiry:{status}"

    def reindex_lock(self) -> str:
        """String: the token of the reindex running now (a lease; see ``reindex``)."""
        return f"{self.prefix}training:reindex:lock"

    def reindex_idle(self) -> str:
        """Never written: a reindex waiting for the lock blocks on it (BLPOP) as a pause."""
        return f"{self.prefix}training:reindex:idle"

    def reindex_scratch(self, token: str, name: str) -> str:
        """A rebuild's own temporary key: under ``training:agg:`` so the next one sweeps it."""
        return f"{self.prefix}training:agg:reindex:{token}:{name}"

    def ingest_sequence(self, token: str) -> str:
        """String: the last batch applied of one streamed ``record_many`` (kept in order by
        ``lua/apply.lua``); deleted at the end of the import, else expires after a day. Not a
        derived key: reindex leaves it alone."""
        return f"{self.prefix}training:ingest:{check_id(token, 'stream token')}"

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
        return f"{self.prefix}training:meta:time-zone"

    def demo_marker(self) -> str:
        """Hash: the generated demo programme in this store and how far its loading got."""
        return f"{self.prefix}training:meta:demo"

    # --- the store version (not derived: reindex leaves it alone, and bumps it) ---------------
    def store_version(self) -> str:
        """String counter: raised by every write call that changed training data (events,
        catalog, reindex), atomically with it. Readers that poll it (the dashboard) refetch
        only when it moved."""
        return f"{self.prefix}training:version"

    # --- the HTTP service's own keys (not derived: reindex leaves them alone) ------------------
    def api_keys(self) -> str:
        """Hash: API key name -> SHA-256 (hex) of the key."""
        return f"{self.prefix}training:service:apikeys"

    def api_key(self, digest: str) -> str:
        """Hash of one API key, addressed by its SHA-256: name, role, createdAt, lastUsedAt."""
        return f"{self.prefix}training:service:apikey:{check_id(digest, 'key digest')}"

    def store_epoch(self) -> str:
        """String: a random token naming this store's life since it was last emptied, created
        by the first reader that finds it absent (``answers``). A store emptied and written
        again restarts its version from 0; its new epoch tells answers read before apart."""
        return f"{self.prefix}training:service:epoch"

    def xapi_statement(self, statement_id: str) -> str:
        """String: the SHA-256 of an xAPI statement received under this id (a UUID), kept for
        the configured retention so that a statement sent again counts once."""
        return f"{self.prefix}training:xapi:statement:{check_id(statement_id, 'statement id')}"
