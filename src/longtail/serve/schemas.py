"""Request and response bodies (pydantic): the OpenAPI schema and the edge validation in one place.

Limits live here so the spec documents them: ``k`` <= ``MAX_K``, batches <= ``MAX_BATCH`` rows,
ids <= 128 characters, text <= 10,000. Strings must be valid Unicode without control characters
(JSON allows lone surrogates, which SQLite cannot store).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_K = 100
MAX_BATCH = 1000
MAX_ITEM_BATCH = 256
MAX_PAGE = 100


def _clean(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _no_control(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return _clean(value)


Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_control)]
Title = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_clean)]
Text = Annotated[str, Field(max_length=10_000), AfterValidator(_clean)]
Strict = ConfigDict(extra="forbid")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"user_id": "42", "k": 10, "exclude_seen": True}]})

    user_id: Id
    k: int = Field(10, ge=1, le=MAX_K, description=f"list length, 1..{MAX_K}")
    exclude_seen: bool = Field(True, description="leave out items already in the user's history")
    rerank: Literal["none", "mmr", "dpp", "calibrated", "xquad"] | None = Field(
        None, description="re-rank the list (longtail.rerank) with `diversity` (default 0.3); "
                          "'none': the model's order even for users without history")
    diversity: float | None = Field(
        None, ge=0.0, le=1.0, description="re-ranking knob: 0 = the model's order, 1 = diversity / "
                                          "calibration only; given alone, re-ranks with MMR")


class RecommendedItem(BaseModel):
    item_id: str
    title: str
    score: float
    rank: int
    source: Literal["model", "text", "popular"] = Field(
        description="model: ranked by the model; text: an item the model cannot score, matched by "
                    "text to the user's history; popular: user without history")
    explanation: str
    because: str | None = Field(None, description="the history item the explanation refers to")


class RecommendResponse(BaseModel):
    user_id: str
    known_user: bool
    history_size: int
    model: str
    artifact: str
    items: list[RecommendedItem]


class SimilarItem(BaseModel):
    item_id: str
    title: str
    score: float = Field(description="cosine similarity of the item texts' embeddings")


class SimilarResponse(BaseModel):
    item_id: str
    items: list[SimilarItem]


class HistoryEntry(BaseModel):
    item_id: str
    title: str
    timestamp: int
    source: Literal["train", "event"]


class ProfileResponse(BaseModel):
    user_id: str
    history_size: int
    train_items: int
    event_items: int
    offset: int
    limit: int
    history: list[HistoryEntry] = Field(description="most recent first, one page")


class ItemIn(BaseModel):
    model_config = Strict

    item_id: Id
    title: Title
    text: Text = Field("", description="the richest description available")
    categories: list[Annotated[str, Field(max_length=200), AfterValidator(_clean)]] = Field(
        default_factory=list, max_length=50)


class ItemBatch(BaseModel):
    model_config = Strict

    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEM_BATCH)


class ItemsCreated(BaseModel):
    added: list[str]
    catalogue_size: int


class EventIn(BaseModel):
    model_config = Strict

    user_id: Id
    item_id: Id
    timestamp: int | None = Field(None, ge=0, le=2**53, description="Unix seconds; default: now")
    event_id: Id | None = Field(None, description="idempotency key: an event_id already stored is not stored again")


class EventBatch(BaseModel):
    model_config = Strict

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)


class EventsStored(BaseModel):
    stored: int
    duplicates: int
    last_seq: int | None


class Health(BaseModel):
    status: Literal["ok"]
    artifact: str
    model: str
    items: int
    users: int
    events: int


class Reloaded(BaseModel):
    artifact: str
    previous: str
    seconds: float


class ErrorBody(BaseModel):
    detail: str | list = Field(description="what was wrong, in words (never a stack trace)")
