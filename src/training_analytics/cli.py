"""The ``training-analytics`` command line: demo, report, reindex, bench.

Every command works on the store that :func:`training_analytics.connect` resolves: ``--url``, else
``REDIS_URL``, else the embedded Valkey server (started on first use, persistent, shared by every
process on this machine that uses the same data directory). So ``training-analytics demo``
followed by ``training-analytics report`` shows the same data, with no Redis installed.

The global options ``--url``, ``--prefix`` and ``--tz`` work before the command name
(``training-analytics --url X report``) and after it (``report --url X``); after it wins. A new
command takes them as ``url: UrlOption = None, prefix: PrefixOption = None, tz: TzOption = None``
and opens the store with ``_open_store(_settings(ctx, prefix, tz, url))`` inside
``with _friendly_errors():``.

Tables go to stdout, progress and messages to stderr, so ``report --json`` can be piped. Expected
failures (server unreachable, store not indexed, bad input) print one clear message and exit with
status 2 (1 for a refusal such as demo data that would mix with existing data); a traceback means
a bug. Ctrl-C prints what was done and exits with 130; a closed pipe (``report | head``) ends the
command quietly with 141, as a Unix tool killed by SIGPIPE.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

import training_analytics as ta

from . import fileformats, import_jobs, transfer
from . import migrate as migrate_core
from ._time import parse_instant
from .demo import (
    DEFAULT_LEARNERS,
    DEFAULT_NOW,
    DEFAULT_SEED,
    DEMO_COURSE_IDS,
    generate,
    load_demo,
)
from .errors import EmbeddedServerError
from .facade import SyncClient
from .keys import DEFAULT_CERT_BUCKETS
from .server import (
    DATA_DIR_ENV,
    REDIS_URL_ENV,
    compact_append_only_file,
    default_data_dir,
    ping,
)

__all__ = ["app", "main"]


class _FlagHelp:
    """``--help`` listed as a flag in the help, like the others (Typer shows ``<bool>``)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class _Command(_FlagHelp, TyperCommand):
    pass


class _Group(_FlagHelp, TyperGroup):
    pass


class _Typer(typer.Typer):
    """Commands get ``_Command`` unless they ask for another class."""

    def command(
        self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    cls=_Group,
    name="training-analytics",
    help=(
        "Training analytics on Redis or Valkey: enrolments, drop-off, daily series and "
        f"certificates. Uses --url, else ${REDIS_URL_ENV}, else an embedded Valkey server "
        f"(data in ${DATA_DIR_ENV} or the user data directory). --url, --prefix and --tz may "
        "come before or after the command."
    ),
    no_args_is_help=True,
    add_completion=False,
    # Locals could include a URL with a password; tracebacks are for bugs only anyway.
    pretty_exceptions_show_locals=False,
)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich exits with 1 here; a reader that went away (`report | head`) is no failure.
        self.quiet = True
        _exit_on_broken_pipe()


out = _Console()
err = _Console(stderr=True)

EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2
#: 128 + SIGINT, and 128 + SIGPIPE: what a shell reports for a tool stopped by either signal.
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Days in the report's daily series (ending today in the configured time zone).
SERIES_DAYS = 14

#: Width of tables written to a pipe or file: wide enough that no row or title wraps.
PIPE_WIDTH = 250


# --- options shared by the commands ------------------------------------------------------------


@dataclass
class Settings:
    prefix: str = ""
    tz: str = "UTC"
    url: str | None = None
    tz_given: bool = False
    """``--tz`` was given; otherwise the zone recorded in the store (if any) replaces ``tz``."""


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help=f"Redis/Valkey URL. Default: ${REDIS_URL_ENV}, else the embedded server.",
        show_default=False,
    ),
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        metavar="PREFIX",
        help="Key prefix (tenant namespace), e.g. 'tenant-a:'. Default: none.",
        show_default=False,
    ),
]
TzOption = Annotated[
    str | None,
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="Time zone of day buckets, e.g. Europe/Madrid. Default: the zone the store's "
        "data was written in, else UTC. A zone other than the store's is refused (day buckets "
        "cannot be converted).",
        show_default=False,
    ),
]


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    # A region name such as "America" is a directory of tzdata: ZoneInfo raises OSError then.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise typer.BadParameter(f"unknown time zone {value!r}", param_hint="--tz") from exc
    return value


def _fit_output() -> None:
    """Output for a reader: a pipe or file gets full-width tables and unwrapped messages."""
    for console in (out, err):
        if not console.is_terminal:
            console.soft_wrap = True
            if not os.environ.get("COLUMNS"):
                console.width = PIPE_WIDTH


