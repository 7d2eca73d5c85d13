"""``training-analytics import --jobs N``: one reader, N writer processes, one summary.

The parent reads the file once and hands each line, raw, to the worker its partition key names
(:mod:`training_analytics.partition`: a learner's events in one course, a certificate's issue
and status changes, a course's records each stay on one worker, in file order). Each worker
parses its lines and applies them through ``import_lines`` on its own connection, one batch in
flight, and reports counts and rejected lines (with their numbers) back; the parent draws the
progress bar and prints the one summary.

Memory stays bounded whatever the file's size: each worker's queue holds a few chunks of at most
``CHUNK_LINES`` lines, the parent blocks when one is full, and rejections are printed as they
come, not kept. Ctrl-C or a worker's error stops every worker cleanly: each finishes the batches
it sent, reports, and exits; the parent says up to which line everything was imported.

Workers are forked (Linux's default start method, and the fast one: nothing to import again),
before the parent starts any thread; they ignore SIGINT, which the parent handles.
"""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import queue
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import redis
import redis.cluster

from . import errors
from .errors import InvalidInputError, TrainingAnalyticsError
from .facade import TrainingAnalytics
from .fileformats import (
    _BOM,
    MAX_LINE_BYTES,
    Format,
    ImportSummary,
    LineReader,
    RejectedLine,
    _csv,
    parse_jsonl,
)
from .partition import NO_KEY, partition_key, raw_partition_key, worker_of
from .transfer import ImportTally

#: Lines per message to a worker (about one batch), and messages a worker's queue holds.
CHUNK_LINES = 1000
QUEUE_CHUNKS = 4
_POLL = 0.1  # seconds between checks of the workers while waiting on a queue
_STOP_GRACE = 60.0  # seconds the workers get to finish their batches after a stop


def available() -> bool:
    """Whether worker processes can be forked here (Linux and other POSIX systems)."""
    return "fork" in multiprocessing.get_all_start_methods()


#: Files smaller than this are imported by one process by default: forking workers and opening
#: their connections costs more than it saves on a few thousand lines.
AUTO_JOBS_BYTES = 4 << 20
#: The most workers chosen by default (the server needs CPU too, often on the same machine).
MAX_AUTO_JOBS = 4
DEFAULT_JOBS_TEXT = (
    f"1 for stdin and files under {AUTO_JOBS_BYTES >> 20} MiB, else one fewer than the CPUs "
    f"this process may use (the store's server usually shares the machine), at most "
    f"{MAX_AUTO_JOBS}"
)


def _usable_cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def choose_jobs(jobs: int | None, size: int | None) -> int:
    """The workers of an import: ``jobs`` when given, else DEFAULT_JOBS_TEXT's rule (``size``:
    the file's bytes, None for stdin or a pipe, whose output stays in line order by default)."""
    if jobs is not None:
        if jobs > 1 and not available():
            raise InvalidInputError("--jobs needs a system that can fork processes; use --jobs 1")
        return jobs
    if size is None or size < AUTO_JOBS_BYTES or not available():
        return 1
    # Measured on 2 cores with the server beside it (docs/performance.md): --jobs 1 imported the
    # mixed history at 57,105 events/s, --jobs 2 at 41,373: a second worker competes with the
    # server for the one other core, and routing lines to workers costs the parent CPU.
    return max(1, min(MAX_AUTO_JOBS, _usable_cpus() - 1))


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """Fewer passes of the cyclic garbage collector while an import runs (restored after).

    An import allocates a few objects per line and frees nearly all of them by reference
    counting; the collector's default pace (a pass every 700 net allocations, the older
    generations' passes over everything alive) costs microseconds per line for nothing. What
    is alive when the import starts (modules, schemas) is frozen out of the passes, and the
    passes are rarer.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@dataclass(frozen=True)
class Target:
    """How a worker reaches the store: the parent's connection settings (copied by the fork,
    never sent anywhere), the key prefix and the day buckets' zone. On a cluster: a seed node
    and the nodes' connection settings; each worker reads the slot map itself."""

    connection_class: type[Any]
    connection_kwargs: dict[str, Any]
    prefix: str
    tz: str
    cluster_seed: tuple[str, int] | None = None

    @classmethod
    def of(cls, client: redis.Redis | redis.cluster.RedisCluster, prefix: str, tz: str) -> Target:
        if isinstance(client, redis.cluster.RedisCluster):
            cluster: Any = client  # redis-py's sync cluster client is partly untyped
            seed = cluster.get_default_node()
            kwargs = dict(cluster.nodes_manager.connection_kwargs)
            for name in ("host", "port"):
                kwargs.pop(name, None)
            return cls(redis.Connection, kwargs, prefix, tz, (seed.host, seed.port))
        pool = client.connection_pool
        return cls(pool.connection_class, dict(pool.connection_kwargs), prefix, tz)

    def analytics(self) -> TrainingAnalytics:
        if self.cluster_seed is not None:
            host, port = self.cluster_seed
            cluster = redis.cluster.RedisCluster(host=host, port=port, **self.connection_kwargs)
            return TrainingAnalytics(cluster, prefix=self.prefix, tz=self.tz)
        pool = redis.ConnectionPool(
            connection_class=self.connection_class, **self.connection_kwargs
        )
        return TrainingAnalytics(redis.Redis(connection_pool=pool), prefix=self.prefix, tz=self.tz)


