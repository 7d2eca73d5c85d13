"""The ``training-analytics`` command line: demo, report, reindex, bench.

Every command works on the store that :func:`training_analytics.connect` resolves: ``--url``, else
``REDIS_URL``, else the embedded Valkey server (started on first use, persistent, shared by every
process on this machine that uses the same data directory). So ``training-analytics demo``
followed by ``training-analytics report`` shows the same data, with no Redis installed.

Tables go to stdout, progress and messages to stderr, so ``report --json`` can be piped. Expected
failures (server unreachable, store not indexed, bad input) print one clear message and exit with
status 2 (1 for a refusal such as demo data that would mix with existing data); a traceback means
a bug.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

import training_analytics as ta

from ._time import parse_instant
from .demo import DEFAULT_LEARNERS, DEFAULT_SEED, DEMO_COURSE_IDS, load_demo
from .errors import EmbeddedServerError
from .server import DATA_DIR_ENV, REDIS_URL_ENV, default_data_dir, ping

__all__ = ["app", "main"]

app = typer.Typer(
    name="training-analytics",
    help=(
        "Training analytics on Redis or Valkey: enrolments, drop-off, daily series and "
        f"certificates. Uses --url, else ${REDIS_URL_ENV}, else an embedded Valkey server "
        f"(data in ${DATA_DIR_ENV} or the user data directory)."
    ),
    no_args_is_help=True,
    add_completion=False,
    # Locals could include a URL with a password; tracebacks are for bugs only anyway.
    pretty_exceptions_show_locals=False,
)

out = Console()
err = Console(stderr=True)

EXIT_REFUSED = 1
EXIT_UNAVAILABLE = 2

#: Days in the report's daily series (ending today in the configured time zone).
SERIES_DAYS = 14


# --- options shared by the commands ------------------------------------------------------------


@dataclass
class Settings:
    prefix: str = ""
    tz: str = "UTC"


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"Redis/Valkey URL. Default: ${REDIS_URL_ENV}, else the embedded server.",
        show_default=False,
    ),
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        help="Key prefix (tenant namespace), e.g. 'tenant-a:'. Default: none.",
        show_default=False,
    ),
]
TzOption = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="Time zone of day buckets, e.g. Europe/Madrid. Default: UTC.",
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


@app.callback()
def _global_options(
    ctx: typer.Context,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Key prefix (tenant namespace), e.g. 'tenant-a:'.")
    ] = "",
    tz: Annotated[
        str, typer.Option("--tz", help="Time zone of day buckets, e.g. Europe/Madrid.")
    ] = "UTC",
) -> None:
    ctx.obj = Settings(prefix=prefix, tz=_check_tz(tz))


def _settings(ctx: typer.Context, prefix: str | None, tz: str | None) -> Settings:
    """The global options, overridden by the same options given after the command name."""
    base = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    return Settings(
        prefix=base.prefix if prefix is None else prefix,
        tz=base.tz if tz is None else _check_tz(tz),
    )


# --- errors ------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextlib.contextmanager
def _friendly_errors() -> Iterator[None]:
    """Expected failures become one message and an exit status, never a traceback."""
    try:
        yield
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
    client: redis.Redis
    analytics: ta.TrainingAnalytics
    settings: Settings
    where: str
    """Human description of the server, without credentials."""
    embedded: bool


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


def _open_store(settings: Settings, url: str | None) -> Store:
    """Connect (starting the embedded server if that is what resolves) and check it answers."""
    configured = url or os.environ.get(REDIS_URL_ENV) or None
    if configured is None:
        with err.status("Starting the embedded Valkey server…"):
            client = ta.connect(None)
        where = f"embedded Valkey (data in {default_data_dir()})"
    else:
        where = _redact(configured)
        try:
            client = ta.connect(configured)
        except ValueError as exc:
            # redis-py parses the URL here (scheme, port range, query options).
            raise ta.InvalidInputError(f"invalid server URL {where!r}: {exc}") from exc
    ping(client)
    analytics = ta.TrainingAnalytics(client, prefix=settings.prefix, tz=settings.tz)
    return Store(client, analytics, settings, where, embedded=configured is None)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _training_patterns(prefix: str) -> list[str]:
    """SCAN patterns of every key the library (and the older system) writes under ``prefix``."""
    escaped = _glob_escape(prefix)
    return [f"{escaped}training:*", f"{escaped}cache:training:*"]


def _holds_training_data(store: Store) -> bool:
    k = store.analytics.keys
    # The catalogue, the certificates, the event series and our own marker: any one of them
    # means there is data a demo would mix with. EXISTS on a few keys, not a SCAN of the store.
    found = store.client.exists(
        k.all_training_courses(),
        k.all_training_certifications(),
        k.enrollment_timeseries(),
        k.completion_timeseries(),
        k.index_marker(),
    )
    return bool(found)


def _holds_only_demo_data(store: Store) -> bool:
    """Whether the catalogue lists demo courses and nothing else (a previous demo's data)."""
    ids = store.client.zrange(store.analytics.keys.all_training_courses(), 0, -1)
    return bool(ids) and {str(i) for i in ids} <= DEMO_COURSE_IDS


def _clear_training_data(store: Store) -> int:
    """UNLINK every training key under the prefix; returns how many were removed."""
    removed = 0
    with err.status("Removing the existing training data…") as status:
        for pattern in _training_patterns(store.settings.prefix):
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

    def to_json(self) -> dict[str, Any]:
        return {
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
    analytics: ta.TrainingAnalytics, *, course_id: str | None = None, today: date | None = None
) -> Report:
    """Everything the report shows; ``course_id`` narrows the course section and the series."""
    overview = analytics.get_training_overview_metrics()
    courses = analytics.get_all_training_courses()
    if course_id is not None:
        courses = [c for c in courses if c.id == course_id]
        if not courses:
            raise ta.CourseNotFoundError(f"no course with id {course_id!r} in the catalogue")
    reports = [CourseReport(c, analytics.get_course_detailed_analytics(c.id)) for c in courses]
    end = today or datetime.now(analytics.context.tz).date()
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
    )


