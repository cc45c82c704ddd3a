"""The HTTP control API: a mountable FastAPI router and an app factory.

Every route but `GET /healthz` needs `Authorization: Bearer <token>`. Success bodies are
`{"success": true, "data": ...}`; errors are `{"success": false, "error": ...}` plus what the
status needs (valid phases for 400, failed gate rules for 409, an error id for 500). No exception
text ever reaches a client (see `sigcache.api_errors`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sigcache import __version__
from sigcache.api_backfill import add_backfill_route
from sigcache.api_errors import (
    ERROR_RESPONSES,
    PHASE_ERROR_RESPONSES,
    ApiError,
    GuardedRoute,
    new_error_id,
    unauthorized,
)
from sigcache.api_models import (
    MAX_PHASE_LENGTH,
    MAX_REASON_LENGTH,
    ChangeEnvelope,
    CleanupData,
    ClearData,
    ConflictBody,
    Envelope,
    Health,
    HistoryItem,
    LookupRequest,
    LookupResult,
    MigrationStatus,
    PhaseErrorBody,
    SignatureWrite,
    WriteResult,
)
from sigcache.auth import TokenSet, load_tokens
from sigcache.errors import ConfigError, GateRefusedError, PhaseError, PhaseTransitionError
from sigcache.facade import CacheFacade
from sigcache.phases import VALID_PHASE_NAMES, MigrationPhase, check_transition, parse_phase

__all__ = ["ACTOR_PREFIX", "FacadeProvider", "create_app", "create_router", "set_phase"]

log = logging.getLogger("sigcache.api")

FacadeProvider = Callable[[], CacheFacade]
ACTOR_PREFIX = "api:"  # audit actors are "api:<token name>", never the token
_STATE_ACTOR = "sigcache_actor"
_BEARER = HTTPBearer(auto_error=False, description="A token configured on the server.")

# Parameter types live at module level: FastAPI resolves these (string) annotations here.
CredentialsParam = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
ReasonParam = Annotated[
    str, Query(max_length=MAX_REASON_LENGTH, description="Why; kept in the audit history.")
]
PhaseParam = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_PHASE_LENGTH,
        description="Target phase: LEGACY_ONLY, DUAL_WRITE, NEW_PREFERRED or NEW_ONLY (any "
        "case), or 1-4.",
    ),
]
ForceParam = Annotated[
    bool, Query(description="Promote without a passing gate verdict (audited as forced).")
]
LimitParam = Annotated[int, Query(ge=1, le=10_000, description="How many newest entries.")]


class _Authenticator:
    """The auth dependency: a known bearer token, whose name becomes the request's actor."""

    def __init__(self, tokens: TokenSet) -> None:
        self._tokens = tokens

    def __call__(self, request: Request, credentials: CredentialsParam) -> None:
        if credentials is None:
            raise unauthorized("missing or malformed 'Authorization: Bearer' header")
        name = self._tokens.identify(credentials.credentials)
        if name is None:
            log.warning("[SIGCACHE_API] rejected a bearer token on %s", request.url.path)
            raise unauthorized("invalid token")
        setattr(request.state, _STATE_ACTOR, ACTOR_PREFIX + name)


def _actor(request: Request) -> str:
    actor: str = getattr(request.state, _STATE_ACTOR)
    return actor


def _ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


def _change(facade: CacheFacade, message: str, changed: bool) -> dict[str, Any]:
    status = facade.get_migration_status()
    return {"success": True, "message": message, "changed": changed, "data": status}


def create_router(
    facade_provider: FacadeProvider, *, tokens: TokenSet | None = None, data_plane: bool = True
) -> APIRouter:
    """The API routes; `tokens` default to the environment's (none at all is a ConfigError)."""
    auth = [Depends(_Authenticator(tokens or tokens_from_env()))]
    router = APIRouter(route_class=GuardedRoute)
    kw: dict[str, Any] = {"dependencies": auth, "responses": ERROR_RESPONSES}

    @router.get("/healthz", response_model=Envelope[Health])
    def healthz() -> dict[str, Any]:
        """Liveness probe (no token needed, no state disclosed)."""
        return _ok({"status": "ok"})

    _add_migration_routes(router, facade_provider, kw)
    add_backfill_route(router, facade_provider, _actor, auth)
    _add_cache_routes(router, facade_provider, kw)
    if data_plane:
        _add_data_plane(router, facade_provider, kw)
    return router