@app.callback()
def _global_options(
    ctx: typer.Context,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    _fit_output()
    ctx.obj = Settings(
        prefix=prefix or "",
        tz=_check_tz(tz) if tz is not None else "UTC",
        url=url,
        tz_given=tz is not None,
    )


def _settings(
    ctx: typer.Context, prefix: str | None, tz: str | None, url: str | None = None
) -> Settings:
    """The global options, overridden by the same options given after the command name."""
    base = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    return Settings(
        prefix=base.prefix if prefix is None else prefix,
        tz=base.tz if tz is None else _check_tz(tz),
        url=base.url if url is None else url,
        tz_given=base.tz_given or tz is not None,
    )


# --- errors ------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _exit_on_broken_pipe() -> NoReturn:
    """The reader of stdout went away (``report | head``): stop quietly, as Unix tools do."""
    # Point stdout at /dev/null so that the interpreter's final flush does not fail again and
    # print "Exception ignored ... BrokenPipeError".
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise typer.Exit(EXIT_BROKEN_PIPE)


def _interrupted(message: str) -> NoReturn:
    err.print(f"[bold yellow]interrupted:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures become one message and an exit status, never a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        # Commands that write say what they had done before this; a read changed nothing.
        _interrupted("stopped by Ctrl-C.")
    except BrokenPipeError:
        _exit_on_broken_pipe()
    except ta.NotIndexedError as exc:
        _fail(
            f"{exc}.\nRun `training-analytics reindex` with the same --url and --prefix, "
            "then try again.",
            EXIT_UNAVAILABLE,
        )
    except ta.StoreUnavailableError as exc:
        _fail(
            f"{exc}\nCheck that the server runs and that --url / ${REDIS_URL_ENV} is right "
            f"(unset ${REDIS_URL_ENV} to use the embedded server).",
            EXIT_UNAVAILABLE,
        )
    except EmbeddedServerError as exc:
        _fail(f"the embedded Valkey server is unavailable: {exc}", EXIT_UNAVAILABLE)
    except ta.InvalidInputError as exc:
        _fail(str(exc), EXIT_UNAVAILABLE)
    except ta.TrainingAnalyticsError as exc:
        _fail(f"{type(exc).__name__}: {exc}", EXIT_REFUSED)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # Only from this module's own commands (SCAN, UNLINK); the library translates its own.
        _fail(f"the Redis/Valkey server became unreachable: {exc}", EXIT_UNAVAILABLE)
    except redis.exceptions.InvalidResponse as exc:
        # Something listens there, but it does not speak RESP (a web server, a proxy).
        _fail(
            f"the server did not answer like Redis or Valkey ({exc}); check --url / "
            f"${REDIS_URL_ENV}",
            EXIT_UNAVAILABLE,
        )
    except redis.RedisError as exc:
        _fail(f"the Redis/Valkey server refused a command: {exc}", EXIT_REFUSED)


# --- the store ---------------------------------------------------------------------------------


@dataclass
class Store:
    client: SyncClient
    analytics: ta.TrainingAnalytics
    settings: Settings
    """The options in effect: ``tz`` is the zone the commands use (resolved against the store's)."""
    where: str
    """Human description of the server, without credentials."""
    embedded: bool
    recorded_tz: str | None = None
    """The zone the store's day buckets were written in, if recorded."""

    def with_tz(self, tz: str) -> Store:
        """The same store seen through a facade with day buckets in ``tz``."""
        analytics = ta.TrainingAnalytics(self.client, prefix=self.settings.prefix, tz=tz)
        return replace(self, analytics=analytics, settings=replace(self.settings, tz=tz))


def _redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (string surgery: parsing may fail)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(
        (parts.scheme, f"{user}:***@{hostport}", parts.path, parts.query, parts.fragment)
    )


def _open_store(
    settings: Settings,
    url: str | None = None,
    *,
    check_zone: bool = True,
) -> Store:
    """Connect (starting the embedded server if that is what resolves) and check it answers.

    ``url`` overrides ``settings.url``. The day buckets' zone is the one recorded in the store
    unless ``--tz`` was given; with ``check_zone``, a given zone other than the recorded one is
    refused (``InvalidInputError``): day buckets cannot be re-read in another zone, and showing
    them under its name would only relabel them.
    """
    configured = url or settings.url or os.environ.get(REDIS_URL_ENV) or None
    if configured is None:
        with err.status("Starting the embedded Valkey server…"):
            connected = ta.connect(None)
        where = f"embedded Valkey (data in {default_data_dir()})"
    else:
        where = _redact(configured)
        try:
            connected = ta.connect(configured)
        except (ta.ClusterModeError, ta.StoreUnavailableError):
            raise
        except ValueError as exc:
            # redis-py parses the URL here (scheme, port range, query options).
            raise ta.InvalidInputError(f"invalid server URL {where!r}: {exc}") from exc
    client = connected
    # On a cluster: every node that answers reports cluster_state:ok.
    ping(client)
    analytics = ta.TrainingAnalytics(client, prefix=settings.prefix, tz=settings.tz)
    recorded = analytics.get_recorded_time_zone()
    store = Store(client, analytics, settings, where, configured is None, recorded)
    if recorded is None or recorded == settings.tz:
        return store
    if not settings.tz_given:
        return store.with_tz(recorded)
    if check_zone:
        raise ta.InvalidInputError(
            f"--tz {settings.tz}: the day buckets in this store were written in {recorded} "
            f"({_describe_prefix(settings.prefix)}), and daily counts cannot be converted to "
            f"another zone; leave out --tz (or pass --tz {recorded})"
        )
    return store


# --- the demo's marker -------------------------------------------------------------------------
# A hash under training:meta:demo says which programme a demo loaded (seed, learners, its clock)
# and whether loading finished: an interrupted demo is never mistaken for a whole one.


@dataclass(frozen=True)
class DemoRecord:
    seed: int
    learners: int
    now: datetime
    tz: str
    events: int
    recorded: int
    complete: bool

    @classmethod
    def read(cls, store: Store) -> DemoRecord | None:
        raw = store.client.hgetall(store.analytics.keys.demo_marker())
        fields = {str(k): str(v) for k, v in raw.items()}  # decode_responses: already str
        try:
            return cls(
                seed=int(fields["seed"]),
                learners=int(fields["learners"]),
                now=parse_instant(fields["now"], "demo marker"),
                tz=_check_tz(fields["tz"]),
                events=int(fields["events"]),
                recorded=int(fields["recorded"]),
                complete=fields["state"] == "complete",
            )
        except (KeyError, ValueError, typer.BadParameter):
            return None  # no marker (or not one this version wrote): not a known demo

    def write(self, store: Store) -> None:
        store.client.hset(
            store.analytics.keys.demo_marker(),
            mapping={
                "seed": self.seed,
                "learners": self.learners,
                "now": self.now.isoformat(),
                "tz": self.tz,
                "events": self.events,
                "recorded": self.recorded,
                "state": "complete" if self.complete else "loading",
            },
        )

    def describe(self) -> str:
        return (
            f"seed {self.seed}, {self.learners:,} learners, activity up to "
            f"{self.now:%Y-%m-%d %H:%M} UTC"
        )


def _holds_training_data(store: Store) -> bool:
    # The catalogue, the certificates, the events and the index marker: any one of them means
    # there is data a demo would mix with (a few EXISTS, not a SCAN; presence.py).
    return store.analytics.holds_training_data()


def _holds_only_demo_data(store: Store) -> bool:
    """Whether the catalogue lists demo courses and nothing else (a previous demo's data)."""
    ids = store.client.zrange(store.analytics.keys.all_training_courses(), 0, -1)
    return bool(ids) and {str(i) for i in ids} <= DEMO_COURSE_IDS


def _clear_training_data(store: Store) -> int:
    """UNLINK every training key under the prefix; returns how many were removed."""
    removed = 0
    with err.status("Removing the existing training data…") as status:
        for pattern in store.analytics.keys.training_patterns():
            batch: list[str] = []
            for key in store.client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += int(store.client.unlink(*batch))
                    batch.clear()
                    status.update(f"Removing the existing training data… {removed:,} keys")
            if batch:
                removed += int(store.client.unlink(*batch))
    return removed


def _describe_prefix(prefix: str) -> str:
    return f"prefix {prefix!r}" if prefix else "no prefix"


# --- the report --------------------------------------------------------------------------------


@dataclass
class CourseReport:
    course: ta.TrainingCourse
    analytics: ta.CourseDetailedAnalytics


@dataclass
class Report:
    overview: ta.TrainingOverviewMetrics
    courses: list[CourseReport]
    claims: ta.CredentialClaimAnalytics
    credentials: ta.CredentialStats
    course_filter: str | None
    series_start: date
    series_end: date
    enrollments: list[ta.TimeSeriesDataPoint]
    completions: list[ta.TimeSeriesDataPoint]
    as_of: datetime | None = None
    """The clock of the figures that depend on the time (expiry, the last days), when fixed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "asOf": None if self.as_of is None else self.as_of.isoformat(),
            "overview": self.overview.model_dump(mode="json"),
            "courses": [
                {
                    "id": c.course.id,
                    "title": c.course.title,
                    "category": c.course.category,
                    "isPublished": c.course.is_published,
                    "certificateEnabled": c.course.certificate_enabled,
                    "analytics": c.analytics.model_dump(mode="json"),
                }
                for c in self.courses
            ],
            "credentialClaimAnalytics": self.claims.model_dump(mode="json"),
            "credentialStats": self.credentials.model_dump(mode="json"),
            "series": {
                "courseId": self.course_filter,
                "startDate": self.series_start.isoformat(),
                "endDate": self.series_end.isoformat(),
                "enrollments": [p.model_dump(mode="json") for p in self.enrollments],
                "completions": [p.model_dump(mode="json") for p in self.completions],
            },
        }


def collect_report(
    analytics: ta.TrainingAnalytics,
    *,
    course_id: str | None = None,
    today: date | None = None,
    as_of: datetime | None = None,
) -> Report:
    """Everything the report shows; ``course_id`` narrows the course section and the series.

    ``as_of`` fixes the clock of the time-dependent figures (a demo's programme is shown as of
    the moment it was generated for); ``today`` the last day of the series.
    """
    if as_of is not None:
        moment = as_of
        analytics = ta.TrainingAnalytics(
            analytics.client,
            prefix=analytics.keys.prefix,
            tz=analytics.context.tz,
            clock=lambda: moment,
            max_range_days=analytics.context.max_range_days,
        )
    overview = analytics.get_training_overview_metrics()
    courses = analytics.get_all_training_courses()
    if course_id is not None:
        courses = [c for c in courses if c.id == course_id]
        if not courses:
            raise ta.CourseNotFoundError(f"no course with id {course_id!r} in the catalogue")
    reports = [CourseReport(c, analytics.get_course_detailed_analytics(c.id)) for c in courses]
    end = today or analytics.context.now().astimezone(analytics.context.tz).date()
    start = end - timedelta(days=SERIES_DAYS - 1)
    return Report(
        overview=overview,
        courses=reports,
        claims=analytics.get_credential_claim_analytics(),
        credentials=analytics.get_credential_stats(),
        course_filter=course_id,
        series_start=start,
        series_end=end,
        enrollments=analytics.get_enrollment_time_series(start, end, course_id=course_id),
        completions=analytics.get_completion_time_series(start, end, course_id=course_id),
        as_of=as_of,
    )


def _pct(value: float) -> str:
    return f"{value:.1f}"


#: Characters of a drop-off bar; its column's header is the scale, 0% to 100%.
BAR_WIDTH = 20


def _bar(rate: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(rate, 100.0)) / 100 * width)
    colour = "green" if rate < 15 else "yellow" if rate < 30 else "red"
    return f"[{colour}]{'█' * filled}[/][dim]{'·' * (width - filled)}[/]"


def _note(text: str) -> None:
    """A line under a table: never wrapped into it, never wrapped mid-sentence in a pipe."""
    out.print(f"[dim]{escape(text)}[/]", highlight=False)


def _overview_table(report: Report) -> Table:
    o = report.overview
    table = Table(title="Programme overview", title_justify="left", show_header=False)
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_row("Courses", f"{o.total_courses:,}")
    table.add_row("  published", f"{o.published_courses:,}")
    table.add_row("  drafts", f"{o.draft_courses:,}")
    table.add_row("Enrolments (all courses)", f"{o.total_enrollments:,}")
    table.add_row("Average completion rate, % (published courses)", _pct(o.average_completion_rate))
    table.add_row("Certificates issued", f"{o.total_certifications:,}")
    return table


#: Column headers of the course table, with their unit; the notes under it explain them.
COURSE_COLUMNS = ("Course", "Id", "Enrolled", "Completed", "Rate %", "Score", "Hours")
COURSE_NOTES = (
    "Rate %: completed / enrolled. Score: mean overall score (0-100). Hours: mean time from "
    "first start to completion, in hours (as averageTimeToComplete in --json). A figure with "
    "nothing to average (a draft or a course without learners) shows 0, as in --json."
)


def _courses_table(report: Report) -> Table:
    table = Table(title="Courses", title_justify="left")
    for name in COURSE_COLUMNS:
        table.add_column(name, justify="left" if name in {"Course", "Id"} else "right")
    for c in report.courses:
        a = c.analytics
        title = escape(ta.get_localized_name(c.course.title, c.course.id))
        if not c.course.is_published:
            title += " [yellow](draft)[/]"
        table.add_row(
            title,
            f"[dim]{escape(c.course.id)}[/]",
            f"{a.enrollments:,}",
            f"{a.completions:,}",
            _pct(a.completion_rate),
            str(a.average_score),
            f"{a.average_time_to_complete:,.1f}",
        )
    return table


def _dropoff_table(course: CourseReport) -> Table:
    title = escape(ta.get_localized_name(course.course.title, course.course.id))
    table = Table(title=f"Drop-off by module: {title}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Module")
    table.add_column("Drop-off %", justify="right")
    table.add_column(
        f"{'0%':<{BAR_WIDTH // 2}}{'100%':>{BAR_WIDTH - BAR_WIDTH // 2}}", no_wrap=True
    )
    for index, rate in enumerate(course.analytics.dropoff_rates, 1):
        table.add_row(
            str(index), escape(rate.module_name), _pct(rate.dropoff_rate), _bar(rate.dropoff_rate)
        )
    return table


def _credentials_table(report: Report) -> Table:
    c, s = report.claims, report.credentials
    table = Table(title="Certificates", title_justify="left", show_header=False)
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_row("Issued (all time)", f"{c.total_issued:,}")
    table.add_row("Claimed (ever)", f"{c.total_claimed:,}")
    table.add_row("Claim rate, %", _pct(c.claim_rate))
    table.add_row("Average time to claim, hours", f"{c.average_claim_time_hours:,.1f}")
    table.add_row("Pending (issued, unclaimed, valid)", f"{c.pending:,}")
    table.add_row("Expiring in the next 30 days", f"{c.expiring_in_30_days:,}")
    table.add_section()
    table.add_row("[bold]Status now[/]", "")
    table.add_row("  issued, not claimed", f"{s.issued:,}")
    table.add_row("  claimed", f"{s.claimed:,}")
    table.add_row("  expired", f"{s.expired:,}")
    table.add_row("  revoked", f"{s.revoked:,}")
    return table


def _series_table(report: Report, tz: str) -> Table:
    scope = f"course {report.course_filter}" if report.course_filter else "all courses"
    title = f"Last {SERIES_DAYS} days ({scope}, days in {tz})"
    # Rich wraps a title to the table's width; this narrow table would split it.
    table = Table(title=escape(title), title_justify="left", min_width=len(title))
    table.add_column("Date")
    table.add_column("Enrolments", justify="right")
    table.add_column("Completions", justify="right")
    for enrolled, completed in zip(report.enrollments, report.completions, strict=True):
        day = date.fromisoformat(enrolled.date)
        weekend = day.weekday() >= 5
        label = f"{enrolled.date} {day.strftime('%a')}"
        table.add_row(
            f"[dim]{label}[/]" if weekend else label, f"{enrolled.count:,}", f"{completed.count:,}"
        )
    return table


def _warn_incomplete_demo(store: Store, demo: DemoRecord | None) -> None:
    if demo is None or demo.complete:
        return
    err.print(
        f"[bold yellow]warning:[/] this store holds an interrupted demo ({demo.describe()}): "
        f"only {demo.recorded:,} of its {demo.events:,} events were recorded, so the figures "
        "are partial. Run `training-analytics demo --finish` to record the rest, or "
        "`training-analytics demo --reset` to start again.",
        highlight=False,
    )


def print_report(report: Report, store: Store) -> None:
    as_of = (
        f"; figures as of {report.as_of.astimezone(UTC):%Y-%m-%d %H:%M} UTC (the demo's clock)"
        if report.as_of is not None
        else ""
    )
    out.print(
        f"[dim]Store: {escape(store.where)}; {_describe_prefix(store.settings.prefix)}; "
        f"days in {escape(store.settings.tz)}{as_of}[/]",
        highlight=False,
    )
    out.print()
    if not report.overview.total_courses and not report.overview.total_enrollments:
        err.print(
            "[yellow]This store holds no training courses or enrolments"
            f" ({_describe_prefix(store.settings.prefix)}).[/] "
            "Load a generated programme with `training-analytics demo`, or point --url / "
            f"${REDIS_URL_ENV} at your data.",
            highlight=False,
        )
    if report.course_filter is None:
        out.print(_overview_table(report))
        out.print()
    else:
        _note(
            f"Course {report.course_filter} only: the programme overview and certificates "
            "cover every course and are left out (run without --course to see them)."
        )
        out.print()
    out.print(_courses_table(report))
    _note(COURSE_NOTES)
    out.print()
    shown = [c for c in report.courses if c.analytics.enrollments and c.analytics.dropoff_rates]
    if shown:
        _note("Drop-off %: of the learners who started a module, those who have not completed it.")
        out.print()
    for course in shown:
        out.print(_dropoff_table(course))
        out.print()
    hidden = len(report.courses) - len(shown)
    if hidden and report.course_filter is None:
        _note(f"{hidden} course(s) without learners have no drop-off to show.")
        out.print()
    if report.course_filter is None:
        out.print(_credentials_table(report))
        out.print()
    out.print(_series_table(report, store.settings.tz))


def _emit_json(report: Report) -> None:
    # Plain stdout, not Rich: no wrapping or highlighting in what scripts parse.
    sys.stdout.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()  # a closed pipe shows here, inside the command, not at exit


# --- commands ----------------------------------------------------------------------------------


class _StopRequest:
    """Ctrl-C while the store is written: the work stops at the next safe point, then says so."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[_StopRequest]:
    """The first Ctrl-C asks to stop at a safe point; a second one stops at once."""
    stop = _StopRequest()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        err.print(
            "[yellow]Stopping after the current batch of events (Ctrl-C again to stop at once)…[/]",
            highlight=False,
        )

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (an embedding application): Ctrl-C is its business
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return DEFAULT_NOW
    if value.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        return parse_instant(value, "--now")
    except ta.InvalidDateError as exc:
        raise typer.BadParameter(str(exc), param_hint="--now") from exc


def _choose_finish(previous: DemoRecord) -> bool | None:
    """Ask whether to finish (True) or reset (False) an interrupted demo; None: not asked."""
    if not sys.stdin.isatty():
        return None
    answer: str = typer.prompt(
        f"This store holds an interrupted demo ({previous.describe()}; {previous.recorded:,} "
        f"of {previous.events:,} events recorded). Finish it (f), delete it and start again "
        "(r), or quit (q)?",
        default="f",
        err=True,
    )
    choice = answer.strip().lower()[:1]
    if choice == "q":
        raise typer.Exit(EXIT_REFUSED)
    return choice != "r"


@app.command()
def demo(
    ctx: typer.Context,
    *,
    learners: Annotated[
        int,
        typer.Option(
            "--learners", "-n", min=1, metavar="N", help="Number of learners to generate."
        ),
    ] = DEFAULT_LEARNERS,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", metavar="SEED", help="Random seed (same seed and --now, same programme)."
        ),
    ] = DEFAULT_SEED,
    url: UrlOption = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            metavar="",
            help="Delete the training data already there (under the prefix) first. Needed "
            "unless the store is the embedded one and holds only an earlier demo.",
        ),
    ] = False,
    finish: Annotated[
        bool,
        typer.Option(
            "--finish",
            metavar="",
            help="Record the rest of an interrupted demo (the same programme it started).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print the report as JSON.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            metavar="WHEN",
            help=f"End of the generated activity: ISO-8601 with a zone, or 'now' for the "
            f"current time. Default: {DEFAULT_NOW:%Y-%m-%dT%H:%MZ}, fixed so that the same "
            "seed gives the same counts on every run; the report shows the programme as of "
            "that moment.",
        ),
    ] = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Load a realistic generated programme (~90 days of activity), then print the report."""
    settings = _settings(ctx, prefix, tz, url)
    end = _parse_now(now)
    with _friendly_errors():
        store = _open_store(settings, check_zone=False)
        previous = DemoRecord.read(store)
        resume: DemoRecord | None = None
        if previous is not None and not previous.complete and not reset:
            wants_finish = True if finish else _choose_finish(previous)
            if wants_finish is None:
                err.print(
                    f"[bold red]refused:[/] this store holds an interrupted demo "
                    f"({previous.describe()}; {previous.recorded:,} of {previous.events:,} "
                    "events recorded). Pass --finish to record the rest, or --reset to delete "
                    "it and start again.",
                    highlight=False,
                )
                raise typer.Exit(EXIT_REFUSED)
            if wants_finish:
                resume = previous
            else:
                reset = True
        elif finish:
            err.print(
                "[bold red]refused:[/] there is no interrupted demo to finish here "
                f"({_describe_prefix(settings.prefix)}).",
                highlight=False,
            )
            raise typer.Exit(EXIT_REFUSED)
        clear = False
        if resume is None and _holds_training_data(store):
            scope = f"{store.where}, {_describe_prefix(settings.prefix)}"
            # The embedded store is the demo's sandbox, so a previous demo there is replaced
            # without asking; anything else (a server given by URL, or courses of the user's
            # own in the embedded store) is only deleted when asked to.
            if not reset and not (store.embedded and _holds_only_demo_data(store)):
                err.print(
                    f"[bold red]refused:[/] {escape(scope)} already holds training data, and "
                    "demo data must not mix with it. Pass --reset to delete every "
                    f"'{escape(settings.prefix)}training:*' and "
                    f"'{escape(settings.prefix)}cache:training:*' key there first, or use "
                    "another --prefix.",
                    highlight=False,
                )
                raise typer.Exit(EXIT_REFUSED)
            clear = True
        if resume is not None:
            plan = resume
            err.print(f"Finishing the interrupted demo ({plan.describe()}).", highlight=False)
        else:
            zone = settings.tz if settings.tz_given else "UTC"
            plan = DemoRecord(seed, learners, end, zone, events=0, recorded=0, complete=False)
        store = store.with_tz(plan.tz)
        generating = time.monotonic()
        try:
            with err.status(f"Generating {plan.learners:,} learners…"):
                programme = generate(plan.now, plan.learners, plan.seed)
        except KeyboardInterrupt:
            _interrupted("while generating the programme; nothing was written.")
        plan = replace(plan, events=len(programme[1]))
        _load_demo_interruptibly(
            store,
            plan,
            programme,
            clear=clear,
            resume=resume is not None,
            generated_in=time.monotonic() - generating,
        )
        report = collect_report(store.analytics, as_of=plan.now)
        if as_json:
            _emit_json(report)
        else:
            out.print()
            print_report(report, store)


def _load_demo_interruptibly(
    store: Store,
    plan: DemoRecord,
    programme: tuple[list[dict[str, Any]], list[Any]],
    *,
    clear: bool,
    resume: bool = False,
    generated_in: float = 0.0,
) -> None:
    """Clear (if asked), then record ``plan``'s events from ``plan.recorded``, marking progress.

    The marker says "loading" until the last event is recorded. Ctrl-C stops after the batch in
    flight; the command then says what was recorded and what was not, and exits with 130.
    """
    marker = store.analytics.keys.demo_marker()
    recorded = plan.recorded
    marked = False
    started = time.monotonic()
    with _deferred_interrupt() as stop:
        try:
            if clear:
                removed = _clear_training_data(store)
                err.print(
                    f"Cleared the previous training data ({removed:,} keys) from "
                    f"{escape(store.where)}, {_describe_prefix(store.settings.prefix)}.",
                    highlight=False,
                )
                _compact_embedded_store(store)
            if stop():
                _interrupted(
                    "the previous training data was removed; nothing of the new demo was "
                    "recorded. Run `training-analytics demo` to load it."
                )
            plan.write(store)
            marked = True
            store.analytics.record_time_zone()
            with _progress() as progress:
                task = progress.add_task("Recording events", total=plan.events)

                def advance(done: int, total: int) -> None:
                    nonlocal recorded
                    recorded = done
                    store.client.hset(marker, "recorded", done)
                    progress.update(task, completed=done, total=total)

                summary = load_demo(
                    store.analytics,
                    learners=plan.learners,
                    seed=plan.seed,
                    now=plan.now,
                    progress=advance,
                    start=plan.recorded,
                    resume=resume,
                    should_stop=stop,
                    programme=programme,
                )
        except KeyboardInterrupt:
            if not marked:
                _interrupted(
                    "nothing of the new demo was recorded"
                    + ("; the previous training data may be partly removed" if clear else "")
                    + ". Run `training-analytics demo --reset` to load it."
                )
            summary = None
        if summary is None or summary.interrupted:
            rest = plan.events - recorded
            _interrupted(
                f"{recorded:,} of the programme's {plan.events:,} events are recorded, "
                f"{rest:,} are not. The store holds an incomplete demo, marked as such "
                f"({store.analytics.keys.demo_marker()}): `training-analytics report` warns "
                "about it, `training-analytics demo --finish` records the rest (the same "
                "programme), `training-analytics demo --reset` deletes it and starts again."
            )
        store.client.hset(marker, mapping={"recorded": summary.recorded, "state": "complete"})
    elapsed = time.monotonic() - started
    err.print(
        f"Loaded {summary.courses} courses, {plan.learners:,} learners and "
        f"{summary.events - plan.recorded:,} events in {elapsed:.1f} s (generated in "
        f"{generated_in:.1f} s): "
        f"{summary.result.applied:,} applied, {summary.result.unchanged:,} unchanged, "
        f"{len(summary.result.rejected):,} rejected.",
        highlight=False,
    )
    if resume and summary.result.rejected:
        err.print(
            "[dim]Finishing replays the batch that was in flight when the demo was stopped; "
            "a replayed certificate whose status has moved on since is refused, and nothing "
            "is counted twice.[/]",
            highlight=False,
        )
    for rejected in summary.result.rejected[:5]:
        err.print(
            f"[yellow]rejected event {rejected.index}:[/] {rejected.error}: "
            f"{escape(rejected.message)}"
        )


def _compact_embedded_store(store: Store) -> None:
    """After a reset, rewrite the embedded server's append-only file (its history is gone)."""
    if not store.embedded or not isinstance(store.client, redis.Redis):
        return  # someone else's server: its persistence is theirs to run
    assert isinstance(store.client, redis.Redis)  # the embedded server is never a cluster
    with err.status("Compacting the embedded store's append-only file…"):
        compact_append_only_file(store.client)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        # The summary line printed after it says what was done; the finished bar would not.
        transient=True,
    )


