"""Pydantic bodies of the HTTP control API: requests, `{"success": true, "data": ...}`, errors."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_PHASE_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_SIGNATURE_LENGTH",
    "MAX_TEXT_LENGTH",
    "BackfillConflictBody",
    "BackfillData",
    "ChangeEnvelope",
    "CleanupData",
    "ClearData",
    "ConflictBody",
    "Envelope",
    "ErrorBody",
    "Health",
    "HistoryItem",
    "LookupRequest",
    "LookupResult",
    "MigrationStatus",
    "PhaseErrorBody",
    "ServerErrorBody",
    "SignatureWrite",
    "ValidationErrorBody",
    "ValidationErrorItem",
    "WriteResult",
]

# Bounds on what a client may send; beyond them a request is a 422, never work for the server.
MAX_PHASE_LENGTH = 64  # characters; the longest phase name is 13
MAX_REASON_LENGTH = 500  # characters kept in the audit history
MAX_TEXT_LENGTH = 1_048_576  # characters of thinking text (real ones run to ~6,000)
MAX_SIGNATURE_LENGTH = 65_536  # characters (real Gemini signatures are ~6,200)
MAX_ID_LENGTH = 256  # characters of a model name or owner id

DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    """A successful answer."""

    success: Literal[True] = True
    data: DataT


class ChangeEnvelope(Envelope[DataT], Generic[DataT]):
    """A successful control-plane change: what happened, and the state after it."""

    message: str = Field(description="One line saying what changed (or that nothing did).")
    changed: bool = Field(description="False when the server was already in the asked state.")


class HistoryItem(BaseModel):
    """One audited phase or mode change."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    t: float = Field(description="Epoch seconds of the change.")
    kind: str = Field(description="'phase', 'mode' or 'backfill'.")
    from_phase: str = Field(alias="from", description="Phase before the change.")
    to: str = Field(description="Phase after the change.")
    mode_enabled: bool = Field(description="Migration mode after the change.")
    actor: str = Field(description="Who made the change (an API token's name, never the token).")
    reason: str = ""
    forced: bool = False
    verdict: dict[str, Any] | None = Field(None, description="The gate verdict relied on.")


class MigrationStatus(BaseModel):
    """Migration mode, phase, flags, counters and history (further keys may appear)."""

    model_config = ConfigDict(extra="allow")

    migration_mode_enabled: bool
    phase: str = Field(description="The configured phase.")
    effective_phase: str = Field(description="The phase traffic obeys (LEGACY_ONLY while off).")
    runtime_override: bool | None
    env_var: str
    flags: dict[str, Any]
    dual_write_stats: dict[str, Any]
    read_stats: dict[str, Any]
    history: list[HistoryItem]


class BackfillData(BaseModel):
    """What a backfill copied from the legacy cache into the new one (all three stores)."""

    model_config = ConfigDict(extra="allow")

    supported: bool = Field(description="False: the new cache takes no explicit expiry yet.")
    seen: int
    copied: int
    replaced: int
    skipped_expired: int
    skipped_present: int
    failed: int
    chunks: int
    aborted: bool
    error: str | None = Field(None, description="The last failure's exception type.")
    started_at: float
    finished_at: float | None


class ClearData(BaseModel):
    """Entries removed by a clear."""

    cleared_count: int


class CleanupData(BaseModel):
    """Expired entries removed by a cleanup."""

    cleaned_count: int


class Health(BaseModel):
    """Liveness: the server answers."""

    status: Literal["ok"] = "ok"


class SignatureWrite(BaseModel):
    """A signature to cache for a thinking text."""

    model_config = ConfigDict(extra="forbid")

    thinking_text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    signature: str = Field(min_length=1, max_length=MAX_SIGNATURE_LENGTH)
    model: str | None = Field(None, max_length=MAX_ID_LENGTH)
    owner_id: str | None = Field(None, max_length=MAX_ID_LENGTH)
    # Provenance (issue 13): the provider/credential scope and the conversation it belongs to.
    scope: str | None = Field(None, max_length=MAX_ID_LENGTH)
    conversation_id: str | None = Field(None, max_length=MAX_ID_LENGTH)


class LookupRequest(BaseModel):
    """A thinking text whose signature is wanted (for a model family and scope, if given)."""

    model_config = ConfigDict(extra="forbid")

    thinking_text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    owner_id: str | None = Field(None, max_length=MAX_ID_LENGTH)
    model: str | None = Field(None, max_length=MAX_ID_LENGTH)
    scope: str | None = Field(None, max_length=MAX_ID_LENGTH)
    conversation_id: str | None = Field(None, max_length=MAX_ID_LENGTH)


class WriteResult(BaseModel):
    """Whether the cache took the signature (an invalid signature is refused, not an error)."""

    cached: bool


class LookupResult(BaseModel):
    """The cached signature, or a miss."""

    hit: bool
    signature: str | None


class ErrorBody(BaseModel):
    """A refused or failed request."""

    success: Literal[False] = False
    error: str = Field(description="One line saying why.")


class PhaseErrorBody(ErrorBody):
    """An unknown phase name."""

    valid_phases: list[str]


class ConflictBody(ErrorBody):
    """A phase change the migration rules or the gate refuse."""

    code: Literal["illegal_transition", "gate_refused", "promotion_refused", "migration_disabled"]
    current_phase: str
    requested_phase: str
    failed_rules: list[str] = Field(default_factory=list, description="Gate rules that failed.")
    hint: str | None = None


class BackfillConflictBody(ErrorBody):
    """A backfill that cannot run now (mode off, wrong phase, one already running)."""

    code: Literal["backfill_refused"] = "backfill_refused"
    effective_phase: str
    hint: str | None = None


class ValidationErrorItem(BaseModel):
    """One malformed parameter or body field."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorBody(ErrorBody):
    """Malformed parameters or body."""

    errors: list[ValidationErrorItem]


class ServerErrorBody(ErrorBody):
    """An internal error; the id finds the details in the server log."""

    error_id: str