def _pct(value: float) -> str:
    return f"{value:.1f}%"


def _hours(value: float) -> str:
    if value >= 48:
        return f"{value:,.1f} h ({value / 24:.1f} days)"
    return f"{value:,.1f} h"


def _bar(rate: float, width: int = 20) -> str:
    filled = round(max(0.0, min(rate, 100.0)) / 100 * width)
    colour = "green" if rate < 15 else "yellow" if rate < 30 else "red"
    return f"[{colour}]{'█' * filled}[/][dim]{'·' * (width - filled)}[/]"


def _overview_table(report: Report) -> Table:
    o = report.overview
    table = Table(title="Programme overview", title_justify="left", show_header=False)
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    table.add_row("Courses", f"{o.total_courses:,}")
    table.add_row("  published", f"{o.published_courses:,}")
    table.add_row("  drafts", f"{o.draft_courses:,}")
    table.add_row("Enrolments (all courses)", f"{o.total_enrollments:,}")
    table.add_row("Average completion rate (published courses)", _pct(o.average_completion_rate))
    table.add_row("Certificates issued", f"{o.total_certifications:,}")
    return table


def _courses_table(report: Report) -> Table:
    table = Table(
        title="Courses",
        title_justify="left",
        caption=(
            "Rate: completed / enrolled. Score: mean overall score. Days: mean time from "
            "first start to completion."
        ),
        caption_justify="left",
    )
    table.add_column("Course (id)", ratio=1)
    table.add_column("Enrolled", justify="right")
    table.add_column("Completed", justify="right")
    table.add_column("Rate", justify="right")
    table.add_column("Score", justify="right")
    table.add_column("Days", justify="right")
    for c in report.courses:
        a = c.analytics
        title = escape(ta.get_localized_name(c.course.title, c.course.id))
        if not c.course.is_published:
            title += " [yellow](draft)[/]"
        table.add_row(
            f"{title}\n[dim]{escape(c.course.id)}[/]",
            f"{a.enrollments:,}",
            f"{a.completions:,}",
            _pct(a.completion_rate) if a.enrollments else "–",
            str(a.average_score) if a.average_score else "–",
            # The library answers in hours (as the seed); courses take days, which read better.
            f"{a.average_time_to_complete / 24:.1f}" if a.average_time_to_complete else "–",
        )
    return table


