"""Error responses shared by the routers' OpenAPI descriptions (what a client can expect and do)."""

from __future__ import annotations

from typing import Any

from longtail.serve.schemas import ErrorBody

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid or revoked X-API-Key"},
    403: {"model": ErrorBody, "description": "the key's scope does not allow this endpoint"},
    413: {"model": ErrorBody, "description": "request body over the size limit"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "unknown id"}}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before sending the request again (store faults)",
                                "schema": {"type": "integer"}}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "item id already exists"}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "headers": _RETRY_AFTER,
          "description": "this server cannot embed new items for this artifact, or the store cannot be "
                         "written now (nothing was stored; retry after Retry-After)"}}
EVENT_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "an event_id already used (stored, or earlier in the batch) for "
                                             "another user_id, item_id or timestamp; nothing was stored"}}
STORE_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "headers": _RETRY_AFTER,
          "description": "the store cannot be written now (full, read-only, I/O error, busy); nothing from the "
                         "request was stored: send it again after Retry-After seconds"}}
