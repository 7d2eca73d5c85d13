"""A plain-Python model of the training events: what every analytics function should answer.

It keeps the raw facts (who enrolled where, each saved progress, each certificate) and computes
every figure the seed's way, from scratch, at read time. The library keeps counters instead;
property tests replay the same random events into both and compare.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import training_analytics as ta
from training_analytics._time import epoch_ms, to_iso
from training_analytics.helpers import calculate_percentage, js_round, round_to

ALLOWED = {
    "issued": {"claimed", "expired", "revoked"},
    "claimed": {"expired", "revoked"},
    "expired": {"revoked"},
}
# Every legal transition leads on to the later ones: ALLOWED is its own transitive closure.
REACHABLE = ALLOWED


@dataclass
class Certificate:
    user: str
    course: str
    issued: datetime
    expires: datetime | None
    status: str
    claimed: datetime | None
    score: int

    def identity(self) -> tuple[Any, ...]:
        return (*self.record(), self.status, self.claimed)

    def record(self) -> tuple[Any, ...]:
        """What no status change alters."""
        return (self.user, self.course, self.issued, self.expires, self.score)

    def became(self, issued: Certificate) -> bool:
        """Whether legal status changes lead from `issued` to this certificate: its status is
        the issued one or reachable from it, and the claim time is the issued one unless a
        claim came between (issued, then claimed or later with a claim time)."""
        if self.record() != issued.record():
            return False
        if self.status != issued.status and self.status not in REACHABLE.get(issued.status, set()):
            return False
        return self.claimed == issued.claimed or (
            issued.status == "issued" and self.status != "issued" and self.claimed is not None
        )


@dataclass
class Model:
    modules: dict[str, list[str]]
    enrolled: dict[str, set[str]] = field(default_factory=dict)
    completed: dict[str, set[str]] = field(default_factory=dict)
    started_modules: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    completed_modules: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    progress: dict[tuple[str, str], tuple[float, int | None, int | None]] = field(
        default_factory=dict
    )
    enrolments_by_day: Counter[tuple[str, str]] = field(default_factory=Counter)
    completions_by_day: Counter[tuple[str, str]] = field(default_factory=Counter)
    certificates: dict[str, Certificate] = field(default_factory=dict)

    # --- events: each returns what the library should answer (bool or an error class) --------

    def enroll(self, user: str, course: str, at: datetime) -> bool:
        members = self.enrolled.setdefault(course, set())
        if user in members:
            return False
        members.add(user)
        self.enrolments_by_day[(course, at.date().isoformat())] += 1
        return True

    def complete(self, user: str, course: str, at: datetime) -> bool:
        enrolled = self.enroll(user, course, at)
        members = self.completed.setdefault(course, set())
        if user in members:
            return enrolled
        members.add(user)
        self.completions_by_day[(course, at.date().isoformat())] += 1
        return True

    def start_module(self, user: str, course: str, module: str) -> bool:
        members = self.started_modules.setdefault((course, module), set())
        new = user not in members
        members.add(user)
        return new

    def complete_module(self, user: str, course: str, module: str) -> bool:
        started = self.start_module(user, course, module)
        members = self.completed_modules.setdefault((course, module), set())
        new = user not in members
        members.add(user)
        return started or new

    def save_progress(
        self, user: str, course: str, score: float, started: datetime, done: datetime | None
    ) -> bool:
        # Everything else the test's saves store follows from these three: a save of the same
        # three is byte for byte the stored hash, and changes nothing.
        saved = (score, epoch_ms(started), epoch_ms(done) if done else None)
        changed = self.progress.get((user, course)) != saved
        self.progress[(user, course)] = saved
        return changed

    def issue(self, cert_id: str, cert: Certificate) -> bool | type[Exception]:
        existing = self.certificates.get(cert_id)
        if existing is not None:
            # The same certificate again, maybe after the status changes that followed its issue.
            return False if existing.became(cert) else ta.CertificationExistsError
        self.certificates[cert_id] = cert
        return True

    def change_status(self, cert_id: str, status: str, claim: datetime) -> bool | type[Exception]:
        cert = self.certificates.get(cert_id)
        if cert is None:
            return ta.CertificationNotFoundError
        if cert.status == status:
            return False
        if status == "claimed" and cert.claimed == claim and cert.status in ALLOWED["claimed"]:
            return False  # a replay of the claim the certificate has moved on from
        if status not in ALLOWED.get(cert.status, set()):
            return ta.IllegalTransitionError
        if status == "claimed":
            if cert.expires is not None and claim >= cert.expires:
                return ta.CertificationExpiredError
            if claim < cert.issued:
                return ta.InvalidInputError
            cert.claimed = claim
        cert.status = status
        return True

    # --- reads -------------------------------------------------------------------------------

    def course_analytics(self, course: str) -> dict[str, Any]:
        enrolled = self.enrolled.get(course, set())
        completions = len(self.completed.get(course, set()))
        scores = [self.progress[(u, course)][0] for u in enrolled if (u, course) in self.progress]
        scores = [s for s in scores if s > 0]
        durations = [
            done - started
            for u in enrolled
            if (u, course) in self.progress
            for _, started, done in [self.progress[(u, course)]]
            if started is not None and done is not None and done > started
        ]
        return {
            "enrollments": len(enrolled),
            "completions": completions,
            "completionRate": calculate_percentage(completions, len(enrolled)),
            "averageScore": js_round(sum(scores) / len(scores)) if scores else 0,
            "averageTimeToComplete": round_to(sum(durations) / len(durations) / 3_600_000, 1)
            if durations
            else 0,
            "dropoffRates": [
                {
                    "moduleId": module,
                    "moduleName": f"Module {module}",
                    "dropoffRate": self._dropoff(course, module),
                }
                for module in self.modules[course]
            ],
        }

    def _dropoff(self, course: str, module: str) -> float:
        started = len(self.started_modules.get((course, module), set()))
        done = len(self.completed_modules.get((course, module), set()))
        return calculate_percentage(started - done, started) if started else 0

    def series(
        self, counts: Counter[tuple[str, str]], days: list[str], course: str | None
    ) -> list[int]:
        if course is not None:
            return [counts[(course, day)] for day in days]
        return [sum(n for (_, d), n in counts.items() if d == day) for day in days]

    def claim_analytics(self, now: datetime) -> dict[str, Any]:
        certs = list(self.certificates.values())
        claimed = [c for c in certs if c.status == "claimed" or c.claimed is not None]
        waits = [
            epoch_ms(c.claimed) - epoch_ms(c.issued)
            for c in claimed
            if c.claimed and c.claimed > c.issued
        ]
        soon = now + timedelta(days=30)
        return {
            "totalIssued": len(certs),
            "totalClaimed": len(claimed),
            "claimRate": calculate_percentage(len(claimed), len(certs)),
            "averageClaimTimeHours": round_to(sum(waits) / len(waits) / 3_600_000, 1)
            if waits
            else 0,
            "pending": sum(1 for c in certs if c.status == "issued" and not self._overdue(c, now)),
            "expiringIn30Days": sum(
                1
                for c in certs
                if c.status in ("issued", "claimed")
                and c.expires is not None
                and now < c.expires <= soon
            ),
        }

    def credential_stats(self, now: datetime) -> dict[str, int]:
        effective = Counter(
            "expired" if c.status in ("issued", "claimed") and self._overdue(c, now) else c.status
            for c in self.certificates.values()
        )
        return {
            "issued": effective["issued"],
            "claimed": effective["claimed"],
            "pending": effective["issued"],
            "expired": effective["expired"],
            "revoked": effective["revoked"],
        }

    @staticmethod
    def _overdue(cert: Certificate, now: datetime) -> bool:
        return cert.expires is not None and cert.expires <= now


def certificate_record(cert_id: str, cert: Certificate) -> dict[str, Any]:
    return {
        "id": cert_id,
        "userId": cert.user,
        "courseId": cert.course,
        "courseName": {"en": f"Course {cert.course}"},
        "userName": f"Learner {cert.user}",
        "userEmail": f"{cert.user}@example.com",
        "status": cert.status,
        "issuedAt": to_iso(cert.issued),
        "claimedAt": to_iso(cert.claimed) if cert.claimed else None,
        "expiresAt": to_iso(cert.expires) if cert.expires else None,
        "verificationCode": f"V-{cert_id}",
        "score": cert.score,
    }
