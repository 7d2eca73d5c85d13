"""Training analytics on Redis or Valkey.

Records what learners do in a training programme and answers what a training admin asks, with
the data layout of the partner portal's TypeScript module (so it runs on data that system wrote),
atomic writes, and reads that do not grow with the number of learners.

    import training_analytics as ta
    analytics = ta.TrainingAnalytics(ta.connect())
    analytics.record_enrollment("user-1", "course-1")
    analytics.get_course_detailed_analytics("course-1")
"""

from . import errors
from .errors import (
    ApiKeyExistsError,
    ApiKeyNotFoundError,
    CertificationExistsError,
    CertificationExpiredError,
    CertificationNotFoundError,
    ConflictError,
    CourseExistsError,
    CourseNotFoundError,
    IllegalTransitionError,
    InvalidDateError,
    InvalidDateRangeError,
    InvalidDurationError,
    InvalidIdError,
    InvalidInputError,
    InvalidScoreError,
    InvalidStatusError,
    NotFoundError,
    NotIndexedError,
    StoreError,
    StoreUnavailableError,
    TrainingAnalyticsError,
)
from .facade import AsyncTrainingAnalytics, TrainingAnalytics
from .helpers import (
    calculate_percentage,
    get_date_range,
    get_localized_name,
    safe_parse_json,
    safe_parse_number,
)
from .keys import CACHE_TTL, TrainingKeys
from .reindex import ReindexReport
from .server import async_connect, connect
from .types import (
    BatchResult,
    CertificationIssuedEvent,
    CertificationStatusEvent,
    CompletionEvent,
    CourseDetailedAnalytics,
    CourseModule,
    CourseQuizQuestion,
    CredentialClaimAnalytics,
    CredentialStats,
    EnhancedCourseModule,
    EnhancedTrainingCourse,
    EnhancedTrainingProgress,
    EnrollmentEvent,
    Lesson,
    LocalizedString,
    ModuleCompletionEvent,
    ModuleDropoffRate,
    ModuleProgress,
    ModuleStartEvent,
    ProgressEvent,
    TimeSeriesDataPoint,
    TrainingCertificationRecord,
    TrainingCourse,
    TrainingEvent,
    TrainingOverviewMetrics,
)

__version__ = "0.1.0"

__all__ = [
    "CACHE_TTL",
    "ApiKeyExistsError",
    "ApiKeyNotFoundError",
    "AsyncTrainingAnalytics",
    "BatchResult",
    "CertificationExistsError",
    "CertificationExpiredError",
    "CertificationIssuedEvent",
    "CertificationNotFoundError",
    "CertificationStatusEvent",
    "CompletionEvent",
    "ConflictError",
    "CourseDetailedAnalytics",
    "CourseExistsError",
    "CourseModule",
    "CourseNotFoundError",
    "CourseQuizQuestion",
    "CredentialClaimAnalytics",
    "CredentialStats",
    "EnhancedCourseModule",
    "EnhancedTrainingCourse",
    "EnhancedTrainingProgress",
    "EnrollmentEvent",
    "IllegalTransitionError",
    "InvalidDateError",
    "InvalidDateRangeError",
    "InvalidDurationError",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidScoreError",
    "InvalidStatusError",
    "Lesson",
    "LocalizedString",
    "ModuleCompletionEvent",
    "ModuleDropoffRate",
    "ModuleProgress",
    "ModuleStartEvent",
    "NotFoundError",
    "NotIndexedError",
    "ProgressEvent",
    "ReindexReport",
    "StoreError",
    "StoreUnavailableError",
    "TimeSeriesDataPoint",
    "TrainingAnalytics",
    "TrainingAnalyticsError",
    "TrainingCertificationRecord",
    "TrainingCourse",
    "TrainingEvent",
    "TrainingKeys",
    "TrainingOverviewMetrics",
    "__version__",
    "async_connect",
    "calculate_percentage",
    "connect",
    "errors",
    "get_date_range",
    "get_localized_name",
    "safe_parse_json",
    "safe_parse_number",
]