# --- routing (the parent) ----------------------------------------------------------------------


def _jsonl_key(number: int, raw: bytes | None) -> bytes:
    if raw is None:
        return NO_KEY
    if number == 1:
        raw = raw.removeprefix(_BOM)
    key = raw_partition_key(raw)
    if key is not None:
        return key
    # Escapes, a key twice, a course...: decode the line (a line that does not decode is
    # refused wherever it goes).
    try:
        value = json.loads(raw)
    except ValueError:
        return NO_KEY
    return partition_key(value) if isinstance(value, dict) else NO_KEY


def _routed(reader: LineReader, fmt: Format) -> Iterator[tuple[bytes, tuple[int, Any]]]:
    """(partition key, what the worker is sent for the line) for every non-blank line."""
    if fmt == "csv":
        # Rows are decoded here (the key may sit in a JSON cell); refusals travel as text.
        for line in _csv(reader):
            if line.error is not None:
                yield NO_KEY, (line.number, str(line.error))
            else:
                assert line.record is not None
                yield partition_key(line.record), (line.number, line.record)
        return
    for number, _, raw in reader:
        if raw is not None and not raw.strip():
            continue  # blank (a line of other Unicode spaces is skipped by the worker)
        yield _jsonl_key(number, raw), (number, raw)


# --- a worker ----------------------------------------------------------------------------------


def _work(
    index: int,
    target: Target,
    fmt: Format,
    max_line_bytes: int,
    inbox: Any,
    outbox: Any,
    stop: Any,
) -> None:
    """Apply the lines the parent sends until it sends None (or asks to stop)."""
    rejected: list[tuple[int, str, str]] = []
    tally = ImportTally(on_rejected=lambda *rejection: rejected.append(rejection))

    def report() -> None:
        outbox.put(("progress", index, tally.applied, tally.unchanged, tally.settled, rejected[:]))
        rejected.clear()

    def records() -> Iterator[tuple[int, Any]]:
        while not stop.is_set():
            try:
                lines = inbox.get(timeout=_POLL)
            except queue.Empty:
                continue
            if lines is None:
                return
            report()
            if fmt == "csv":
                for number, record in lines:
                    yield number, InvalidInputError(record) if isinstance(record, str) else record
            else:
                yield from parse_jsonl(lines, max_line_bytes)

    try:
        with collector_tuned():
            target.analytics().import_lines(records(), tally)
    except TrainingAnalyticsError as exc:
        report()
        outbox.put(("error", index, type(exc).__name__, str(exc)))
        return
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the others
        report()
        outbox.put(("error", index, type(exc).__name__, f"{type(exc).__name__}: {exc}"))
        return
    report()
    outbox.put(("done", index))


# --- the parent --------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: Any
    inbox: Any
    buffer: list[tuple[int, Any]] = field(default_factory=list)
    sent: deque[tuple[int, int]] = field(default_factory=deque)
    """(first line, last line) of the chunks sent and not yet settled in full."""
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    settled: int = 0
    finished: bool = False


class WorkerError(TrainingAnalyticsError):
    """A worker stopped on an error that is not the library's (it says which)."""


def _error(name: str, message: str) -> Exception:
    """The library's error of that name (the CLI maps it to its exit status), else a
    WorkerError."""
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, TrainingAnalyticsError):
        with contextlib.suppress(TypeError):
            return kind(message)
    return WorkerError(message)