def _add_migration_routes(
    router: APIRouter, facade_provider: FacadeProvider, kw: dict[str, Any]
) -> None:
    """The control plane: status, mode, phase, history."""
    changed_status = ChangeEnvelope[MigrationStatus]

    @router.get("/cache/migration/status", response_model=Envelope[MigrationStatus], **kw)
    def status() -> dict[str, Any]:
        """Migration mode, phase, flags, counters and history."""
        return _ok(facade_provider().get_migration_status())

    @router.post("/cache/migration/enable", response_model=changed_status, **kw)
    def enable(request: Request, reason: ReasonParam = "") -> dict[str, Any]:
        """Turn migration mode on: traffic obeys the configured phase."""
        facade = facade_provider()
        changed = not facade.is_migration_mode_enabled()
        facade.enable_migration_mode(actor=_actor(request), reason=reason)
        return _change(
            facade, "migration mode " + ("enabled" if changed else "already on"), changed
        )

    @router.post("/cache/migration/disable", response_model=changed_status, **kw)
    def disable(request: Request, reason: ReasonParam = "") -> dict[str, Any]:
        """Instant rollback: migration mode off, legacy cache only, phase LEGACY_ONLY."""
        facade = facade_provider()
        changed = facade.is_migration_mode_enabled() or facade.phase != MigrationPhase.LEGACY_ONLY
        facade.disable_migration_mode(actor=_actor(request), reason=reason)
        return _change(
            facade, "migration mode " + ("disabled" if changed else "already off"), changed
        )

    @router.post(
        "/cache/migration/phase",
        response_model=changed_status,
        dependencies=kw["dependencies"],
        responses=PHASE_ERROR_RESPONSES,
    )
    def phase(
        request: Request, phase: PhaseParam, force: ForceParam = False, reason: ReasonParam = ""
    ) -> dict[str, Any]:
        """Move one phase forward (gated unless forced) or any number of phases back."""
        facade = facade_provider()
        message, changed = set_phase(facade, phase, _actor(request), reason, force)
        return _change(facade, message, changed)

    @router.get("/cache/migration/history", response_model=Envelope[list[HistoryItem]], **kw)
    def history(limit: LimitParam = 1_000) -> dict[str, Any]:
        """The audit history of phase and mode changes, oldest first."""
        return _ok(facade_provider().get_migration_history()[-limit:])


def _add_cache_routes(
    router: APIRouter, facade_provider: FacadeProvider, kw: dict[str, Any]
) -> None:
    """Cache maintenance: stats, clear, cleanup."""

    @router.get("/cache/signature/stats", response_model=Envelope[dict[str, Any]], **kw)
    def stats() -> dict[str, Any]:
        """Cache and migration counters (numbers; rates in [0, 1])."""
        return _ok(facade_provider().get_cache_stats())

    @router.post("/cache/signature/clear", response_model=Envelope[ClearData], **kw)
    def clear(request: Request) -> dict[str, Any]:
        """Empty the main store of every cache."""
        count = facade_provider().clear()
        log.info("[SIGNATURE_CACHE] cleared %d entries (actor=%s)", count, _actor(request))
        return _ok({"cleared_count": count})

    @router.post("/cache/signature/cleanup", response_model=Envelope[CleanupData], **kw)
    def cleanup(request: Request) -> dict[str, Any]:
        """Remove expired entries."""
        count = facade_provider().cleanup_expired()
        log.info("[SIGNATURE_CACHE] removed %d expired entries (actor=%s)", count, _actor(request))
        return _ok({"cleaned_count": count})


