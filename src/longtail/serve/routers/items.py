"""``GET /items/{item_id}``, ``GET /items/{item_id}/similar``, ``POST /items``."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Body, Path, Query

from longtail.serve.deps import ReadKey, ServiceDep, WriteKey
from longtail.serve.ranking import similar
from longtail.serve.routers.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND, UNAVAILABLE
from longtail.serve.schemas import MAX_K, ItemBatch, ItemIn, ItemsCreated, SimilarItem, SimilarResponse
from longtail.serve.faults import NotFound
from longtail.serve.service import Service

router = APIRouter(tags=["items"])
# one path segment, percent-encoded by the client (quote(id, safe="")); POST /items refuses ids
# that cannot be one ('/', '.', '..'), so every posted item can be asked for here
ItemId = Annotated[str, Path(min_length=1, max_length=128,
                             description="catalogue item id, percent-encoded as one path segment")]


@router.get("/items/{item_id}/similar", response_model=SimilarResponse, dependencies=[ReadKey],
            responses={**AUTH_ERRORS, **NOT_FOUND})
async def get_similar(item_id: ItemId, service: ServiceDep,
                      k: Annotated[int, Query(ge=1, le=MAX_K, description=f"1..{MAX_K}")] = 10) -> SimilarResponse:
    """The ``k`` catalogue items whose text embeddings are closest to this item's (exact search
    over every item, posted ones included)."""
    # an exact search over the whole catalogue: one of the computations the limiter takes turns for
    return await run_sync(partial(similar_to, service, item_id, k), limiter=service.compute_limiter)


def similar_to(service: Service, item_id: str, k: int) -> SimilarResponse:
    """The answer of ``GET /items/{item_id}/similar``, without HTTP."""
    state = service.state
    index = state.catalogue.index_of(item_id)
    if index is None or index >= len(state.catalogue):
        raise NotFound(f"unknown item_id {item_id!r}")
    ids, scores = similar(state, index, k)
    catalogue = state.catalogue
    return SimilarResponse(item_id=item_id, items=[
        SimilarItem(item_id=catalogue.ids[i], title=catalogue.titles[i], score=float(s))
        for i, s in zip(ids, scores, strict=True)])


@router.post("/items", response_model=ItemsCreated, status_code=201, dependencies=[WriteKey],
             responses={**AUTH_ERRORS, **CONFLICT, **UNAVAILABLE})
def post_items(body: Annotated[ItemIn | ItemBatch, Body()], service: ServiceDep) -> ItemsCreated:
    """Add one item, or ``{"items": [...]}``, to the live catalogue: embedded with the artifact's
    encoder, stored durably, indexed, and recommendable on the next request (no retraining).

    If the live catalogue cannot index a stored batch (an index or model fault), the answer is
    still 201, as the items are stored: ``indexed`` is false with a ``reason``, the catalogue is
    unchanged (no item is half-added, no later id moves), and the next refit or restart adds
    them. Sending them again is refused (409: they exist in the store)."""
    items = body.items if isinstance(body, ItemBatch) else [body]
    return service.add_items(items)
