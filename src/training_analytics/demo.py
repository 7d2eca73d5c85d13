"""A realistic, deterministic demo programme: courses, learners and what they did.

``generate(now, learners, seed)`` builds a partner-training programme as a training admin would
see it after about three months: eight courses (sales, technical, legal, product; titles in
English, Spanish and Portuguese; two of them unpublished drafts), and ``learners`` people who
enrolled over the last ~90 days. The same ``seed`` and ``now`` always give the same programme;
``now`` defaults to the fixed :data:`DEFAULT_NOW`, not the current time.

How the learners behave, and why the figures look the way they do:

* Enrolments arrive on working days mostly (weekends at about a third), growing slowly over the
  period; the product-launch course only opens ~60 days before ``now``, with a launch spike.
  The compliance course is required, so most learners take it.
* About one in ten learners enrols and never starts. The others go module by module; a learner
  who starts a module completes it with a probability that falls from ~0.92 on the first module
  to ~0.75 on the last (fatigue, harder material), so later modules have fewer starts and a
  higher drop-off. Recent enrolees are still mid-course: nothing is generated after ``now``.
* Time spent follows the lesson durations with a log-normal spread; the next module starts after
  a log-normal pause (minutes to weeks, median most of a day).
* Scores come from a per-learner skill level; a module first failed is passed on a second attempt.
* Completing a course with ``certificateEnabled`` issues a certificate that expires after the
  course's validity (30 to 365 days): launch-readiness badges last 30 days, so some have
  already passed their expiry and others expire within 30 days. About two learners in three
  claim theirs after a log-normal delay (median about half a day; hours to days), if they do so
  before it expires, which gives a claim rate of roughly 65%. A few certificates are revoked,
  and an overnight job marks some (not all) expired certificates as expired.

``load_demo(analytics, ...)`` creates the courses and records the events through
``record_many``, in chunks so that a progress bar can follow.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from .facade import TrainingAnalytics
from .types import (
    BatchResult,
    CertificationIssuedEvent,
    CertificationStatusEvent,
    CompletionEvent,
    EnhancedTrainingProgress,
    EnrollmentEvent,
    ModuleCompletionEvent,
    ModuleProgress,
    ModuleStartEvent,
    ProgressEvent,
    TrainingCertificationRecord,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LEARNERS",
    "DEFAULT_NOW",
    "DEFAULT_SEED",
    "DEMO_COURSE_IDS",
    "PERIOD_DAYS",
    "DemoEvent",
    "DemoSummary",
    "generate",
    "load_demo",
]

DEFAULT_LEARNERS: Final = 5_000
DEFAULT_SEED: Final = 42
#: Enrolments start this many days before ``now``.
PERIOD_DAYS: Final = 90
#: The default end of the generated activity. A fixed moment, not the current time, so that the
#: same seed gives the same programme (the same counts) on every run, whatever the day.
DEFAULT_NOW: Final = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
#: Events per ``record_many`` call in :func:`load_demo` (one progress step each).
DEFAULT_CHUNK_SIZE: Final = 2_000

DemoEvent = (
    EnrollmentEvent
    | CompletionEvent
    | ModuleStartEvent
    | ModuleCompletionEvent
    | ProgressEvent
    | CertificationIssuedEvent
    | CertificationStatusEvent
)

Title = tuple[str, str, str]
"""English, Spanish, Portuguese."""


@dataclass(frozen=True)
class _CourseSpec:
    id: str
    title: Title
    description: Title
    category: str
    level: str
    modules: tuple[Title, ...]
    published: bool
    certificate_days: int | None
    """Validity of the certificate in days; None: the course issues none."""
    popularity: float
    """Share of learners who enrol."""
    continue_first: float
    continue_last: float
    """Chance that a learner who starts the first (last) module completes it."""
    passing_score: int = 70
    required: bool = False
    opens_days_ago: int = PERIOD_DAYS
    """Enrolments start this many days before now (a launch spike follows)."""


_COURSES: Final[tuple[_CourseSpec, ...]] = (
    _CourseSpec(
        id="partner-compliance-essentials",
        title=(
            "Partner Compliance Essentials",
            "Cumplimiento normativo para partners",
            "Conformidade para parceiros",
        ),
        description=(
            "The rules every partner employee must know; renewed every quarter.",
            "Las normas que todo empleado de un partner debe conocer; se renueva cada trimestre.",
            "As regras que todo colaborador de parceiro deve conhecer; renovado a cada trimestre.",
        ),
        category="legal",
        level="basic",
        modules=(
            ("Code of conduct", "Código de conducta", "Código de conduta"),
            (
                "Anti-bribery and corruption",
                "Antisoborno y anticorrupción",
                "Antissuborno e anticorrupção",
            ),
            (
                "Data protection basics",
                "Fundamentos de protección de datos",
                "Fundamentos de proteção de dados",
            ),
            (
                "Export controls and sanctions",
                "Controles de exportación y sanciones",
                "Controles de exportação e sanções",
            ),
        ),
        published=True,
        certificate_days=90,
        popularity=0.55,
        continue_first=0.93,
        continue_last=0.85,
        passing_score=80,
        required=True,
    ),
    _CourseSpec(
        id="sales-fundamentals",
        title=(
            "Partner Sales Fundamentals",
            "Fundamentos de ventas para partners",
            "Fundamentos de vendas para parceiros",
        ),
        description=(
            "Sell the platform with confidence: customers, discovery, value and closing.",
            "Venda la plataforma con confianza: clientes, descubrimiento, valor y cierre.",
            "Venda a plataforma com confiança: clientes, descoberta, valor e fechamento.",
        ),
        category="sales",
        level="basic",
        modules=(
            (
                "Welcome and programme overview",
                "Bienvenida y visión general del programa",
                "Boas-vindas e visão geral do programa",
            ),
            (
                "Understanding our customers",
                "Conocer a nuestros clientes",
                "Conhecendo nossos clientes",
            ),
            (
                "Discovery and qualification",
                "Descubrimiento y calificación",
                "Descoberta e qualificação",
            ),
            (
                "Presenting the value proposition",
                "Presentar la propuesta de valor",
                "Apresentando a proposta de valor",
            ),
            (
                "Handling objections and closing",
                "Manejo de objeciones y cierre",
                "Tratamento de objeções e fechamento",
            ),
        ),
        published=True,
        certificate_days=365,
        popularity=0.45,
        continue_first=0.92,
        continue_last=0.78,
    ),
    _CourseSpec(
        id="product-launch-readiness",
        title=(
            "Product Launch Readiness: Spring Release",
            "Preparación para el lanzamiento: versión de primavera",
            "Preparação para o lançamento: versão de primavera",
        ),
        description=(
            "Everything you need to sell and support the new release from day one.",
            "Todo lo necesario para vender y dar soporte a la nueva versión desde el primer día.",
            "Tudo o que você precisa para vender e dar suporte à nova versão desde o primeiro dia.",
        ),
        category="product",
        level="intermediate",
        modules=(
            ("What's new in this release", "Novedades de esta versión", "Novidades desta versão"),
            ("Demo walkthrough", "Recorrido por la demo", "Roteiro da demonstração"),
            ("Pricing and packaging", "Precios y paquetes", "Preços e pacotes"),
            (
                "Migration paths for existing customers",
                "Rutas de migración para clientes actuales",
                "Caminhos de migração para clientes atuais",
            ),
            (
                "Launch FAQ and knowledge check",
                "Preguntas frecuentes y evaluación",
                "Perguntas frequentes e avaliação",
            ),
        ),
        published=True,
        certificate_days=30,
        popularity=0.30,
        continue_first=0.92,
        continue_last=0.80,
        opens_days_ago=60,
    ),
    _CourseSpec(
        id="platform-certified-engineer",
        title=(
            "Certified Platform Engineer",
            "Ingeniero certificado de la plataforma",
            "Engenheiro certificado da plataforma",
        ),
        description=(
            "Deploy, secure, integrate and operate the platform for your customers.",
            "Despliegue, proteja, integre y opere la plataforma para sus clientes.",
            "Implante, proteja, integre e opere a plataforma para seus clientes.",
        ),
        category="technical",
        level="intermediate",
        modules=(
            (
                "Architecture overview",
                "Visión general de la arquitectura",
                "Visão geral da arquitetura",
            ),
            (
                "Installation and first deployment",
                "Instalación y primer despliegue",
                "Instalação e primeira implantação",
            ),
            (
                "Identity and access management",
                "Gestión de identidades y accesos",
                "Gestão de identidades e acessos",
            ),
            ("Networking and security", "Redes y seguridad", "Redes e segurança"),
            ("Data integration", "Integración de datos", "Integração de dados"),
            ("Monitoring and alerting", "Monitorización y alertas", "Monitoramento e alertas"),
            (
                "Troubleshooting in production",
                "Resolución de problemas en producción",
                "Solução de problemas em produção",
            ),
            ("Certification lab", "Laboratorio de certificación", "Laboratório de certificação"),
        ),
        published=True,
        certificate_days=365,
        popularity=0.22,
        continue_first=0.92,
        continue_last=0.75,
        passing_score=75,
    ),
    _CourseSpec(
        id="solution-selling",
        title=(
            "Advanced Solution Selling",
            "Venta consultiva avanzada",
            "Venda consultiva avançada",
        ),
        description=(
            "Win larger, multi-year deals by selling outcomes rather than features.",
            "Gane acuerdos más grandes y plurianuales vendiendo resultados, no funciones.",
            "Conquiste contratos maiores e plurianuais vendendo resultados, não funcionalidades.",
        ),
        category="sales",
        level="advanced",
        modules=(
            (
                "Mapping the buying committee",
                "Mapear el comité de compra",
                "Mapeando o comitê de compras",
            ),
            (
                "Building a business case",
                "Construir un caso de negocio",
                "Construindo um caso de negócio",
            ),
            (
                "ROI and total cost of ownership",
                "ROI y coste total de propiedad",
                "ROI e custo total de propriedade",
            ),
            (
                "Competitive positioning",
                "Posicionamiento competitivo",
                "Posicionamento competitivo",
            ),
            (
                "Negotiating multi-year deals",
                "Negociar acuerdos plurianuales",
                "Negociando contratos plurianuais",
            ),
            (
                "Capstone: a complete deal review",
                "Proyecto final: revisión completa de una oportunidad",
                "Projeto final: revisão completa de uma oportunidade",
            ),
        ),
        published=True,
        certificate_days=180,
        popularity=0.15,
        continue_first=0.90,
        continue_last=0.75,
    ),
    _CourseSpec(
        id="api-integration-workshop",
        title=(
            "API Integration Workshop",
            "Taller de integración de API",
            "Oficina de integração de API",
        ),
        description=(
            "Hands-on: connect your product to ours through the public API.",
            "Práctico: conecte su producto al nuestro mediante la API pública.",
            "Prático: conecte seu produto ao nosso pela API pública.",
        ),
        category="technical",
        level="advanced",
        modules=(
            (
                "Authentication and API keys",
                "Autenticación y claves de API",
                "Autenticação e chaves de API",
            ),
            (
                "REST resources and pagination",
                "Recursos REST y paginación",
                "Recursos REST e paginação",
            ),
            ("Webhooks and events", "Webhooks y eventos", "Webhooks e eventos"),
            (
                "Rate limits and retries",
                "Límites de uso y reintentos",
                "Limites de uso e novas tentativas",
            ),
            (
                "Building a sample connector",
                "Construir un conector de ejemplo",
                "Construindo um conector de exemplo",
            ),
            (
                "Going-live checklist",
                "Lista de verificación para producción",
                "Checklist para entrar em produção",
            ),
        ),
        published=True,
        certificate_days=None,
        popularity=0.12,
        continue_first=0.88,
        continue_last=0.75,
    ),
    _CourseSpec(
        id="data-privacy-for-partners",
        title=(
            "Data Privacy for Partner Solutions",
            "Privacidad de datos en soluciones de partners",
            "Privacidade de dados em soluções de parceiros",
        ),
        description=(
            "Design and run partner solutions that respect privacy law (in preparation).",
            "Diseñe y opere soluciones que respeten la ley de privacidad (en preparación).",
            "Projete e opere soluções que respeitem a lei de privacidade (em preparação).",
        ),
        category="legal",
        level="advanced",
        modules=(
            ("Privacy by design", "Privacidad desde el diseño", "Privacidade desde a concepção"),
            (
                "Cross-border data transfers",
                "Transferencias internacionales de datos",
                "Transferências internacionais de dados",
            ),
            (
                "Handling data subject requests",
                "Gestión de solicitudes de los interesados",
                "Tratamento de solicitações dos titulares",
            ),
            (
                "Incident response and notification",
                "Respuesta a incidentes y notificación",
                "Resposta a incidentes e notificação",
            ),
        ),
        published=False,
        certificate_days=365,
        popularity=0.0,
        continue_first=0.9,
        continue_last=0.8,
    ),
    _CourseSpec(
        id="partner-marketing-playbook",
        title=(
            "Partner Marketing Playbook",
            "Manual de marketing para partners",
            "Manual de marketing para parceiros",
        ),
        description=(
            "Co-marketing campaigns, brand guidelines and market development funds (draft).",
            "Campañas de co-marketing, guía de marca y fondos de desarrollo de mercado (borrador).",
            "Campanhas de co-marketing, diretrizes de marca e fundos de marketing (rascunho).",
        ),
        category="sales",
        level="basic",
        modules=(
            ("Brand guidelines", "Guía de marca", "Diretrizes de marca"),
            (
                "Running a co-marketing campaign",
                "Campañas de co-marketing",
                "Campanhas de co-marketing",
            ),
            (
                "Market development funds",
                "Fondos de desarrollo de mercado",
                "Fundos de desenvolvimento de mercado",
            ),
            ("Measuring results", "Medir los resultados", "Medindo os resultados"),
        ),
        published=False,
        certificate_days=None,
        popularity=0.0,
        continue_first=0.9,
        continue_last=0.8,
    ),
)

#: Ids of the demo's courses: a catalogue holding only these holds a demo (the CLI may replace it).
DEMO_COURSE_IDS: Final = frozenset(spec.id for spec in _COURSES)

_FIRST_NAMES: Final = (
    "Ana", "Bruno", "Camila", "Daniel", "Elena", "Felipe", "Gabriela", "Hugo", "Isabel", "Javier",
    "Karen", "Lucas", "Marta", "Nicolás", "Olivia", "Pablo", "Quentin", "Rafaela", "Sofía",
    "Tomás", "Úrsula", "Valentina", "William", "Ximena", "Yara", "Zoe", "Aisha", "Ben", "Chloe",
    "David", "Emma", "Fatima", "George", "Hannah", "Ivan", "João", "Laura", "Mateus", "Noah",
    "Priya",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Almeida", "Baker", "Castro", "Díaz", "Evans", "Fernández", "García", "Hughes", "Iglesias",
    "Johnson", "Kim", "López", "Martins", "Nguyen", "Oliveira", "Pereira", "Quinn", "Rodríguez",
    "Silva", "Torres", "Urbina", "Vargas", "Walker", "Xavier", "Young", "Zapata", "Costa",
    "Moreno", "Patel", "Santos",
)  # fmt: skip
_PARTNER_DOMAINS: Final = (
    "northwind.example", "contoso-partners.example", "andes-digital.example",
    "bluewave-consulting.example", "iberia-cloud.example", "saopaulo-tech.example",
    "fabrikam.example", "litware.example", "tailspin.example", "proseware.example",
    "pacifica-solutions.example", "rio-integradores.example",
)  # fmt: skip
_CODE_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud safely
_LESSON_TYPES: Final = ("video", "video", "reading", "reading", "download")
_PROGRAMME_START: Final = timedelta(days=PERIOD_DAYS + 30)  # when the catalogue was authored


# --- time helpers ----------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """JavaScript's ``toISOString`` form, as the older system stored timestamps."""
    # isoformat is several times faster than strftime, which matters for ~100k timestamps.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lognormal_hours(rng: random.Random, median_hours: float, sigma: float) -> timedelta:
    return timedelta(hours=median_hours * math.exp(rng.gauss(0.0, sigma)))


