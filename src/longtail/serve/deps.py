"""Shared FastAPI dependencies: the service object and API-key checks (``X-API-Key``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from longtail.serve.keys import allows
from longtail.serve.service import Service

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="A key from `longtail keys create`; write endpoints need a write key.")


def get_service(request: Request) -> Service:
    return request.app.state.service


def _require(needed: str):  # noqa: ANN202 - a FastAPI dependency
    def check(service: Annotated[Service, Depends(get_service)],
              key: Annotated[str | None, Security(api_key_header)] = None) -> str:
        scope = service.keys.scope_of(key)
        if scope is None:
            message = "missing X-API-Key header" if not key else "invalid or revoked API key"
            raise HTTPException(401, message, headers={"WWW-Authenticate": "ApiKey"})
        if not allows(scope, needed):
            raise HTTPException(403, f"this endpoint needs a {needed} key; yours is {scope}")
        return scope

    return check


ServiceDep = Annotated[Service, Depends(get_service)]
ReadKey = Depends(_require("read"))
WriteKey = Depends(_require("write"))