@app.command()
def report(
    ctx: typer.Context,
    *,
    url: UrlOption = None,
    course: Annotated[
        str | None,
        typer.Option(
            "--course",
            metavar="ID",
            help="Only this course: its analytics, drop-off and daily series. The programme "
            "overview and the certificates cover every course and are left out.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", metavar="", help="Print JSON instead of tables.")
    ] = False,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Print the overview, per-course analytics with drop-off, certificates and recent days."""
    settings = _settings(ctx, prefix, tz, url)
    with _friendly_errors():
        store = _open_store(settings)
        demo_record = DemoRecord.read(store)
        _warn_incomplete_demo(store, demo_record)
        data = collect_report(
            store.analytics,
            course_id=course,
            as_of=demo_record.now if demo_record is not None else None,
        )
        if as_json:
            _emit_json(data)
        else:
            print_report(data, store)


#: What the reindex table calls each count (ReindexReport's fields); others are named after theirs.
REINDEX_LABELS = {
    "courses": "Courses",
    "learners": "Enrolments",
    "enrollment_events": "Enrolment events (series)",
    "completion_events": "Completion events (series)",
    "certifications": "Certificates",
    "removed_dangling_certifications": "Dangling certificate ids removed",
    "unenrolled_progress": "Progress saved before enrolling",
    "skipped_course_ids": "Skipped course ids",
}


@app.command()
def reindex(
    ctx: typer.Context,
    *,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Rebuild this library's derived keys from the base keys (after the older system wrote)."""
    settings = _settings(ctx, prefix, tz, url)
    with _friendly_errors():
        store = _open_store(settings)
        started = time.monotonic()
        stage = "starting"
        try:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task("Reindexing", total=None)

                def advance(step: str, done: int) -> None:
                    nonlocal stage
                    stage = f"{step} ({done:,})"
                    progress.update(task, description=f"Reindexing: {stage}")

                result = store.analytics.reindex(progress=advance)
        except KeyboardInterrupt:
            _interrupted(
                f"reindex stopped at: {stage}. The derived keys are incomplete and the store "
                "is marked as not indexed, so writes and the reads that need them are refused "
                "(nothing is counted wrong) until `training-analytics reindex` runs to the end."
            )
        store.analytics.record_time_zone()
        elapsed = time.monotonic() - started
        out.print(
            f"Reindexed {escape(store.where)}; {_describe_prefix(settings.prefix)}; days in "
            f"{escape(store.settings.tz)}; {elapsed:.1f} s.",
            highlight=False,
        )
        table = Table(show_header=False)
        table.add_column("What")
        table.add_column("Count", justify="right")
        for name, value in result.model_dump(by_alias=False).items():
            label = REINDEX_LABELS.get(name, name.replace("_", " ").capitalize())
            table.add_row(label, _report_value(value))
        out.print(table)


def _report_value(value: object) -> str:
    """A ReindexReport field for the table: counts, or the first few items of a list."""
    if isinstance(value, bool) or not isinstance(value, int | list):
        return escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    shown = ", ".join(str(item) for item in value[:5])
    more = f" (+{len(value) - 5:,} more)" if len(value) > 5 else ""
    return escape(f"{len(value):,}: {shown}{more}" if value else "0")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the quick benchmark suite; --full for every size (arguments go to it; try --help)."""
    try:
        # Imported here: the suite is only needed by this command.
        from .bench.__main__ import main as bench_main  # noqa: PLC0415
    except ImportError as exc:
        _fail(
            f"the benchmarks cannot be imported: {exc}. Install their extras with "
            "`pip install 'training-analytics[bench]'`.",
            EXIT_REFUSED,
        )
    try:
        code = bench_main(list(ctx.args))
    except KeyboardInterrupt:
        # Its throwaway servers are stopped on the way out; a store of the user's is only
        # written when --flush allowed it, and then holds benchmark data in any case.
        _interrupted("the benchmark stopped; nothing was printed or saved for this run.")
    raise typer.Exit(code or 0)


# --- import and export ---------------------------------------------------------------------------

#: ``import`` read the file and applied what it could, but refused some lines (listed on stderr).
EXIT_REJECTED = 3


def _one_line(text: str) -> str:
    return " ".join(text.split())


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(help="JSON Lines or CSV file, one record a line; '-' reads stdin.")
    ],
    *,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl, csv, or xapi (statements: a JSON array or JSON lines, docs/xapi.md). "
            "Default: from the extension (.jsonl, .ndjson, .csv); jsonl for stdin.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    max_line_bytes: Annotated[
        int,
        typer.Option(
            "--max-line-bytes", min=1, help="Longer lines are rejected without being read."
        ),
    ] = fileformats.MAX_LINE_BYTES,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes, each with its own connection (a learner's events in a "
            "course, and a certificate's, stay in order on one). Default: "
            f"{import_jobs.DEFAULT_JOBS_TEXT}.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Import events and courses (docs/formats.md), streaming; bad lines are reported, not fatal.

    Exit status: 0 when every line was applied or unchanged, 3 when some lines were rejected
    (each is listed on stderr with its line number; the others were imported), 2 when the file
    cannot be read or the store cannot be reached (or needs `reindex` first), 1 when the server
    refused a command, 130 when interrupted (the message says up to which line everything was
    imported).
    """
    settings = _settings(ctx, prefix, tz)
    if file_format == "xapi":
        _import_statements(settings, file, url, as_json)
        return
    with _friendly_errors(), contextlib.ExitStack() as stack:
        fmt = fileformats.detect_format(
            file, file_format if file_format or file != "-" else "jsonl"
        )
        if file == "-":
            stream: Any = sys.stdin.buffer
            total: int | None = None
        else:
            try:
                stream = stack.enter_context(open(file, "rb"))
            except OSError as exc:
                _fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_UNAVAILABLE)
            size = os.fstat(stream.fileno()).st_size
            total = size if size and os.path.isfile(file) else None
        store = _open_store(settings, url)
        workers = import_jobs.choose_jobs(jobs, total)
        started = time.monotonic()
        progress = Progress(
            SpinnerColumn(),
            TextColumn("Importing"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        task = progress.add_task("import", total=total)

        def rejected(line: fileformats.RejectedLine) -> None:
            if not err.is_terminal:
                # The same text, without Rich's rendering (about 0.1 ms a line: a replay of a
                # file of status changes reports thousands).
                try:
                    sys.stderr.write(f"line {line.line}: {line.error}: {_one_line(line.message)}\n")
                except BrokenPipeError:
                    _exit_on_broken_pipe()
                return
            progress.console.print(
                f"[yellow]line {line.line}:[/] {line.error}: {escape(_one_line(line.message))}",
                highlight=False,
                soft_wrap=True,
            )

        summary = fileformats.ImportSummary()
        try:
            if workers == 1:
                stack.enter_context(progress)
                with import_jobs.collector_tuned():
                    fileformats.import_file(
                        stream,
                        fmt,
                        store.analytics.import_lines,
                        on_rejected=rejected,
                        on_progress=lambda done: progress.update(task, completed=done),
                        max_line_bytes=max_line_bytes,
                        summary=summary,
                    )
            else:
                import_jobs.import_file_jobs(
                    stream,
                    fmt,
                    workers,
                    import_jobs.Target.of(store.client, settings.prefix, store.settings.tz),
                    on_rejected=rejected,
                    on_progress=lambda done: progress.update(task, completed=done),
                    # The progress bar's thread starts once the workers are forked.
                    started=lambda: stack.enter_context(progress),
                    max_line_bytes=max_line_bytes,
                    summary=summary,
                )
        except (KeyboardInterrupt, ta.TrainingAnalyticsError) as exc:
            progress.stop()
            if isinstance(exc, ta.TrainingAnalyticsError) and not (
                isinstance(exc, ta.StoreUnavailableError | import_jobs.WorkerError)
                or (workers > 1 and summary.lines)
            ):
                raise  # refused before anything was imported: the usual message
            # Say how far it got: importing the file again is safe (what was applied reports
            # unchanged), or the lines after this one can be imported alone.
            counts = (
                f"{summary.applied:,} applied, {summary.unchanged:,} unchanged, "
                f"{summary.rejected:,} rejected"
            )
            if not summary.last_line:
                done = "the first lines may be partly imported"
                if workers > 1 and summary.lines:
                    done += f" ({counts} so far)"
            elif workers == 1:
                done = (
                    f"lines 1-{summary.last_line:,} were imported ({counts}); lines after "
                    "that may be partly imported"
                )
            else:
                done = (
                    f"lines 1-{summary.last_line:,} were imported, and some after them "
                    f"({counts} in all, by {workers} workers); lines after that may be partly "
                    "imported"
                )
            err.print(
                f"[bold yellow]stopped:[/] {done}. Importing the same file again is safe: "
                "what was applied reports unchanged (a status change already made, as rejected).",
                highlight=False,
                soft_wrap=True,
            )
            if isinstance(exc, KeyboardInterrupt):
                raise typer.Exit(EXIT_INTERRUPTED) from None
            raise
        elapsed = time.monotonic() - started
    if as_json:
        out.print_json(
            data={
                "lines": summary.lines,
                "applied": summary.applied,
                "unchanged": summary.unchanged,
                "rejected": summary.rejected,
                "seconds": round(elapsed, 3),
            }
        )
    else:
        out.print(
            f"Imported {summary.lines:,} lines into {escape(store.where)} "
            f"({_describe_prefix(settings.prefix)}) in {elapsed:.1f} s: {summary.applied:,} "
            f"applied, {summary.unchanged:,} unchanged, {summary.rejected:,} rejected.",
            highlight=False,
            soft_wrap=True,
        )
    if summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _import_statements(settings: Settings, file: str, url: str | None, as_json: bool) -> None:
    """``import --format xapi``: statements through the xAPI mapping (docs/xapi.md)."""
    from .xapi.files import read_statements  # noqa: PLC0415 - only this format needs it

    with _friendly_errors(), contextlib.ExitStack() as stack:
        if file == "-":
            stream: Any = sys.stdin.buffer
        else:
            try:
                stream = stack.enter_context(open(file, "rb"))
            except OSError as exc:
                _fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_UNAVAILABLE)
        store = _open_store(settings, url)
        started = time.monotonic()
        try:
            summary = store.analytics.import_statements(read_statements(stream))
        except KeyboardInterrupt:
            err.print(
                "[bold yellow]stopped:[/] some statements may be imported; importing the same "
                "file again is safe (statement ids count once).",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        elapsed = time.monotonic() - started
    for refused in summary.rejected:
        err.print(
            f"[yellow]statement {refused.position}:[/] {refused.error}: "
            f"{escape(_one_line(refused.message))}",
            highlight=False,
            soft_wrap=True,
        )
    if as_json:
        out.print_json(data={**summary.model_dump(), "seconds": round(elapsed, 3)})
    else:
        out.print(
            f"Imported {summary.read:,} statements into {escape(store.where)} "
            f"({_describe_prefix(settings.prefix)}) in {elapsed:.1f} s: {summary.new:,} new, "
            f"{summary.duplicates:,} already recorded, {summary.ignored:,} mapping to no event, "
            f"{len(summary.rejected):,} rejected; {summary.applied:,} events applied, "
            f"{summary.unchanged:,} unchanged.",
            highlight=False,
            soft_wrap=True,
        )
    if summary.rejected:
        raise typer.Exit(EXIT_REJECTED)


@app.command("export")
def export(
    ctx: typer.Context,
    *,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (replaced only once the export is complete). Default: stdout.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Write every course and event that rebuilds the store's analytics, as JSON Lines.

    `export` then `import` into an empty store gives the same answers to every analytics call
    (docs/formats.md says what round-trips and what does not).
    """
    settings = _settings(ctx, prefix, tz)
    to_stdout = output is None or output == "-"
    with _friendly_errors(), contextlib.ExitStack() as stack:
        store = _open_store(settings, url)
        if to_stdout:
            sink: Any = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
            # Flushed, then detached rather than closed: stdout itself stays open.
            stack.callback(sink.detach)
            stack.callback(sink.flush)
        else:
            assert output is not None
            target = os.path.abspath(output)
            try:
                handle, temporary = tempfile.mkstemp(
                    prefix=".export-", suffix=".jsonl.part", dir=os.path.dirname(target)
                )
            except OSError as exc:
                _fail(f"cannot write next to {output}: {exc.strerror or exc}", EXIT_UNAVAILABLE)
            sink = stack.enter_context(open(handle, "w", encoding="utf-8", newline="\n"))
        progress = stack.enter_context(
            Progress(
                SpinnerColumn(),
                TextColumn("Exporting: {task.completed:,.0f} records"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not err.is_terminal,
            )
        )
        task = progress.add_task("export", total=None)
        started = time.monotonic()
        try:
            summary = fileformats.export_stream(
                store.analytics.export_page,
                sink,
                on_skipped=lambda reason: progress.console.print(
                    f"[yellow]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True
                ),
                on_progress=lambda done: progress.update(task, completed=done),
            )
            if not to_stdout:
                sink.flush()
                os.fsync(sink.fileno())
        except BaseException:
            if not to_stdout:
                sink.close()
                os.unlink(temporary)
            raise
    if not to_stdout:
        os.replace(temporary, target)
    elapsed = time.monotonic() - started
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in summary.by_kind.items())
    err.print(
        f"Exported {summary.records:,} records ({kinds or 'none'}) from {escape(store.where)} "
        f"({_describe_prefix(settings.prefix)}) to {escape(output or 'stdout')} "
        f"in {elapsed:.1f} s.",
        highlight=False,
        soft_wrap=True,
    )


#: ``migrate`` verified, and some answer differs between the two stores.
EXIT_DIFFERS = 3


def _migration_table(report: migrate_core.MigrationReport) -> Table:
    table = Table(title="Answers compared (source vs target)")
    table.add_column("Answer")
    table.add_column("Compared", justify="right")
    table.add_column("Equal", justify="right")
    table.add_column("Result")
    table.add_column("Note")
    colours = {"equal": "green", "differs": "bold red", "not compared": "yellow"}
    for row in report.comparisons:
        status = row.status
        table.add_row(
            escape(row.answer),
            f"{row.compared:,}",
            f"{row.equal:,}",
            f"[{colours[status]}]{status}[/]",
            escape(row.example or row.note),
        )
    return table


@app.command()
def migrate(
    ctx: typer.Context,
    *,
    from_url: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="URL",
            help="The store to copy: redis:// (one server, the older system's layout, "
            "reindexed or not) or redis+cluster:// (a cluster).",
            show_default=False,
        ),
    ],
    to_url: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="URL",
            help="The store to fill: empty, or holding an interrupted migration of the same "
            "source (it is finished).",
            show_default=False,
        ),
    ],
    from_prefix: Annotated[
        str | None, typer.Option("--from-prefix", help="The source's key prefix.")
    ] = None,
    to_prefix: Annotated[
        str | None,
        typer.Option("--to-prefix", help="The target's key prefix. Default: the source's."),
    ] = None,
    cert_buckets: Annotated[
        int,
        typer.Option(
            "--cert-buckets",
            min=1,
            help="Certificate buckets of a cluster target (fixed when it is created).",
        ),
    ] = DEFAULT_CERT_BUCKETS,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, help="Records read from the source per page.")
    ] = transfer.DEFAULT_PAGE_SIZE,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Compare every analytics answer afterwards."),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON on stdout.")
    ] = False,
) -> None:
    """Copy a store into another: one server into a cluster, or back (docs/architecture.md).

    Streams page by page through the target's write path, then reads every analytics answer
    on both stores and prints the comparison. Interrupted (Ctrl-C, killed) and run again with
    the same arguments, it goes on where it stopped; nothing is counted twice.

    Exit status: 0 when every answer compared is equal, 3 when some differ, 2 when a store
    cannot be reached or the arguments are refused (same store, non-empty target), 130 when
    interrupted.
    """
    base = _settings(ctx, None, None)
    source_settings = replace(base, prefix=base.prefix if from_prefix is None else from_prefix)
    target_prefix = source_settings.prefix if to_prefix is None else to_prefix
    with _friendly_errors():
        source = _open_store(source_settings, from_url)
        opened = _open_store(
            replace(source_settings, prefix=target_prefix, tz_given=False),
            to_url,
        )
        # The target's day buckets are the source's: its facade writes in the source's zone.
        target = ta.TrainingAnalytics(
            opened.client,
            prefix=target_prefix,
            tz=source.settings.tz,
            cert_buckets=cert_buckets,
        )
        same_place = source_settings.prefix == target_prefix and _database(
            source.client
        ) == _database(opened.client)
        name = f"{source.where} ({_describe_prefix(source_settings.prefix)})"
        progress = Progress(
            SpinnerColumn(),
            TextColumn("Copying: {task.fields[section]}"),
            BarColumn(),
            TextColumn("{task.fields[records]:,} records"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        )
        sections = transfer.SECTIONS
        task = progress.add_task(
            "migrate", total=len(sections), section="starting", records=0, rate=""
        )
        started = time.monotonic()
        copied_at_start: list[int] = []

        def on_page(checkpoint: migrate_core.MigrationCheckpoint) -> None:
            if not copied_at_start:
                copied_at_start.append(checkpoint.records)
            cursor = checkpoint.cursor
            done = len(sections) if cursor is None else sections.index(cursor.section)
            now = checkpoint.records - copied_at_start[0]
            rate = f"{now / max(time.monotonic() - started, 1e-9):,.0f}/s"
            progress.update(
                task,
                completed=done,
                section="verifying" if cursor is None else cursor.section.replace("_", " "),
                records=checkpoint.records,
                rate=rate,
            )

        steps = migrate_core.migration(
            name,
            page_size=page_size,
            verify=verify,
            same_place=same_place,
            on_page=on_page,
        )
        try:
            with progress:
                report = migrate_core.run_migration(source.analytics, target, steps)
        except KeyboardInterrupt:
            _interrupted(
                "migrate stopped. Run the same command again to finish: it goes on from the "
                "last page the target acknowledged, and nothing is counted twice."
            )
        elapsed = time.monotonic() - started
    checkpoint = report.checkpoint
    if as_json:
        out.print_json(
            data={
                **report.model_dump(mode="json"),
                "equal": report.equal,
                "seconds": round(elapsed, 3),
            }
        )
    else:
        resumed = f" (resumed; run {checkpoint.runs})" if report.resumed else ""
        out.print(
            f"Migrated {escape(name)} into {escape(opened.where)} "
            f"({_describe_prefix(target_prefix)}){resumed}: {checkpoint.records:,} records, "
            f"{report.copied_now:,} copied by this run, in {elapsed:.1f} s; "
            f"{checkpoint.applied:,} applied, {checkpoint.unchanged:,} unchanged, "
            f"{checkpoint.rejected:,} rejected, {checkpoint.skipped:,} skipped.",
            highlight=False,
            soft_wrap=True,
        )
        for line in report.rejections + report.skipped:
            err.print(f"[yellow]not copied:[/] {escape(_one_line(line))}", highlight=False)
        if report.comparisons:
            out.print(_migration_table(report))
    if not report.equal:
        raise typer.Exit(EXIT_DIFFERS)


def _database(client: Any) -> int:
    if isinstance(client, redis.cluster.RedisCluster):
        return 0
    return int(client.connection_pool.connection_kwargs.get("db", 0) or 0)


# --- the HTTP service: serve, keys ---------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    *,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (beyond loopback: keys needed).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Load the demo programme first if the store has no data."),
    ] = False,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin", help="An origin allowed by CORS (repeatable). Default: none."
        ),
    ] = None,
    max_body_mib: Annotated[
        int, typer.Option("--max-body-mib", min=1, help="Largest request body, in MiB.")
    ] = 16,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Most events in one POST /events.")
    ] = 10_000,
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", min=1, help="Requests a worker serves at once.")
    ] = 256,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level.")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log each request's line.")
    ] = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port", min=1, max=65535, help="Also serve /metrics here, without a key."
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address of the --metrics-port listener.")
    ] = "127.0.0.1",
    xapi_retention_days: Annotated[
        float,
        typer.Option(
            "--xapi-retention-days", min=0.001, help="How long xAPI statement ids are kept."
        ),
    ] = 90,
    xapi_course_pattern: Annotated[
        str | None,
        typer.Option(
            "--xapi-course-pattern",
            help="Regex: xAPI activity IRIs matching it are courses (group 'id': the id).",
        ),
    ] = None,
    xapi_module_pattern: Annotated[
        str | None,
        typer.Option(
            "--xapi-module-pattern",
            help="Regex: xAPI activity IRIs matching it are modules (group 'id': the id).",
        ),
    ] = None,
    xapi_activity_id: Annotated[
        str,
        typer.Option(
            "--xapi-activity-id", help="last-segment (of the activity IRI) or iri (all of it)."
        ),
    ] = "last-segment",
    xapi_learner_id: Annotated[
        str,
        typer.Option(
            "--xapi-learner-id",
            help="Actor identifiers that give the learner id, in order (docs/xapi.md).",
        ),
    ] = "account,mbox,mbox_sha1sum,openid",
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Serve the HTTP API (JSON under /api/v1, docs at /docs) until SIGINT or SIGTERM."""
    # The web stack is imported by this command only.
    from .server import embedded_server_url  # noqa: PLC0415
    from .service import ServiceSettings, runner  # noqa: PLC0415
    from .service.routes import xapi as xapi_routes  # noqa: PLC0415

    settings = _settings(ctx, prefix, tz)
    with _friendly_errors():
        store = _open_store(settings, url)
        # Workers reach the embedded server through its socket, which this process keeps up.
        resolved = url or os.environ.get(REDIS_URL_ENV) or embedded_server_url()
        if demo and _holds_training_data(store):
            err.print("The store holds training data already: --demo loads nothing.")
        elif demo:
            with err.status("Loading the demo programme…"):
                load_demo(store.analytics)
        new_key = None
        if not store.analytics.has_api_keys():
            if not runner.is_loopback(host):
                _fail(
                    f"refusing to listen on {host}: no API key exists in this store, so the API "
                    "would be open to the network. Create one first with "
                    "`training-analytics keys create --role admin`.",
                    EXIT_REFUSED,
                )
            new_key = store.analytics.create_api_key(_key_name("admin"), "admin")
    try:
        # Validated from text: the xAPI choices are checked (and named in errors) by the model.
        service_settings = ServiceSettings.model_validate(
            {
                "redis_url": resolved,
                "prefix": settings.prefix,
                # The zone the store's day buckets were written in, unless --tz said otherwise
                # (then _open_store refused a different one).
                "tz": store.settings.tz,
                "cors_origins": cors_origin or [],
                "max_body_bytes": max_body_mib * 1024 * 1024,
                "max_batch_events": max_batch,
                "max_concurrent_requests": max_concurrency,
                "xapi_statement_retention_days": xapi_retention_days,
                "xapi_course_pattern": xapi_course_pattern,
                "xapi_module_pattern": xapi_module_pattern,
                "xapi_activity_id": xapi_activity_id,
                "xapi_learner_id": [p.strip() for p in xapi_learner_id.split(",") if p.strip()],
            }
        )
        xapi_routes.mapping_rules(service_settings)  # a pattern that does not compile stops here
    except (ValidationError, ta.InvalidInputError) as exc:
        message = " ".join(str(exc).split())
        raise typer.BadParameter(message, param_hint="--xapi-*") from None
    listen = runner.Listen(
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    base = runner.base_url(listen)
    out.print(f"Dashboard: {base}/", highlight=False, soft_wrap=True)
    out.print(f"Serving {base}/api/v1 (docs: {base}/docs)", highlight=False, soft_wrap=True)
    if new_key is not None:
        out.print(
            f"No API key existed: created admin key {new_key.info.name!r}, shown only now:\n"
            f"{new_key.key}",
            highlight=False,
            soft_wrap=True,
        )
    sys.stdout.flush()
    runner.run(service_settings, listen)


def _key_name(role: str) -> str:
    return f"{role}-{os.urandom(3).hex()}"


keys_app = typer.Typer(
    help="API keys of the HTTP service (kept hashed in the store).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    *,
    role: Annotated[str, typer.Option("--role", help="viewer, ingest or admin.")],
    name: Annotated[
        str | None, typer.Option("--name", help="A name to list and revoke it by.")
    ] = None,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Create a key and print it alone on stdout (the only time it is shown)."""
    settings = _settings(ctx, prefix, tz)
    with _friendly_errors():
        store = _open_store(settings, url)
        created = store.analytics.create_api_key(name or _key_name(role), role)
    sys.stdout.write(created.key + "\n")
    err.print(f"Created {created.info.role} key {escape(created.info.name)!r}.", highlight=False)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    *,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Names, roles, creation and last use of every key (never the keys)."""
    settings = _settings(ctx, prefix, tz)
    with _friendly_errors():
        store = _open_store(settings, url)
        keys = store.analytics.list_api_keys()
    table = Table("Name", "Role", "Created", "Last used")
    for info in keys:
        table.add_row(escape(info.name), info.role, info.created_at, info.last_used_at or "never")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The key's name.")],
    *,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Revoke a key; every worker refuses it from the next request."""
    settings = _settings(ctx, prefix, tz)
    with _friendly_errors():
        store = _open_store(settings, url)
        store.analytics.revoke_api_key(name)
    err.print(f"Revoked key {escape(name)!r}.", highlight=False)


def main() -> None:
    """Console-script entry point (``training-analytics``)."""
    app(prog_name="training-analytics")