# --- the catalogue -----------------------------------------------------------------------------


def _localized(title: Title) -> dict[str, str]:
    return {"en": title[0], "es": title[1], "pt": title[2]}


def _course_dict(
    spec: _CourseSpec, order: int, rng: random.Random, now: datetime
) -> dict[str, Any]:
    modules = []
    total_minutes = 0
    for m_index, title in enumerate(spec.modules):
        module_id = f"m{m_index + 1}"
        lessons = []
        for l_index in range(rng.randint(2, 4)):
            kind = rng.choice(_LESSON_TYPES)
            minutes = rng.choice((5, 8, 10, 12, 15, 20, 25))
            total_minutes += minutes
            lesson: dict[str, Any] = {
                "id": f"{module_id}-l{l_index + 1}",
                "title": {
                    "en": f"{title[0]}: part {l_index + 1}",
                    "es": f"{title[1]}: parte {l_index + 1}",
                    "pt": f"{title[2]}: parte {l_index + 1}",
                },
                "type": kind,
                "duration": minutes,
                "order": l_index,
            }
            if kind == "video":
                lesson["videoUrl"] = (
                    f"https://media.partners.example/{spec.id}/{module_id}/{l_index + 1}.mp4"
                )
            elif kind == "download":
                lesson["downloadUrl"] = (
                    f"https://media.partners.example/{spec.id}/{module_id}/{l_index + 1}.pdf"
                )
            lessons.append(lesson)
        module: dict[str, Any] = {
            "id": module_id,
            "title": _localized(title),
            "lessons": lessons,
            "order": m_index + 1,
            "duration": sum(lesson["duration"] for lesson in lessons),
        }
        if m_index == len(spec.modules) - 1:
            # The last module ends with a knowledge check, as most of these courses do.
            module["quiz"] = [
                {
                    "id": f"{module_id}-q{q + 1}",
                    "question": {
                        "en": f"Knowledge check {q + 1}",
                        "es": f"Evaluación {q + 1}",
                        "pt": f"Avaliação {q + 1}",
                    },
                    "options": [
                        {"en": f"Option {o}", "es": f"Opción {o}", "pt": f"Opção {o}"}
                        for o in "ABCD"
                    ],
                    "correctAnswer": rng.randrange(4),
                }
                for q in range(3)
            ]
            module["passingScore"] = spec.passing_score
        modules.append(module)
    created = now - _PROGRAMME_START + timedelta(days=order * 2)
    return {
        "id": spec.id,
        "title": _localized(spec.title),
        "description": _localized(spec.description),
        "category": spec.category,
        "level": spec.level,
        "duration": total_minutes,
        "modules": modules,
        "isPublished": spec.published,
        "isRequired": spec.required,
        "passingScore": spec.passing_score,
        "certificateEnabled": spec.certificate_days is not None,
        "order": order,
        "createdAt": _iso(created),
        "createdBy": "training-admin@partners.example",
        "updatedAt": _iso(created + timedelta(days=3)),
    }


