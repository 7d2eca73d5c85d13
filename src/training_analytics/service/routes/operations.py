"""Operating the service: health and readiness (no key), metrics and cache control (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from ...cluster.health import ClusterHealth, async_cluster_health
from ...errors import StoreUnavailableError
from ...types import SeedModel
from ..auth import Admin
from ..metrics import CONTENT_TYPE
from ..problems import problem, responses
from ..state import analytics_of, cluster_of, metrics_of, settings_of
from . import API_PREFIX

router = APIRouter(tags=["operations"])
#: Under the API prefix.
api_router = APIRouter(prefix=API_PREFIX, tags=["operations"])


class Health(SeedModel):
    status: str


class Readiness(SeedModel):
    status: str
    cluster: ClusterHealth | None = None
    """On a cluster only: its state as the nodes report it, and how many answer."""


class Invalidate(SeedModel):
    course_id: str | None = None
    """Only this course's cached analytics (and the overview); default: every cache."""


class Invalidated(SeedModel):
    deleted: int


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up (no key needed)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    responses={503: {"description": "The store does not answer"}},
    response_model=Readiness,
    response_model_exclude_none=True,
)
async def readyz(request: Request) -> Readiness | Response:
    """The store answers (no key needed); 503 with ``Retry-After`` otherwise. On a cluster:
    ready when every node that answers reports ``cluster_state:ok``; the reply says how many
    nodes answer (a node down behind a completed failover leaves the cluster ready)."""
    cluster = cluster_of(request)
    if cluster is None:
        await analytics_of(request).ping_store()  # StoreUnavailableError: 503 (see problems)
        return Readiness(status="ready")
    health = await async_cluster_health(cluster)
    if not health.ok:
        # The state and counts only: a 503's detail never names the store's addresses.
        return problem(
            503,
            "Store unavailable",
            f"the cluster reports cluster_state:{health.state} ({health.reachable} of "
            f"{health.nodes} nodes answer)",
            slug=StoreUnavailableError.__name__,
            headers={"Retry-After": str(settings_of(request).retry_after_seconds)},
        )
    return Readiness(status="ready", cluster=health)


@router.get(
    "/metrics",
    dependencies=[Admin],
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
        **responses(401, 403),
    },
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    """Prometheus text: requests by route and status, latency, events by outcome, store
    errors."""
    return Response(metrics_of(request).render(), media_type=CONTENT_TYPE)


@api_router.post("/cache/invalidate", dependencies=[Admin], responses=responses(401, 403, 503))
async def invalidate(
    request: Request, body: Annotated[Invalidate | None, Body()] = None
) -> Invalidated:
    """Delete cached analytics (one course's, or all); says how many keys were deleted."""
    analytics = analytics_of(request)
    if body is not None and body.course_id is not None:
        return Invalidated(deleted=await analytics.invalidate_course_cache(body.course_id))
    return Invalidated(deleted=await analytics.invalidate_all_training_caches())
