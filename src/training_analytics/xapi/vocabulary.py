"""The verb, activity-type, category and extension IRIs the mapping knows (ADL vocabulary, the
cmi5 profile, the TinCan registry), one name each."""

from __future__ import annotations

from typing import Final

# --- verbs ---------------------------------------------------------------------------------------
REGISTERED: Final = "http://adlnet.gov/expapi/verbs/registered"
UNREGISTERED: Final = "http://id.tincanapi.com/verb/unregistered"
LAUNCHED: Final = "http://adlnet.gov/expapi/verbs/launched"
INITIALIZED: Final = "http://adlnet.gov/expapi/verbs/initialized"
ATTEMPTED: Final = "http://adlnet.gov/expapi/verbs/attempted"
COMPLETED: Final = "http://adlnet.gov/expapi/verbs/completed"
PASSED: Final = "http://adlnet.gov/expapi/verbs/passed"
FAILED: Final = "http://adlnet.gov/expapi/verbs/failed"
PROGRESSED: Final = "http://adlnet.gov/expapi/verbs/progressed"
TERMINATED: Final = "http://adlnet.gov/expapi/verbs/terminated"
SATISFIED: Final = "https://w3id.org/xapi/adl/verbs/satisfied"
EARNED: Final = "http://id.tincanapi.com/verb/earned"

# --- activity types ------------------------------------------------------------------------------
ADL_COURSE: Final = "http://adlnet.gov/expapi/activities/course"
ADL_MODULE: Final = "http://adlnet.gov/expapi/activities/module"
CMI5_COURSE: Final = "https://w3id.org/xapi/cmi5/activitytype/course"
CMI5_BLOCK: Final = "https://w3id.org/xapi/cmi5/activitytype/block"
CERTIFICATE: Final = "http://id.tincanapi.com/activitytype/certificate"

COURSE_TYPES: Final = frozenset({ADL_COURSE, CMI5_COURSE})
MODULE_TYPES: Final = frozenset({ADL_MODULE})
CERTIFICATE_TYPES: Final = frozenset({CERTIFICATE})

# --- cmi5 context --------------------------------------------------------------------------------
CMI5_CATEGORY: Final = "https://w3id.org/xapi/cmi5/context/categories/cmi5"
"""In ``context.contextActivities.category`` of every cmi5-defined statement: its object is an
assignable unit (a module here) unless typed as a course or block."""
CMI5_PROGRESS: Final = "https://w3id.org/xapi/cmi5/result/extensions/progress"
"""``result.extensions``: percent complete, an integer 0-100."""