def _dropoff_table(course: CourseReport) -> Table:
    title = escape(ta.get_localized_name(course.course.title, course.course.id))
    table = Table(
        title=f"Drop-off by module: {title}",
        title_justify="left",
        caption="Learners who started the module and have not completed it",
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("Module")
    table.add_column("Drop-off", justify="right")
    table.add_column("", no_wrap=True)
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
    table.add_row("Claim rate", _pct(c.claim_rate))
    table.add_row("Average time to claim", _hours(c.average_claim_time_hours))
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


def print_report(report: Report, store: Store) -> None:
    out.print(
        f"[dim]Store: {escape(store.where)}; {_describe_prefix(store.settings.prefix)}; "
        f"days in {escape(store.settings.tz)}[/]",
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
    out.print(_courses_table(report))
    out.print()
    hidden = 0
    for course in report.courses:
        if course.analytics.enrollments == 0 or not course.analytics.dropoff_rates:
            hidden += 1
            continue
        out.print(_dropoff_table(course))
        out.print()
    if hidden and report.course_filter is None:
        out.print(f"[dim]{hidden} course(s) without learners have no drop-off to show.[/]\n")
    if report.course_filter is None:
        out.print(_credentials_table(report))
        out.print()
    out.print(_series_table(report, store.settings.tz))


def _emit_json(report: Report) -> None:
    # Plain stdout, not Rich: no wrapping or highlighting in what scripts parse.
    sys.stdout.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")


# --- commands ----------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    *,
    learners: Annotated[
        int, typer.Option("--learners", "-n", min=1, help="Number of learners to generate.")
    ] = DEFAULT_LEARNERS,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed (same seed, same programme).")
    ] = DEFAULT_SEED,
    url: UrlOption = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Delete the training data already there (under the prefix) first. Needed "
            "unless the store is the embedded one and holds only an earlier demo.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="End of the generated activity (ISO-8601 with a zone); default: the current "
            "time. With --seed it makes a demo reproducible.",
        ),
    ] = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Load a realistic generated programme (~90 days of activity), then print the report."""
    settings = _settings(ctx, prefix, tz)
    try:
        end = datetime.now(UTC) if now is None else parse_instant(now, "--now")
    except ta.InvalidDateError as exc:
        raise typer.BadParameter(str(exc), param_hint="--now") from exc
    with _friendly_errors():
        store = _open_store(settings, url)
        if _holds_training_data(store):
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
            removed = _clear_training_data(store)
            err.print(
                f"Cleared the previous training data ({removed:,} keys) from {escape(scope)}."
            )
        started = time.monotonic()
        with _progress() as progress:
            # The bar pulses while the programme is generated (a few seconds for thousands of
            # learners), then counts events as load_demo records them chunk by chunk.
            task = progress.add_task(f"Generating {learners:,} learners", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, description="Recording events", completed=done, total=total)

            summary = load_demo(
                store.analytics,
                learners=learners,
                seed=seed,
                now=end,
                progress=advance,
            )
        elapsed = time.monotonic() - started
        err.print(
            f"Loaded {summary.courses} courses, {learners:,} learners and {summary.events:,} "
            f"events in {elapsed:.1f} s: {summary.result.applied:,} applied, "
            f"{summary.result.unchanged:,} unchanged, {len(summary.result.rejected):,} rejected.",
            highlight=False,
        )
        for rejected in summary.result.rejected[:5]:
            err.print(
                f"[yellow]rejected event {rejected.index}:[/] {rejected.error}: "
                f"{escape(rejected.message)}"
            )
        report = collect_report(store.analytics)
        if as_json:
            _emit_json(report)
        else:
            out.print()
            print_report(report, store)


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
        typer.Option("--course", help="Only this course (id) in the course section and series."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Print the overview, per-course analytics with drop-off, certificates and recent days."""
    settings = _settings(ctx, prefix, tz)
    with _friendly_errors():
        store = _open_store(settings, url)
        data = collect_report(store.analytics, course_id=course)
        if as_json:
            _emit_json(data)
        else:
            print_report(data, store)


@app.command()
def reindex(
    ctx: typer.Context,
    *,
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Rebuild this library's derived keys from the base keys (after the older system wrote)."""
    settings = _settings(ctx, prefix, tz)
    with _friendly_errors():
        store = _open_store(settings, url)
        started = time.monotonic()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("Reindexing", total=None)

            def advance(stage: str, done: int) -> None:
                progress.update(task, description=f"Reindexing: {stage} ({done:,})")

            result = store.analytics.reindex(progress=advance)
        elapsed = time.monotonic() - started
        out.print(
            f"Reindexed {escape(store.where)} ({_describe_prefix(settings.prefix)}) "
            f"in {elapsed:.1f} s.",
            highlight=False,
        )
        table = Table(show_header=False)
        table.add_column("What")
        table.add_column("Count", justify="right")
        for name, value in result.model_dump(by_alias=False).items():
            table.add_row(name.replace("_", " ").capitalize(), _report_value(value))
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


BenchMain = Callable[[list[str] | None], int]


def _benchmarks_main() -> BenchMain | None:
    """``main`` of the ``benchmarks`` package (installed with this one), if it can be imported."""
    for name in ("benchmarks", "benchmarks.__main__"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name in {"benchmarks", "benchmarks.__main__"}:
                continue  # not there: try the next place, then explain
            raise  # the benchmarks are there but need something missing: show what
        entry = getattr(module, "main", None)
        if callable(entry):
            found: BenchMain = entry
            return found
    return None


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmarks (arguments go to them; try `bench --help`)."""
    try:
        entry = _benchmarks_main()
    except ImportError as exc:
        _fail(f"the benchmarks cannot be imported: {exc}", EXIT_REFUSED)
    if entry is None:
        _fail(
            "the benchmarks are not installed here. Reinstall the package (`pip install "
            "'training-analytics[bench]'`), or run `python -m benchmarks [ARGS]` in the root "
            "of a checkout.",
            EXIT_REFUSED,
        )
    code = entry(list(ctx.args))
    raise typer.Exit(code or 0)


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
    url: UrlOption = None,
    prefix: PrefixOption = None,
    tz: TzOption = None,
) -> None:
    """Serve the HTTP API (JSON under /api/v1, docs at /docs) until SIGINT or SIGTERM."""
    # The web stack is imported by this command only.
    from .server import embedded_server_url  # noqa: PLC0415
    from .service import ServiceSettings, runner  # noqa: PLC0415

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
    service_settings = ServiceSettings(
        redis_url=resolved,
        prefix=settings.prefix,
        tz=settings.tz,
        cors_origins=cors_origin or [],
        max_body_bytes=max_body_mib * 1024 * 1024,
        max_batch_events=max_batch,
        max_concurrent_requests=max_concurrency,
    )
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
