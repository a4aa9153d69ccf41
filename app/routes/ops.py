"""Operations routes: liveness, readiness and Prometheus metrics.

curl localhost:8000/healthz   # 200 while the process serves
curl localhost:8000/readyz    # 200 once the models are loaded; 503 before, and while shutting down
curl localhost:8000/metrics   # Prometheus text format
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.deps import StateDep
from app.schemas import Status, error_responses

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Status)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Status, responses=error_responses(503))
async def readyz(state: StateDep) -> dict[str, str]:
    state.serving()  # 503 before the models load and while shutting down
    return {"status": "ready"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(state: StateDep) -> Response:
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
