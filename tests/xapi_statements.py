"""Statements in the shapes real producers send, written for these tests from the public
specifications (xAPI 1.0.3/2.0, cmi5 Quartz) and the facts of Open edX's event-routing-backends
output (verbs, activity types, actor account, course IRIs holding the course key), not copied
from any fixture.

Each builder returns the statement as a JSON-ready dict.
"""

from __future__ import annotations

from typing import Any

LMS = "https://lms.example.org"
EDX_COURSE_KEY = "course-v1:edX+DemoX+Demo_Course"
EDX_COURSE_IRI = f"{LMS}/course/{EDX_COURSE_KEY}"
#: The course id the default rule gives: the last path segment, ':' percent-encoded.
EDX_COURSE_ID = "course-v1%3AedX+DemoX+Demo_Course"
EDX_LEARNERS = (
    "32e08e30-f8ae-4ce2-94a8-c2bfe38a70cb",
    "5c2b3e1a-9f10-4a53-8f42-0e6a8b7d1c11",
    "b7f0c6d2-1d4e-4f0b-9c3a-7a2e5d8f9e01",
)
ERB_EXTENSIONS = {
    "https://w3id.org/openedx/extensions/transformer-version": "event-routing-backends@9.3.0",
    "https://w3id.org/openedx/extensions/session-id": "056aca2a9fb5d8b1a4e4b8f7c1d3e5a9",
}

ADL = "http://adlnet.gov/expapi"
CMI5 = "https://w3id.org/xapi/cmi5"
CMI5_COURSE_IRI = "https://lms.example.org/cmi5/courses/safety-101"
CMI5_AU_IRI = "https://lms.example.org/cmi5/courses/safety-101/au/ppe-basics"
CMI5_PUBLISHER_AU = "https://content.example.com/safety/ppe-basics"
CMI5_REGISTRATION = "ec531277-b57b-4c15-8d91-d292c5b2b8f7"
CMI5_SESSION = "458240298378231"


def _edx_actor(learner: str) -> dict[str, Any]:
    return {"objectType": "Agent", "account": {"homePage": LMS, "name": learner}}


def _edx_course(name: str = "Demonstration Course") -> dict[str, Any]:
    return {
        "id": EDX_COURSE_IRI,
        "objectType": "Activity",
        "definition": {"type": f"{ADL}/activities/course", "name": {"en-US": name}},
    }


def edx_enrollment(statement_id: str, learner: str, timestamp: str) -> dict[str, Any]:
    """``edx.course.enrollment.activated`` as event-routing-backends sends it."""
    course = _edx_course()
    course["definition"]["extensions"] = {"https://w3id.org/xapi/acrossx/extensions/type": "audit"}
    return {
        "id": statement_id,
        "actor": _edx_actor(learner),
        "verb": {"id": f"{ADL}/verbs/registered", "display": {"en": "registered"}},
        "object": course,
        "context": {"extensions": dict(ERB_EXTENSIONS)},
        "timestamp": timestamp,
        "version": "1.0.3",
    }


def edx_unenrollment(statement_id: str, learner: str, timestamp: str) -> dict[str, Any]:
    """``edx.course.enrollment.deactivated``."""
    statement = edx_enrollment(statement_id, learner, timestamp)
    statement["verb"] = {
        "id": "http://id.tincanapi.com/verb/unregistered",
        "display": {"en": "unregistered"},
    }
    return statement


def edx_course_passed(statement_id: str, learner: str, timestamp: str) -> dict[str, Any]:
    """``edx.course.grade.passed.first_time``: the learner passed the course."""
    return {
        "id": statement_id,
        "actor": _edx_actor(learner),
        "verb": {"id": f"{ADL}/verbs/passed", "display": {"en": "passed"}},
        "object": _edx_course(),
        "context": {"extensions": dict(ERB_EXTENSIONS)},
        "timestamp": timestamp,
        "version": "1.0.3",
    }


def edx_problem_graded(statement_id: str, learner: str, timestamp: str) -> dict[str, Any]:
    """``edx.grades.problem.submitted``: a problem graded, the course as context parent."""
    block = f"{LMS}/xblock/block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1"
    return {
        "id": statement_id,
        "actor": _edx_actor(learner),
        "verb": {
            "id": "https://w3id.org/xapi/acrossx/verbs/evaluated",
            "display": {"en": "evaluated"},
        },
        "object": {
            "id": block,
            "objectType": "Activity",
            "definition": {
                "type": f"{ADL}/activities/question",
                "name": {"en-US": "Perchance to Dream"},
            },
        },
        "result": {"score": {"scaled": 0.5, "raw": 1, "min": 0, "max": 2}, "success": False},
        "context": {
            "contextActivities": {"parent": [_edx_course()]},
            "extensions": dict(ERB_EXTENSIONS),
        },
        "timestamp": timestamp,
        "version": "1.0.3",
    }


def edx_course_progress(
    statement_id: str, learner: str, timestamp: str, percent: int
) -> dict[str, Any]:
    """``edx.completion_aggregator.progress.course``: share of the course completed."""
    return {
        "id": statement_id,
        "actor": _edx_actor(learner),
        "verb": {"id": f"{ADL}/verbs/progressed", "display": {"en": "progressed"}},
        "object": _edx_course(),
        "result": {"extensions": {f"{CMI5}/result/extensions/progress": percent}},
        "context": {"extensions": dict(ERB_EXTENSIONS)},
        "timestamp": timestamp,
        "version": "1.0.3",
    }


