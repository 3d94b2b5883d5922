"""Shared FastAPI dependencies: the service object and the scope each endpoint needs.

The key itself is checked before the request reaches FastAPI (``middleware.Admission``, which
stores its ``Verdict`` in ``request.state.key``); these dependencies only compare scopes, on the
event loop, so an authorisation costs no worker thread. ``api_key_header`` stays declared so that
the OpenAPI schema documents the header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from longtail.serve.keys import MISSING, Verdict, allows
from longtail.serve.service import Service

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="A key from `longtail keys create --scope read|profile|write|admin`: read for recommendations "
                "and items, profile for histories, write for events and items, admin for /admin/*.")


async def get_service(request: Request) -> Service:
    """The app's service (async: a sync dependency would take a worker thread per request)."""
    return request.app.state.service


def _require(needed: str) -> Callable[..., Awaitable[Verdict]]:
    async def check(request: Request, key: Annotated[str | None, Security(api_key_header)] = None) -> Verdict:
        verdict: Verdict | None = getattr(request.state, "key", None)
        if verdict is None or not verdict.ok:  # no admission ran (an app built without it): refuse
            raise HTTPException(401, MISSING if not key else "API key not checked",
                                headers={"WWW-Authenticate": "ApiKey"})
        if not allows(str(verdict.scope), needed):
            raise HTTPException(403, f"this endpoint needs a key with the {needed} scope; yours is {verdict.scope}")
        return verdict

    return check


ServiceDep = Annotated[Service, Depends(get_service)]
ReadKey = Depends(_require("read"))
ProfileKey = Depends(_require("profile"))
WriteKey = Depends(_require("write"))
AdminKey = Depends(_require("admin"))
ReadGrant = Annotated[Verdict, ReadKey]
WriteGrant = Annotated[Verdict, WriteKey]
