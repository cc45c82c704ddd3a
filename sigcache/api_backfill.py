"""`POST /cache/migration/backfill`: copy the legacy cache's live entries into the new cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from sigcache.api_errors import ERROR_RESPONSES, ApiError
from sigcache.api_models import (
    MAX_REASON_LENGTH,
    BackfillConflictBody,
    BackfillData,
    Envelope,
)
from sigcache.backfill import BackfillRefused
from sigcache.facade import CacheFacade

__all__ = ["add_backfill_route"]

log = logging.getLogger("sigcache.api")

BackfillReasonParam = Annotated[
    str, Query(max_length=MAX_REASON_LENGTH, description="Why; kept in the audit history.")
]
ChunkParam = Annotated[
    int, Query(ge=1, le=10_000, description="Entries copied per hold of the legacy lock.")
]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {
        "model": BackfillConflictBody,
        "description": "Migration mode off, a phase that does not write both caches, or a "
        "backfill already running.",
    },
    **ERROR_RESPONSES,
}


def add_backfill_route(
    router: APIRouter,
    facade_provider: Callable[[], CacheFacade],
    actor: Callable[[Request], str],
    dependencies: list[Any],
) -> None:
    """Add the backfill route (authenticated by `dependencies`)."""

    @router.post(
        "/cache/migration/backfill",
        response_model=Envelope[BackfillData],
        dependencies=dependencies,
        responses=_RESPONSES,
    )
    def backfill(
        request: Request, reason: BackfillReasonParam = "", chunk_size: ChunkParam = 256
    ) -> dict[str, Any]:
        """Copy live legacy entries (owner and remaining TTL kept) into the new cache; audited."""
        facade = facade_provider()
        try:
            summary = facade.backfill(actor=actor(request), reason=reason, chunk_size=chunk_size)
        except BackfillRefused as exc:
            body = BackfillConflictBody(
                error=str(exc),
                effective_phase=facade.effective_phase.name,
                hint="enable migration mode and move to DUAL_WRITE first",
            )
            raise ApiError(409, body) from None
        return {"success": True, "data": summary.to_dict()}