# --- a cmi5 session: the LMS's launched and satisfied, the AU's statements in between ---------


def _cmi5_context(moveon: bool = False) -> dict[str, Any]:
    category = [{"id": f"{CMI5}/context/categories/cmi5"}]
    if moveon:
        category.append({"id": f"{CMI5}/context/categories/moveon"})
    return {
        "registration": CMI5_REGISTRATION,
        "contextActivities": {
            "category": category,
            # The AU's publisher id (cmi5 requires it here) and, as the LMS adds it, the course.
            "grouping": [
                {"objectType": "Activity", "id": CMI5_PUBLISHER_AU},
                {
                    "objectType": "Activity",
                    "id": CMI5_COURSE_IRI,
                    "definition": {"type": f"{CMI5}/activitytype/course"},
                },
            ],
        },
        "extensions": {f"{CMI5}/context/extensions/sessionid": CMI5_SESSION},
    }


def _cmi5(
    statement_id: str, learner: str, verb: str, timestamp: str, **parts: Any
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "id": statement_id,
        "actor": {
            "objectType": "Agent",
            "name": "Ana Pereira",
            "account": {"homePage": "https://lms.example.org", "name": learner},
        },
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": CMI5_AU_IRI},
        "context": _cmi5_context(),
        "timestamp": timestamp,
    }
    statement.update(parts)
    return statement


def cmi5_session(learner: str, ids: list[str], day: str = "2025-03-04") -> list[dict[str, Any]]:
    """launched, initialized, progressed, completed, passed, terminated (AU), then satisfied
    (the course, sent by the LMS): seven statements with ids ``ids``."""
    launched_context = _cmi5_context()
    launched_context["extensions"].update(
        {
            f"{CMI5}/context/extensions/launchmode": "Normal",
            f"{CMI5}/context/extensions/launchurl": "https://content.example.com/safety/ppe/index.html",
            f"{CMI5}/context/extensions/moveon": "CompletedOrPassed",
            f"{CMI5}/context/extensions/launchparameters": "",
        }
    )
    return [
        _cmi5(
            ids[0],
            learner,
            f"{ADL}/verbs/launched",
            f"{day}T09:00:00.000Z",
            context=launched_context,
        ),
        _cmi5(ids[1], learner, f"{ADL}/verbs/initialized", f"{day}T09:00:02.150Z"),
        _cmi5(
            ids[2],
            learner,
            f"{ADL}/verbs/progressed",
            f"{day}T09:10:00.000Z",
            result={
                "duration": "PT10M",
                "extensions": {f"{CMI5}/result/extensions/progress": 60},
            },
        ),
        _cmi5(
            ids[3],
            learner,
            f"{ADL}/verbs/completed",
            f"{day}T09:20:00.000Z",
            result={"completion": True, "duration": "PT20M"},
            context=_cmi5_context(moveon=True),
        ),
        _cmi5(
            ids[4],
            learner,
            f"{ADL}/verbs/passed",
            f"{day}T09:20:01.000Z",
            result={"score": {"scaled": 0.85}, "success": True, "duration": "PT20M1S"},
            context=_cmi5_context(moveon=True),
        ),
        _cmi5(
            ids[5],
            learner,
            f"{ADL}/verbs/terminated",
            f"{day}T09:21:00.000Z",
            result={"duration": "PT21M"},
        ),
        {
            "id": ids[6],
            "actor": {
                "objectType": "Agent",
                "account": {"homePage": "https://lms.example.org", "name": learner},
            },
            "verb": {
                "id": "https://w3id.org/xapi/adl/verbs/satisfied",
                "display": {"en-US": "satisfied"},
            },
            "object": {
                "objectType": "Activity",
                "id": CMI5_COURSE_IRI,
                "definition": {"type": f"{CMI5}/activitytype/course"},
            },
            "context": {
                "registration": CMI5_REGISTRATION,
                "contextActivities": {"category": [{"id": f"{CMI5}/context/categories/cmi5"}]},
                "extensions": {f"{CMI5}/context/extensions/sessionid": CMI5_SESSION},
            },
            "timestamp": f"{day}T09:21:00.500Z",
        },
    ]


def certificate_earned(
    statement_id: str, learner: str, certificate: str, timestamp: str
) -> dict[str, Any]:
    """A certificate earned, the course as the context parent (TinCan registry vocabulary)."""
    return {
        "id": statement_id,
        "actor": {
            "objectType": "Agent",
            "name": "Ana Pereira",
            "mbox": f"mailto:{learner}@example.org",
        },
        "verb": {"id": "http://id.tincanapi.com/verb/earned", "display": {"en": "earned"}},
        "object": {
            "objectType": "Activity",
            "id": f"https://lms.example.org/certificates/{certificate}",
            "definition": {"type": "http://id.tincanapi.com/activitytype/certificate"},
        },
        "result": {"score": {"raw": 45, "min": 0, "max": 50}},
        "context": {
            "contextActivities": {
                "parent": [
                    {
                        "objectType": "Activity",
                        "id": CMI5_COURSE_IRI,
                        "definition": {
                            "type": f"{CMI5}/activitytype/course",
                            "name": {"en": "Workplace safety"},
                        },
                    }
                ]
            }
        },
        "timestamp": timestamp,
    }
