"""Request and response bodies (pydantic): the OpenAPI schema and the edge validation in one place.

Limits live here so the spec documents them: ``k`` <= ``MAX_K``, batches <= ``MAX_BATCH`` rows,
ids <= 128 characters, text <= 10,000. Strings must be valid Unicode (JSON allows lone surrogates,
which SQLite cannot store) without control characters: C0 (NUL, ESC...), DEL and C1 would reach
logs, terminals and other clients' screens as escapes; item text alone may hold ``\n`` and ``\t``.
Ids, titles and categories also refuse invisible format characters (Unicode category Cf: bidi
controls, zero-width spaces and joiners, BOM, soft hyphen): they make two ids that look alike differ,
and a title's bidi override reorders what other clients display around it. Item text refuses the
bidi controls only: zero-width joiners belong to emoji and to Persian and Indic writing, and text is
read by the encoder, not shown as a label. Titles are still the client's text: consumers escape
them (HTML) when they display them (README).
Ids that create a resource read back by URL (a user through events, an item) must also fit one path
segment: no ``/``, and not ``.`` or ``..`` (clients resolve those before sending).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_K = 100
MAX_BATCH = 1000
MAX_ITEM_BATCH = 256
MAX_PAGE = 100
# C0, DEL and C1 (U+0080..U+009F): terminal escapes (ESC, CSI) and invisible line breaks (NEL)
CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)))
TEXT_CONTROL = CONTROL - {"\n", "\t"}
# embeddings, overrides, isolates and marks: they reorder the display of the text around them
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def _clean(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _printable(value: str) -> str:
    if not CONTROL.isdisjoint(value):
        raise ValueError("must not contain control characters")
    hidden = next((c for c in value if unicodedata.category(c) == "Cf"), None)
    if hidden is not None:
        raise ValueError(f"must not contain invisible format characters (found U+{ord(hidden):04X}; bidi "
                         "controls, zero-width spaces and joiners, BOM and soft hyphens are refused)")
    return _clean(value)


def _text(value: str) -> str:
    if not TEXT_CONTROL.isdisjoint(value):
        raise ValueError("must not contain control characters other than newline and tab")
    hidden = next((c for c in value if c in BIDI), None)
    if hidden is not None:
        raise ValueError(f"must not contain invisible bidi controls (found U+{ord(hidden):04X}): they reorder "
                         "how the text around them is displayed")
    return _clean(value)


def _title(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return _printable(value)


def _no_control(value: str) -> str:
    value = _printable(value)
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    return value


def _path_segment(value: str) -> str:
    """A new user or item is read back at ``/users/{id}`` / ``/items/{id}``: the id must survive
    as one percent-encoded path segment (Starlette matches the decoded path, so ``%2F`` is a ``/``)."""
    if "/" in value:
        raise ValueError("must not contain '/' (it could not be read back at /users/{id} or /items/{id})")
    if value in {".", ".."}:
        raise ValueError("must not be '.' or '..' (clients resolve them as path segments)")
    return value


Id = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_control)]
# an id that names a new user or item, which the API later reads at /users/{id} or /items/{id}
PathId = Annotated[Id, AfterValidator(_path_segment)]
Title = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_title)]
Text = Annotated[str, Field(max_length=10_000), AfterValidator(_text)]
Category = Annotated[str, Field(max_length=200), AfterValidator(_printable)]
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
    explain: bool = Field(True, description="say why each item is there (the flagship's reasons are measured "
                                            "by removal and cost ~3x its scoring); false: explanation null")


class RecommendedItem(BaseModel):
    item_id: str
    title: str
    score: float
    rank: int
    source: Literal["model", "text", "popular"] = Field(
        description="model: ranked by the model; text: an item the model cannot score, matched by "
                    "text to the user's history; popular: user without history")
    explanation: str | None = Field(description="why the item is there (null when the request said explain=false)")
    because: str | None = Field(None, description="the history item the explanation refers to (null unless "
                                                  "the key has the profile scope)")


class RecommendResponse(BaseModel):
    user_id: str
    known_user: bool | None = Field(None, description="whether the user has a history (null unless the key "
                                                      "has the profile scope)")
    history_size: int | None = Field(None, description="items in the user's live history (null unless the key "
                                                       "has the profile scope)")
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


class Keyword(BaseModel):
    keyword: str
    score: float


class GenreShare(BaseModel):
    genre: str
    share: float


class InterestOut(BaseModel):
    size: int
    item_ids: list[str]
    representative_id: str
    representative_title: str
    keywords: list[Keyword]
    genre: str | None


class Portrait(BaseModel):
    """``longtail.profile`` of the live history (the artifact's items; ``left_out``: items posted since)."""

    n_items: int
    activity: Literal["light", "regular", "heavy"]
    activity_percentile: float | None = Field(description="share of the artifact's users with a shorter history")
    keywords: list[Keyword]
    keyword_method: str
    genres: list[GenreShare] = Field(description="genre / category shares, largest first (empty: none in the catalogue)")
    mix: dict[str, float] = Field(description="share of the history in head / tail / cold items")
    interests: list[InterestOut] = Field(description="groups of similar history items (k-means over their vectors)")
    left_out: int = Field(description="history items posted after the artifact, not in this portrait")


class ProfileResponse(BaseModel):
    user_id: str
    history_size: int
    train_items: int
    event_items: int
    offset: int
    limit: int
    history: list[HistoryEntry] = Field(description="most recent first, one page")
    portrait: Portrait | None = Field(default=None, description="with ?portrait=true: interests, keywords, genres, "
                                      "head/tail/cold mix, activity (None: not asked, or no item of the history "
                                      "is in the artifact)")


class ItemIn(BaseModel):
    model_config = Strict

    item_id: PathId = Field(description="read back at /items/{item_id}: no '/', not '.' or '..', no control "
                                        "characters, no outer whitespace")
    title: Title = Field(description="not blank; no control or invisible format characters "
                                         "(bidi, zero-width); clients escape it (HTML) to display it")
    text: Text = Field("", description="the richest description available; newlines and tabs allowed, "
                                        "bidi controls refused")
    categories: list[Category] = Field(default_factory=list, max_length=50,
                                      description="no control or invisible format characters")


class ItemBatch(BaseModel):
    model_config = Strict

    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEM_BATCH)


class ItemsCreated(BaseModel):
    added: list[str] = Field(description="the item ids stored (durably, all of the batch)")
    catalogue_size: int
    indexed: bool = Field(True, description="false: stored, but the live catalogue could not take them now; "
                                            "the next refit or restart adds them (do not send them again)")
    reason: str | None = Field(None, description="why they are not indexed, in words (null when indexed)")


class EventIn(BaseModel):
    model_config = Strict

    user_id: PathId = Field(description="a new id starts a new user, read back at /users/{user_id}/profile: "
                                        "no '/', not '.' or '..', no control or invisible characters, no outer whitespace")
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
    model_updated: bool | None = Field(True, description="false: some stored events could not be learned by "
                                                         "the live model now; the next refit learns them (do not "
                                                         "send them again). null: not known yet (applied later)")
    not_applied: int = Field(0, description="how many of the stored events the live model has not learned")
    reason: str | None = Field(None, description="why, in words (null when model_updated)")
    applied: bool = Field(True, description="true: applied before this answer; false: stored and queued, applied "
                                            "in the background (a server run with --apply-every-ms)")
    apply_within_ms: int | None = Field(None, description="when queued: the events reach recommendations within "
                                                          "this many ms plus the duration of up to two background "
                                                          "applies (longtail_apply_seconds in /metrics)")


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
