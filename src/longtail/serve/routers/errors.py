"""Error responses shared by the routers' OpenAPI descriptions."""

from __future__ import annotations

from typing import Any

from longtail.serve.schemas import ErrorBody

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, invalid or revoked X-API-Key"},
    403: {"model": ErrorBody, "description": "the key's scope does not allow this endpoint"},
    413: {"model": ErrorBody, "description": "request body over the size limit"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "unknown id"}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "item id already exists"}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorBody, "description": "this server cannot embed new items for this artifact"}}