# --- learners ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Learner:
    id: str
    name: str
    email: str
    skill: float
    """Mean module score before the per-module spread."""
    motivation: float
    """Multiplies every chance to complete a module."""


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii()).lower()


def _learner(index: int, rng: random.Random) -> _Learner:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    domain = rng.choice(_PARTNER_DOMAINS)
    return _Learner(
        id=f"learner-{index:05d}",
        name=f"{first} {last}",
        # The index keeps addresses unique however often a name repeats.
        email=f"{_ascii(first)}.{_ascii(last)}{index}@{domain}",
        skill=rng.gauss(80.0, 8.0),
        motivation=rng.uniform(0.95, 1.06),
    )


def _enrolment_time(rng: random.Random, now: datetime, opens_days_ago: int) -> datetime:
    """A working-hours moment in the course's window: weekdays busier, slow growth, launch spike."""
    while True:
        days_ago = rng.uniform(0.0, opens_days_ago)
        moment = now - timedelta(days=days_ago)
        weight = 1.0 + 0.5 * (1.0 - days_ago / PERIOD_DAYS)  # the programme grows
        if moment.weekday() >= 5:
            weight *= 0.3
        if opens_days_ago < PERIOD_DAYS:
            # A launch: the first fortnight is busy, fading as the announcement ages.
            weight *= 1.0 + 3.0 * math.exp(-(opens_days_ago - days_ago) / 7.0)
        if rng.random() * 6.0 < weight:
            break
    # Learners are spread over the Americas and Europe: busiest mid-afternoon UTC.
    hour = min(max(rng.gauss(15.0, 3.5), 0.0), 23.99)
    moment = moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hour)
    return min(moment, now - timedelta(minutes=1))