class Pool:
    """The workers of one import, their queues, and what they reported."""

    def __init__(
        self,
        jobs: int,
        target: Target,
        fmt: Format,
        max_line_bytes: int,
        on_rejected: Callable[[RejectedLine], None] | None,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self.outbox: Any = context.Queue()
        self.stop: Any = context.Event()
        self.on_rejected = on_rejected
        self.failure: Exception | None = None
        self.workers: list[_Worker] = []
        # SIGINT ignored from the fork on (the parent handles Ctrl-C and stops the workers).
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for index in range(jobs):
                inbox: Any = context.Queue(QUEUE_CHUNKS)
                process = context.Process(
                    target=_work,
                    args=(index, target, fmt, max_line_bytes, inbox, self.outbox, self.stop),
                    name=f"training-analytics import worker {index + 1}",
                    daemon=True,
                )
                process.start()
                self.workers.append(_Worker(process, inbox))
        finally:
            signal.signal(signal.SIGINT, previous)

    # What the workers say.

    def _handle(self, message: tuple[Any, ...]) -> None:
        worker = self.workers[message[1]]
        if message[0] == "progress":
            _, _, applied, unchanged, settled, rejected = message
            worker.applied, worker.unchanged, worker.settled = applied, unchanged, settled
            worker.rejected += len(rejected)
            while worker.sent and worker.sent[0][1] <= settled:
                worker.sent.popleft()
            if self.on_rejected is not None:
                for line, error, text in rejected:
                    self.on_rejected(RejectedLine(line, error, text))
        elif message[0] == "done":
            worker.finished = True
        else:
            worker.finished = True
            if self.failure is None:
                self.failure = _error(message[2], message[3])

    def poll(self, wait: float = 0.0) -> None:
        """Read what the workers reported (waiting up to ``wait`` for the first message);
        notice a worker that died without a word."""
        try:
            self._handle(self.outbox.get(timeout=wait) if wait else self.outbox.get_nowait())
            while True:
                self._handle(self.outbox.get_nowait())
        except queue.Empty:
            pass
        for number, worker in enumerate(self.workers, 1):
            code = worker.process.exitcode
            if not worker.finished and code is not None:
                # Its last messages may still be on their way.
                with contextlib.suppress(queue.Empty):
                    while not worker.finished:
                        self._handle(self.outbox.get(timeout=_POLL))
                if not worker.finished:
                    worker.finished = True
                    if self.failure is None:
                        self.failure = WorkerError(
                            f"import worker {number} exited unexpectedly (status {code})"
                        )

    def _put(self, worker: _Worker, item: Any) -> None:
        while True:
            if self.failure is not None:
                raise self.failure
            try:
                worker.inbox.put(item, timeout=_POLL)
                return
            except queue.Full:
                self.poll()

    def send(self, worker: _Worker) -> None:
        lines, worker.buffer = worker.buffer, []
        worker.sent.append((lines[0][0], lines[-1][0]))
        self._put(worker, lines)
        self.poll()

    def add(self, index: int, item: tuple[int, Any]) -> None:
        worker = self.workers[index]
        worker.buffer.append(item)
        if len(worker.buffer) >= CHUNK_LINES:
            self.send(worker)

    def finish(self) -> None:
        """Send what is buffered and the end; wait for every worker to settle its lines."""
        for worker in self.workers:
            if worker.buffer:
                self.send(worker)
        for worker in self.workers:
            self._put(worker, None)
        while not all(worker.finished for worker in self.workers):
            self.poll(_POLL)
        if self.failure is not None:
            raise self.failure

    def halt(self) -> None:
        """Stop reading: every worker settles the batches it sent, reports, and exits."""
        self.stop.set()
        deadline = time.monotonic() + _STOP_GRACE
        while not all(w.finished for w in self.workers) and time.monotonic() < deadline:
            self.poll(_POLL)

    def close(self) -> None:
        for worker in self.workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
        for worker in self.workers:
            worker.inbox.cancel_join_thread()
            worker.inbox.close()
        self.outbox.close()

    def fill(self, summary: ImportSummary, last_read: int) -> None:
        """The totals so far, and the line up to which every line was settled."""
        summary.applied = sum(w.applied for w in self.workers)
        summary.unchanged = sum(w.unchanged for w in self.workers)
        summary.rejected = sum(w.rejected for w in self.workers)
        summary.lines = summary.applied + summary.unchanged + summary.rejected
        pending = [max(w.sent[0][0], w.settled + 1) for w in self.workers if w.sent] + [
            w.buffer[0][0] for w in self.workers if w.buffer
        ]
        summary.last_line = min(pending) - 1 if pending else last_read


def import_file_jobs(
    stream: IO[bytes],
    fmt: Format,
    jobs: int,
    target: Target,
    *,
    on_rejected: Callable[[RejectedLine], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    started: Callable[[], object] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
    summary: ImportSummary | None = None,
) -> ImportSummary:
    """``fileformats.import_file`` over ``jobs`` worker processes (see the module's text).

    ``started`` is called once the workers run (the caller may start threads from then on,
    a progress bar's). Rejected lines come to ``on_rejected`` in line order per worker (the
    workers' reports interleave). Ctrl-C or a worker's error stops every worker once it has
    settled what it sent, then raises (KeyboardInterrupt, or the worker's error); ``summary``
    is filled in either way, ``last_line`` saying up to which line everything was imported.
    """
    if jobs < 1:
        raise InvalidInputError("jobs must be at least 1")
    reader = LineReader(stream, max_line_bytes)
    summary = summary if summary is not None else ImportSummary()
    pool = Pool(jobs, target, fmt, max_line_bytes, on_rejected)
    if started is not None:
        started()
    last_read = 0
    try:
        try:
            for count, (key, item) in enumerate(_routed(reader, fmt), 1):
                last_read = item[0]
                pool.add(worker_of(key, jobs), item)
                if on_progress is not None and count % CHUNK_LINES == 0:
                    on_progress(reader.bytes_read)
            last_read = reader.number
            pool.finish()
        except BaseException:
            pool.halt()
            raise
        finally:
            pool.fill(summary, last_read)
            summary.bytes_read = reader.bytes_read
    finally:
        pool.close()
    if on_progress is not None:
        on_progress(reader.bytes_read)
    return summary
