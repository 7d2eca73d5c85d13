"""Presenting a run: the Rich tables, and the log-log chart of latency against size."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .results import SYSTEMS, WORKLOADS, Measurement, Run, advantage


def _show(m: Measurement | None) -> str:
    if m is None:
        return "-"
    if m.kind == "latency":
        ms = m.value * 1e3
        return f"{ms:,.3f} ms" if ms < 10 else f"{ms:,.1f} ms"
    if m.kind == "throughput":
        return f"{m.value:,.0f}/s"
    return f"{m.value:,.0f} B"


def _times(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}x" if value >= 100 else f"{value:,.2f}x"


def results_table(run: Run) -> Table:
    meta = run.meta
    table = Table(
        title=(
            f"training-analytics benchmark ({meta.get('mode', '?')}): "
            f"{meta.get('server', '?')}, {meta.get('cores', '?')} cores, "
            f"medians of {meta.get('repeat', '?')} repetitions "
            f"({meta.get('slow_repeat', '?')} for calls over ~1 s and for writes)"
        ),
        caption=escape(f"PostgreSQL: {meta.get('postgres', '?')}"),
        title_justify="left",
    )
    table.add_column("workload")
    table.add_column("size", justify="right")
    for system, title in zip(
        SYSTEMS, ("library", "seed", "PostgreSQL", "server ceiling"), strict=True
    ):
        if any(m.system == system for m in run.measurements):
            table.add_column(title, justify="right")
    table.add_column("lib vs seed", justify="right")
    table.add_column("lib vs PG", justify="right")
    shown = [s for s in SYSTEMS if any(m.system == s for m in run.measurements)]
    for workload, (title, unit) in WORKLOADS.items():
        for size in run.sizes(workload):
            cells = [_show(run.find(workload, s, size)) for s in shown]
            vs_seed = advantage(run, workload, "seed", size)
            if workload == "memory" and vs_seed is not None:
                # Memory is reported as ours over theirs: the target is a ceiling (<= 1.3x).
                seed_column = f"{1 / vs_seed:.3f}x size"
            else:
                seed_column = _times(vs_seed)
            ceiling = run.find(workload, "ceiling", size)
            ours = run.find(workload, "library", size)
            if ceiling is not None and ours is not None:
                cells[shown.index("ceiling")] += f" (lib: {ours.value / ceiling.value:.0%})"
            table.add_row(
                title,
                f"{size:,} {unit}",
                *cells,
                seed_column,
                _times(advantage(run, workload, "postgres", size)),
            )
    return table


def targets_table(run: Run) -> Table:
    table = Table(title="Targets (issue 4)", title_justify="left")
    table.add_column("target")
    table.add_column("required", justify="right")
    table.add_column("measured", justify="right")
    table.add_column("met")
    for t in run.targets:
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "[dim]n/a[/]"}[t.met]
        table.add_row(t.name, t.required, t.measured, verdict)
    return table


def server_tool_ceiling(run: Run) -> str | None:
    """The server's own ceiling (redis-benchmark) and bulk ingest's share of it, when measured.

    The table's ceiling column is what one Python process pushes through redis-py; this is what
    the server accepts from a C client. An event is several operations, so its share reads low.
    """
    tool = run.meta.get("benchmark_tool") or {}
    rates = [tool.get(f"{c}_ops_per_second") for c in ("sadd", "incr")]
    if not all(isinstance(r, int | float) for r in rates):
        return None
    ceiling = min(float(r) for r in rates if r is not None)
    shares = []
    for workload in ("bulk_ingest", "bulk_ingest_stream"):
        for size in run.sizes(workload)[-1:]:
            ours = run.find(workload, "library", size)
            if ours is not None:
                title = WORKLOADS[workload][0]
                shares.append(f"{title.lower()} {ours.value:,.0f}/s = {ours.value / ceiling:.0%}")
    return (
        f"Server ceiling from {tool.get('tool')} ({tool.get('options')}): "
        f"{ceiling:,.0f} ops/s (the lower of SADD and INCR); " + "; ".join(shares)
    )


def print_run(run: Run, console: Console) -> None:
    if "cluster" in run.meta:
        # The cluster phase's own tables (also for --from-json of a saved run).
        from .cluster import tables  # noqa: PLC0415 - its imports are the benchmark's heaviest

        for table in tables(run.meta["cluster"]):
            console.print(table)
    console.print(results_table(run))
    line = server_tool_ceiling(run)
    if line:
        console.print(line)
    console.print(targets_table(run))


def markdown(run: Run) -> str:
    """The results as a Markdown table, for docs/performance.md."""
    shown = [s for s in SYSTEMS if any(m.system == s for m in run.measurements)]
    names = {
        "library": "library",
        "seed": "seed",
        "postgres": "PostgreSQL",
        "ceiling": "server ceiling",
    }
    header = ["workload", "size", *(names[s] for s in shown), "lib vs seed", "lib vs PG"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for workload, (title, unit) in WORKLOADS.items():
        for size in run.sizes(workload):
            cells = [_show(run.find(workload, s, size)) for s in shown]
            ceiling, ours = run.find(workload, "ceiling", size), run.find(workload, "library", size)
            if ceiling is not None and ours is not None:
                cells[shown.index("ceiling")] += f" (lib: {ours.value / ceiling.value:.0%})"
            vs_seed = advantage(run, workload, "seed", size)
            seed_cell = (
                f"{1 / vs_seed:.3f}x size" if workload == "memory" and vs_seed else _times(vs_seed)
            )
            lines.append(
                "| "
                + " | ".join(
                    [
                        title,
                        f"{size:,} {unit}",
                        *cells,
                        seed_cell,
                        _times(advantage(run, workload, "postgres", size)),
                    ]
                )
                + " |"
            )
    line = server_tool_ceiling(run)
    if line:
        lines += ["", line]
    lines += ["", "| target | required | measured | met |", "|---|---|---|---|"]
    for t in run.targets:
        verdict = {True: "met", False: "**missed**", None: "n/a"}[t.met]
        lines.append(f"| {t.name} | {t.required} | {t.measured} | {verdict} |")
    return "\n".join(lines) + "\n"


def chart(run: Run, path: Path) -> None:
    """Log-log latency against size: course analytics and credential analytics, three systems."""
    # Imported here: matplotlib takes a second to import and only --chart needs it.
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [
        ("course_analytics", "Course detailed analytics", "enrolled learners"),
        ("credential_analytics", "Credential claim analytics", "certificates"),
    ]
    styles = {
        "library": ("this library", "o-", "tab:green"),
        "seed": ("seed's algorithm", "s--", "tab:red"),
        "postgres": ("PostgreSQL", "^-.", "tab:blue"),
    }
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for axis, (workload, title, unit) in zip(axes, panels, strict=True):
        for system, (label, style, colour) in styles.items():
            points = [
                (m.size, m.value * 1e3)
                for m in run.measurements
                if m.workload == workload and m.system == system
            ]
            if points:
                points.sort()
                axis.plot(
                    [p[0] for p in points], [p[1] for p in points], style, color=colour, label=label
                )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel(unit)
        axis.set_ylabel("median latency per call (ms)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    meta = run.meta
    fig.suptitle(
        f"{meta.get('server', '')}, {meta.get('cores', '?')} cores, {meta.get('mode', '')} run"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