# --- the simulation ----------------------------------------------------------------------------


@dataclass
class _Timeline:
    """Events with the moment each happens; module events carry no ``at`` of their own."""

    entries: list[tuple[datetime, int, DemoEvent]] = field(default_factory=list)

    def add(self, moment: datetime, event: DemoEvent) -> None:
        # The running sequence number keeps causal order among events at the same moment.
        self.entries.append((moment, len(self.entries), event))

    def sorted_events(self) -> list[DemoEvent]:
        return [event for _, _, event in sorted(self.entries, key=lambda e: (e[0], e[1]))]


def _continue_chance(spec: _CourseSpec, module_index: int, learner: _Learner) -> float:
    count = len(spec.modules)
    share = module_index / (count - 1) if count > 1 else 0.0
    base = spec.continue_first + (spec.continue_last - spec.continue_first) * share
    return min(base * learner.motivation, 0.985)


def _module_score(rng: random.Random, learner: _Learner, passing: int) -> tuple[int, int]:
    """(score, attempts): a first attempt under the passing score is retaken and passed."""
    score = round(min(max(rng.gauss(learner.skill, 8.0), 0.0), 100.0))
    if score >= passing:
        return score, 1
    return min(100, passing + round(rng.uniform(0.0, 15.0))), 2


@dataclass
class _Simulation:
    """The random source, the clock and the growing timeline of one :func:`generate` run."""

    rng: random.Random
    now: datetime
    timeline: _Timeline = field(default_factory=_Timeline)
    certificates: int = 0

    def learner_path(self, course: dict[str, Any], spec: _CourseSpec, learner: _Learner) -> None:
        """One learner's path through one course, up to ``now``."""
        rng, timeline, now = self.rng, self.timeline, self.now
        enrolled_at = _enrolment_time(rng, now, spec.opens_days_ago)
        timeline.add(
            enrolled_at, EnrollmentEvent(user_id=learner.id, course_id=spec.id, at=enrolled_at)
        )
        if rng.random() < 0.10:
            return  # enrolled, never started
        moment = enrolled_at + _lognormal_hours(rng, 2.0, 1.5)
        modules: list[ModuleProgress] = []
        scores: list[int] = []
        minutes_spent = 0
        first_start: datetime | None = None
        last_seen = enrolled_at
        completed_all = True
        for index, module in enumerate(course["modules"]):
            if moment > now:
                completed_all = False  # still to come
                break
            module_id = module["id"]
            first_start = first_start or moment
            last_seen = moment
            timeline.add(
                moment,
                ModuleStartEvent(user_id=learner.id, course_id=spec.id, module_id=module_id),
            )
            planned = module["duration"] * math.exp(rng.gauss(0.0, 0.35))
            finishes = rng.random() < _continue_chance(spec, index, learner)
            score, attempts = _module_score(
                rng, learner, module.get("passingScore") or spec.passing_score
            )
            spent = planned * (1.0 + 0.4 * (attempts - 1))
            # A sitting may stretch over a couple of sessions.
            done_at = moment + timedelta(minutes=spent) + _lognormal_hours(rng, 0.5, 1.2)
            if not finishes or done_at > now:
                partial = round(spent * rng.uniform(0.1, 0.8))
                minutes_spent += partial
                last_seen = min(moment + timedelta(minutes=partial), now)
                modules.append(
                    ModuleProgress(
                        module_id=module_id,
                        status="in_progress",
                        started_at=_iso(moment),
                        attempts=1,
                        time_spent_minutes=partial,
                    )
                )
                completed_all = False
                break
            minutes_spent += round(spent)
            scores.append(score)
            last_seen = done_at
            timeline.add(
                done_at,
                ModuleCompletionEvent(user_id=learner.id, course_id=spec.id, module_id=module_id),
            )
            modules.append(
                ModuleProgress(
                    module_id=module_id,
                    status="completed",
                    score=score,
                    started_at=_iso(moment),
                    completed_at=_iso(done_at),
                    attempts=attempts,
                    time_spent_minutes=round(spent),
                )
            )
            moment = self.study_time(done_at + _lognormal_hours(rng, 18.0, 1.3))
        if first_start is None:
            return  # the first module's start lies after now: nothing to record yet
        overall = round(sum(scores) / len(scores)) if scores else 0
        progress = EnhancedTrainingProgress(
            user_id=learner.id,
            course_id=spec.id,
            status="completed" if completed_all else "in_progress",
            module_progress=modules,
            overall_score=overall,
            started_at=_iso(first_start),
            completed_at=_iso(last_seen) if completed_all else None,
            last_accessed_at=_iso(last_seen),
            total_time_spent_minutes=minutes_spent,
        )
        if not completed_all:
            timeline.add(last_seen, ProgressEvent(progress=progress, at=last_seen))
            return
        timeline.add(
            last_seen, CompletionEvent(user_id=learner.id, course_id=spec.id, at=last_seen)
        )
        if spec.certificate_days is None:
            timeline.add(last_seen, ProgressEvent(progress=progress, at=last_seen))
            return
        self.certificates += 1
        cert_id = f"cert-{self.certificates:06d}-{rng.getrandbits(32):08x}"
        issued_at = last_seen + timedelta(seconds=rng.randint(5, 90))  # the issuing job runs after
        expires_at = issued_at + timedelta(days=spec.certificate_days)
        progress = progress.model_copy(
            update={"certificate_id": cert_id, "certificate_issued_at": _iso(issued_at)}
        )
        timeline.add(last_seen, ProgressEvent(progress=progress, at=last_seen))
        if issued_at > now:
            return
        code = "".join(rng.choice(_CODE_ALPHABET) for _ in range(8))
        timeline.add(
            issued_at,
            CertificationIssuedEvent(
                certification=TrainingCertificationRecord(
                    id=cert_id,
                    user_id=learner.id,
                    course_id=spec.id,
                    course_name=course["title"],
                    user_name=learner.name,
                    user_email=learner.email,
                    status="issued",
                    issued_at=_iso(issued_at),
                    expires_at=_iso(expires_at),
                    credential_url=f"https://partners.example/credentials/{code}",
                    verification_code=code,
                    score=overall,
                ),
                at=issued_at,
            ),
        )
        self.certificate_lifecycle(cert_id, issued_at, expires_at)

    def study_time(self, moment: datetime) -> datetime:
        """Most learners who would resume on a weekend wait for the working week.

        Not all on Monday: that would pile a week's catch-up onto one day of the series.
        """
        if moment.weekday() >= 5 and self.rng.random() < 0.65:
            return moment + timedelta(days=7 - moment.weekday() + self.rng.choice((0, 0, 1, 2)))
        return moment

    def certificate_lifecycle(
        self, cert_id: str, issued_at: datetime, expires_at: datetime
    ) -> None:
        """Claim (most learners, after a while), revocation (rare), the overnight expiry job."""
        rng, timeline, now = self.rng, self.timeline, self.now
        claim_at: datetime | None = None
        if rng.random() < 0.67:
            candidate = issued_at + _lognormal_hours(rng, 12.0, 1.3)
            if candidate <= now and candidate < expires_at:
                claim_at = candidate
        revoke_at: datetime | None = None
        if rng.random() < 0.015:
            candidate = issued_at + timedelta(days=rng.uniform(1.0, 20.0))
            if candidate <= now and candidate < expires_at:
                revoke_at = candidate
        if claim_at is not None and (revoke_at is None or claim_at < revoke_at):
            timeline.add(
                claim_at,
                CertificationStatusEvent(
                    cert_id=cert_id, new_status="claimed", claimed_at=_iso(claim_at), at=claim_at
                ),
            )
        if revoke_at is not None:
            timeline.add(
                revoke_at,
                CertificationStatusEvent(cert_id=cert_id, new_status="revoked", at=revoke_at),
            )
            return
        # The job runs nightly but not everywhere yet: about half of the overdue certificates are
        # marked, the rest count as expired only because their date has passed.
        expired_job = expires_at.replace(hour=2, minute=0, second=0, microsecond=0) + timedelta(
            days=1
        )
        if expired_job <= now and rng.random() < 0.5:
            timeline.add(
                expired_job,
                CertificationStatusEvent(cert_id=cert_id, new_status="expired", at=expired_job),
            )


