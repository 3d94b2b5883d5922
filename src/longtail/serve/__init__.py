"""The HTTP service: FastAPI app, SQLite event store, API keys, live items and events.

Imports FastAPI lazily so ``longtail.serve.store`` / ``keys`` / ``bundle`` work without the
``serve`` extra (``longtail train`` and ``longtail keys`` need no web stack).
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from longtail.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'longtail.serve' has no attribute {name!r}")
