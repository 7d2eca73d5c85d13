"""Which records of an import must stay in order with which: the partition key of a record.

An import can be split across several connections (``training-analytics import --jobs N``) as
long as the records whose order matters go through one of them, in file order. What depends on
what, from the write path (``lua/*.lua``):

- a learner's events in one course (enrolment, module starts and completions, progress,
  completion) read and write that learner's keys in that course: progress saved before the
  enrolment counts as "unenrolled", a completion enrols, the first enrolment's day is kept;
  they share the key ``(userId, courseId)``;
- a certificate's status changes follow its issue (``issued -> claimed -> revoked``): the issue
  and the status changes share the certificate's id, whichever learner it names (no event of
  a learner reads a certificate, and a certificate's events read no learner key);
- two records of one course replace each other in order: they share the course's id. Events do
  not read the catalog (they are recorded for courses that are not in it), so a course record
  may apply before or after the events of its course.

Everything else commutes: counters and sets that several learners share only add up.

Pure functions, no I/O: :func:`partition_key` reads a decoded record; :func:`raw_partition_key`
finds the same key in a JSON Lines line without decoding it, or says it cannot tell.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from typing import Any, Final

# The kinds of the key, in its first byte: a learner in a course, a certificate, a course.
_LEARNER: Final = b"L"
_CERTIFICATE: Final = b"C"
_COURSE: Final = b"K"
#: The key of a record that names nothing usable (it will be rejected wherever it goes).
NO_KEY: Final = b""
_LEARNER_KINDS: Final = frozenset(
    {"enrollment", "completion", "module_start", "module_completion", "progress"}
)
_RAW_LEARNER_KINDS: Final = frozenset(kind.encode() for kind in _LEARNER_KINDS)


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the record is refused anyway
            return value.encode("utf-8", "surrogatepass")
    return b""


def _field(record: Mapping[str, Any], alias: str, name: str) -> Any:
    # The models accept both spellings and take the camelCase one when both are given.
    if alias in record:
        return record[alias]
    return record.get(name)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def partition_key(record: Mapping[str, Any]) -> bytes:
    """The key a decoded import record (``docs/formats.md``) keeps its order within.

    Records with equal keys must be applied in file order, by one connection; records with
    different keys may be applied in any order relative to each other. A record too malformed
    to name its key gets :data:`NO_KEY` (it is rejected wherever it is applied).
    """
    kind = record.get("kind")
    if kind == "certification_issued":
        certification = _mapping(record.get("certification"))
        return _CERTIFICATE + _text(certification.get("id"))
    if kind == "certification_status":
        return _CERTIFICATE + _text(_field(record, "certId", "cert_id"))
    if kind == "course":
        return _COURSE + _text(_mapping(record.get("course")).get("id"))
    if kind not in _LEARNER_KINDS:
        return NO_KEY
    holder = _mapping(record.get("progress")) if kind == "progress" else record
    user = _text(_field(holder, "userId", "user_id"))
    course = _text(_field(holder, "courseId", "course_id"))
    return _LEARNER + user + b"\x00" + course


# A string value after a key: `"key" : "value"`. Values are matched only in lines without a
# backslash (no escapes), where every '"' delimits a string.
_VALUE = re.compile(rb'\s*:\s*"([^"]*)"')


def _one(line: bytes, alias: bytes, name: bytes = b"") -> bytes | None:
    """The string value of the one key spelled ``alias`` or ``name`` in the line, or None when
    it appears more than once (nested in another object, given twice, or as a value), is not
    followed by a string, or is absent."""
    found = line.find(alias)
    other = line.find(name) if name else -1
    if found < 0 and other < 0:
        return None
    if found >= 0 and (other >= 0 or line.find(alias, found + 1) >= 0):
        return None
    if found < 0:
        if line.find(name, other + 1) >= 0:
            return None
        found, alias = other, name
    match = _VALUE.match(line, found + len(alias))
    return None if match is None else match.group(1)


# The layouts export and most producers write, keys first in this order: one anchored match
# finds the key, and a few counts prove each field is given once (a later duplicate would win).
_LEARNER_HEAD = re.compile(
    rb'\{"kind":"(?:enrollment|completion|module_start|module_completion)",'
    rb'"userId":"([^"]*)","courseId":"([^"]*)"'
)
_PROGRESS_HEAD = re.compile(
    rb'\{"kind":"progress","progress":\{"userId":"([^"]*)","courseId":"([^"]*)"'
)
_STATUS_HEAD = re.compile(rb'\{"kind":"certification_status","certId":"([^"]*)"')
_ISSUE_HEAD = re.compile(rb'\{"kind":"certification_issued","certification":\{"id":"([^"]*)"')


def _usual(line: bytes) -> bytes | None:
    """The key of a line in a usual layout (see above), or None. The line has no backslash."""
    if line.count(b'"kind"') != 1:
        return None
    match = _LEARNER_HEAD.match(line)
    if match is not None:
        if line.count(b'"userId"') == 1 and line.count(b'"courseId"') == 1:
            return _LEARNER + match.group(1) + b"\x00" + match.group(2)
        return None
    match = _PROGRESS_HEAD.match(line)
    if match is not None:
        # "progress" twice: the kind's value and the key (a second key would win).
        if (
            line.count(b'"progress"') == 2
            and line.count(b'"userId"') == 1
            and line.count(b'"courseId"') == 1
        ):
            return _LEARNER + match.group(1) + b"\x00" + match.group(2)
        return None
    match = _STATUS_HEAD.match(line)
    if match is not None:
        return _CERTIFICATE + match.group(1) if line.count(b'"certId"') == 1 else None
    match = _ISSUE_HEAD.match(line)
    if match is not None and line.count(b'"certification"') == 1 and line.count(b'"id"') == 1:
        return _CERTIFICATE + match.group(1)
    return None


def raw_partition_key(line: bytes) -> bytes | None:
    """:func:`partition_key` of a JSON Lines line, read without decoding it; None when this
    cheap reading cannot be sure (escapes, a key given twice or nested, unusual spacing...):
    then decode the line and call :func:`partition_key`.

    Sound for any line that decodes to a JSON object: a key is used only when its name appears
    exactly once in the line, as a key followed by a string value, and the line has no
    backslash (so every ``"`` opens or closes a string, and a string cannot hide a key).
    Whether that one occurrence is at the top level is checked by the kind's shape: an event's
    ids are the line's only ones, and a nested one belongs to the object that must hold it.
    """
    if b"\\" in line:
        return None
    usual = _usual(line)
    if usual is not None:
        return usual
    kind = _one(line, b'"kind"')
    if kind is None:
        return None
    if kind == b"certification_issued":
        # The certificate's own "id": its other fields are userId, courseId... never "id" (a
        # courseName in the language "id" makes two, and the line is decoded).
        cert = _one(line, b'"id"')
        return None if cert is None else _CERTIFICATE + cert
    if kind == b"certification_status":
        cert = _one(line, b'"certId"', b'"cert_id"')
        return None if cert is None else _CERTIFICATE + cert
    if kind not in _RAW_LEARNER_KINDS:
        return None  # a course holds module and lesson ids: decoded (courses are few)
    user = _one(line, b'"userId"', b'"user_id"')
    course = _one(line, b'"courseId"', b'"course_id"')
    if user is None or course is None:
        return None
    return _LEARNER + user + b"\x00" + course


def worker_of(key: bytes, workers: int) -> int:
    """The worker (0 .. workers-1) that applies the records of ``key``: stable across runs."""
    return zlib.crc32(key) % workers