def generate(
    now: datetime, learners: int = DEFAULT_LEARNERS, seed: int = DEFAULT_SEED
) -> tuple[list[dict[str, Any]], list[DemoEvent]]:
    """The demo programme: courses (the seed's camelCase JSON) and events sorted by time.

    Deterministic for a given ``now`` (an aware datetime), ``learners`` and ``seed``. No event
    lies after ``now``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if learners < 0:
        raise ValueError("learners must not be negative")
    rng = random.Random(seed)
    courses = [_course_dict(spec, order, rng, now) for order, spec in enumerate(_COURSES, 1)]
    open_courses = [
        (spec, course)
        for spec, course in zip(_COURSES, courses, strict=True)
        if spec.popularity > 0
    ]
    simulation = _Simulation(rng, now)
    for index in range(1, learners + 1):
        learner = _learner(index, rng)
        chosen = [(s, c) for s, c in open_courses if rng.random() < s.popularity]
        if not chosen:
            # Everyone in the programme took at least one course; pick by popularity.
            chosen = rng.choices(open_courses, weights=[s.popularity for s, _ in open_courses])
        for spec, course in chosen:
            simulation.learner_path(course, spec, learner)
    return courses, simulation.timeline.sorted_events()


# --- loading -----------------------------------------------------------------------------------


@dataclass
class DemoSummary:
    courses: int
    learners: int
    events: int
    """Events in the whole programme."""
    result: BatchResult
    """Outcomes of the events recorded by this call (indexes count from the programme's start)."""
    recorded: int = 0
    """Events of the programme in the store now: recorded earlier (``start``) and by this call."""
    interrupted: bool = False
    """``should_stop`` answered True before every event was recorded."""


def load_demo(
    analytics: TrainingAnalytics,
    *,
    learners: int = DEFAULT_LEARNERS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    start: int = 0,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
    programme: tuple[list[dict[str, Any]], list[DemoEvent]] | None = None,
) -> DemoSummary:
    """Create the demo courses and record its events; ``progress(done, total)`` after each chunk.

    The store should hold no training data under the facade's prefix (the courses are created,
    and CourseExistsError is raised if one exists). ``resume`` finishes an interrupted load:
    courses that exist are kept, and the programme's first ``start`` events are taken as
    recorded.
    ``should_stop()`` is asked before each course and chunk; when it answers True the load stops
    there, between two chunks (never inside one), and the summary says how far it got.
    ``programme`` is what ``generate`` returned for these arguments, if the caller has it.
    """
    moment = now if now is not None else DEFAULT_NOW
    courses, events = programme if programme is not None else generate(moment, learners, seed)
    total = len(events)
    result = BatchResult()

    def summary(recorded: int, interrupted: bool) -> DemoSummary:
        return DemoSummary(len(courses), learners, total, result, recorded, interrupted)

    for course in courses:
        if should_stop is not None and should_stop():
            return summary(start, True)
        if not resume or analytics.get_training_course(str(course["id"])) is None:
            analytics.create_training_course(course)
    if progress is not None:
        progress(start, total)
    for offset in range(start, total, chunk_size):
        if should_stop is not None and should_stop():
            return summary(offset, True)
        chunk = events[offset : offset + chunk_size]
        result.merge(analytics.record_many(chunk), offset)
        if progress is not None:
            progress(offset + len(chunk), total)
    return summary(total, False)