def _add_data_plane(router: APIRouter, facade_provider: FacadeProvider, kw: dict[str, Any]) -> None:
    """The sidecar routes: write and look up signatures over HTTP."""

    @router.put("/cache/signature", response_model=Envelope[WriteResult], **kw)
    def put_signature(body: SignatureWrite) -> dict[str, Any]:
        """Cache a signature for a thinking text (`cached` is false for an invalid signature)."""
        facade = facade_provider()
        cached = facade.cache_signature(
            body.thinking_text,
            body.signature,
            body.model,
            body.owner_id,
            scope=body.scope,
            conversation_id=body.conversation_id,
        )
        return _ok({"cached": cached})

    @router.post("/cache/signature/lookup", response_model=Envelope[LookupResult], **kw)
    def lookup(body: LookupRequest) -> dict[str, Any]:
        """The signature cached for a thinking text, read as the current phase reads."""
        found = facade_provider().get_cached_signature(
            body.thinking_text,
            body.owner_id,
            model=body.model,
            scope=body.scope,
            conversation_id=body.conversation_id,
        )
        return _ok({"hit": found is not None, "signature": found})


def set_phase(
    facade: CacheFacade, requested: str, actor: str, reason: str, force: bool
) -> tuple[str, bool]:
    """Apply a phase change for `actor`: (message, changed), or raise the ApiError refusing it."""
    try:
        target = parse_phase(requested)
    except PhaseError:
        error = f"unknown migration phase {requested!r}"
        body = PhaseErrorBody(error=error, valid_phases=list(VALID_PHASE_NAMES))
        raise ApiError(400, body) from None
    current = facade.phase
    if not facade.is_migration_mode_enabled():
        # The replaced API answered success here while traffic stayed on legacy: refuse instead.
        hint = "POST /cache/migration/enable first"
        raise _conflict("migration_disabled", "migration mode is off", current, target, hint=hint)
    try:
        check_transition(current, target)
    except PhaseTransitionError as exc:
        raise _conflict("illegal_transition", str(exc), current, target) from None
    try:
        facade.set_migration_phase(target, actor=actor, reason=reason, force=force)
    except GateRefusedError as exc:
        error = f"promotion to {target.name} refused by the gate"
        raise _conflict("gate_refused", error, current, target, exc.failed_rules) from None
    except PhaseTransitionError:
        # E.g. the new cache cannot be built: its text (paths, errors) stays in the server log.
        error_id = new_error_id()
        log.warning("[CACHE_MIGRATION] promotion refused (%s)", error_id, exc_info=True)
        error = f"promotion to {target.name} refused by the server (see its log, {error_id})"
        raise _conflict("promotion_refused", error, current, target) from None
    if target == current:
        return f"migration phase already {target.name}", False
    return f"migration phase {current.name} -> {target.name}", True


def _conflict(
    code: str,
    error: str,
    current: MigrationPhase,
    target: MigrationPhase,
    failed_rules: list[str] | tuple[str, ...] = (),
    hint: str | None = None,
) -> ApiError:
    body = ConflictBody.model_validate(
        {
            "error": error,
            "code": code,
            "current_phase": current.name,
            "requested_phase": target.name,
            "failed_rules": list(failed_rules),
            "hint": hint,
        }
    )
    return ApiError(409, body)


def tokens_from_env() -> TokenSet:
    """The environment's tokens; none configured is a ConfigError (the API never runs open)."""
    tokens = load_tokens(os.environ)
    if tokens is None:
        raise ConfigError("no API token: set SIGCACHE_API_TOKEN or SIGCACHE_API_TOKEN_FILE")
    return tokens


def create_app(
    facade: CacheFacade | None = None,
    *,
    token: str | TokenSet | None = None,
    data_plane: bool = True,
    metrics: bool = True,
) -> FastAPI:
    """A FastAPI app serving the router (and `/metrics`); `facade` defaults to the process one."""
    tokens = TokenSet.single(token) if isinstance(token, str) else token
    provider: FacadeProvider
    if facade is None:
        from sigcache.signature_cache import get_cache_facade  # the module API owns the default

        provider = get_cache_facade
    else:
        fixed = facade

        def provider() -> CacheFacade:
            return fixed

    app = FastAPI(
        title="sigcache",
        version=__version__,
        description="Control API of the sigcache thinking-signature cache and its migration.",
    )
    app.include_router(create_router(provider, tokens=tokens, data_plane=data_plane))
    if metrics:
        from sigcache.metrics import MetricsPublisher, metrics_router

        # Collected on each scrape (no thread): counts only, like /healthz unauthenticated so
        # an operator's Prometheus can scrape every worker.
        publisher = MetricsPublisher(
            provider, sync_provider=lambda: getattr(provider(), "phase_sync", None)
        )
        app.include_router(metrics_router(publisher))
    return app
