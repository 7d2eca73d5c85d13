"""A dashboard left open while events keep arriving: does the page leak, does it flood the server?

``python -m training_analytics.bench.dashboard_soak --minutes 60`` starts ``training-analytics
serve --demo`` on a loopback port (embedded Valkey in a temporary data directory), signs in
Debian's headless chromium (driven by Playwright, which never downloads a browser) with the key
``serve`` prints, then posts one enrolment through the API every ``--interval`` seconds for the
whole run. Each minute it forces a garbage collection in the page and records, through the
DevTools protocol, the JS heap in use, DOM nodes and event listeners, and how many requests the
page sent in that minute. The figures go to stdout and, with ``--json``, to a file.

A page that leaks shows a heap or node count that keeps growing; one that floods shows requests
per minute that grow with the run or with the write rate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(p).exists()), None
)
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(data_dir: str, port: int) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "TRAINING_ANALYTICS_DATA_DIR": data_dir}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "training_analytics", "serve", "--demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 180
    key = ""
    for line in process.stdout:
        found = re.search(r"\bta_[A-Za-z0-9_-]{43}\b", line)
        if found:
            key = found.group(0)
        if "Uvicorn running" in line or "Application startup complete" in line:
            break
        if time.monotonic() > deadline:
            break
    if not key:
        process.kill()
        raise SystemExit("serve --demo printed no API key (a store with keys already?)")
    # Keep reading its output so that the pipe never fills.
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
    return process, key


def _writer(base: str, key: str, interval: float, stop: threading.Event, sent: list[int]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        n = 0
        while not stop.wait(interval):
            n += 1
            event = {"kind": "enrollment", "userId": f"soak-{n}", "courseId": "sales-fundamentals"}
            if client.post("/api/v1/events", json=[event]).status_code == 200:
                sent[0] += 1


def soak(minutes: float, interval: float) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional dependency

    if CHROMIUM is None:
        raise SystemExit("Debian's chromium is not installed (apt-get install chromium)")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        server, key = _serve(data_dir, port)
        stop = threading.Event()
        sent = [0]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                requests = [0]
                page.on("request", lambda _request: requests.__setitem__(0, requests[0] + 1))
                page.goto(base + "/")
                page.fill("#api-key", key)
                page.click("#sign-in-form button[type=submit]")
                page.wait_for_selector("text=Live", timeout=30_000)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                writer = threading.Thread(
                    target=_writer, args=(base, key, interval, stop, sent), daemon=True
                )
                writer.start()
                started = time.monotonic()
                for minute in range(1, int(minutes) + 1):
                    before = requests[0]
                    remaining = started + minute * 60 - time.monotonic()
                    if remaining > 0:
                        page.wait_for_timeout(remaining * 1000)
                    cdp.send("HeapProfiler.collectGarbage")
                    metrics = {
                        m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
                    }
                    sample = {
                        "minute": minute,
                        "js_heap_mb": round(metrics["JSHeapUsedSize"] / 1e6, 2),
                        "dom_nodes": int(metrics["Nodes"]),
                        "listeners": int(metrics["JSEventListeners"]),
                        "requests_in_minute": requests[0] - before,
                        "events_sent": sent[0],
                        "live": page.locator("text=Live").count() > 0,
                    }
                    samples.append(sample)
                    print(json.dumps(sample), flush=True)
                stop.set()
                writer.join(timeout=15)
                browser.close()
        finally:
            stop.set()
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training_analytics.bench.dashboard_soak")
    parser.add_argument("--minutes", type=float, default=60, help="length of the run")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between posted events")
    parser.add_argument("--json", type=Path, help="write the samples here")
    args = parser.parse_args(argv)
    samples = soak(args.minutes, args.interval)
    if args.json:
        args.json.write_text(json.dumps(samples, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
