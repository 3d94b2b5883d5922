"""What the service refuses, in words a client can act on: each kind maps to one HTTP status
(``app.STATUS``). Reasons never carry exception text, SQL or paths: those go to the server log."""

from __future__ import annotations

from pathlib import Path

from longtail.errors import LongtailError
from longtail.models.artifact import ArtifactError
from longtail.serve.store import StoreUnavailable


class NotFound(LongtailError):
    """An unknown user or item (HTTP 404)."""


class Conflict(LongtailError):
    """An item id that already exists, or an event_id reused for another event (HTTP 409)."""


class Unavailable(LongtailError):
    """The server cannot do this now or with this artifact (HTTP 503); ``retry_after`` (seconds)
    when waiting may help, sent as ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReloadRunning(Conflict):
    """``POST /admin/reload`` while a reload runs (HTTP 409, at once)."""


RELOAD_RUNNING = "a reload is already running; send it again once that one has finished"


class ReloadFailed(Unavailable):
    """The artifact version ``target`` cannot be loaded; the old state keeps serving."""

    def __init__(self, message: str, target: Path) -> None:
        super().__init__(message)
        self.target = target


def not_stored(exc: StoreUnavailable) -> Unavailable:
    return Unavailable(f"{exc}; nothing from this request was stored, send it again later",
                       retry_after=exc.retry_after)


def why_unloadable(exc: BaseException) -> str:
    """A reason in words for a version that fails to load (the exception's text names paths)."""
    text = str(exc).lower()
    if isinstance(exc, ArtifactError) and "checksum" in text:
        return "its files do not match their checksums (corrupted or modified)"
    if isinstance(exc, FileNotFoundError) or "no manifest" in text or "missing" in text:
        return "a file of it is missing"
    return "its files are damaged or incompatible with this server (details in the server log)"
