"""Parameters chosen on valid, shipped as a file (``datasets/<name>/chosen.json``) so that the demo
can skip the grid search; each entry carries a fingerprint of what produced it, so a stale file is
caught by a test (``tests/eval/test_chosen_params.py``) instead of silently demoing old choices.

The fingerprint of a model covers what decides its choice without fitting anything: the longtail
version, the model's grid, selection rule, reference part and default parameters (its parts', and
theirs, recursively: a composite's parts are tuned first), the text fallback's grid, the tuning
metric, the dataset's files (sha256), the split settings, the item-text template and the encoder.
Regenerate with ``make chosen`` (``longtail evaluate ... --write-chosen PATH``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from longtail.common.files import sha256_files
from longtail.data.io import find_table
from longtail.data.registry import resolve_dataset, shipped_root
from longtail.errors import ConfigError

KIND = "longtail-chosen-params"
METRIC = "ndcg@20"  # what ``tuning.tune`` selects on (its default)
REGENERATE = "make chosen"


def shipped_path(dataset: str) -> Path:
    """Where the params chosen on valid for a shipped dataset live (inside the package)."""
    return shipped_root() / dataset / "chosen.json"


def tuning_description(name: str) -> dict[str, Any]:
    """What ``tuning.tune`` reads to choose ``name``'s params: grid, rule, defaults, and the same
    for each part (tuned on its own first, under its own registry name)."""
    from longtail.models.registry import model_class

    klass = model_class(name)
    model = klass()
    return {"model": name, "grid": klass.param_grid, "selection": klass.selection,
            "reference_part": klass.reference_part, "defaults": model.spec(),
            "parts": {key: tuning_description(part.name) for key, part in model.parts().items()}}


def context(dataset: str, *, protocol: str = "temporal", min_rating: float = 4.0,
            keep_seen: bool = False) -> dict[str, Any]:
    """Everything outside the models that the choice depends on (no dataset is loaded)."""
    import longtail
    from longtail.pipeline import FALLBACK_GRID
    from longtail.text import DEFAULT_TEMPLATE, TextEncoder

    directory = resolve_dataset(dataset)
    files = [find_table(directory, "interactions"), find_table(directory, "items")]
    return {"longtail": longtail.__version__, "metric": METRIC, "fallback_grid": list(FALLBACK_GRID),
            "dataset": {"name": directory.name, "sha256": sha256_files(files)},
            "split": {"protocol": protocol, "min_rating": min_rating, "keep_seen": keep_seen},
            "template": DEFAULT_TEMPLATE, "encoder": TextEncoder().fingerprint}


def fingerprint(name: str, settings: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``name``'s tuning description and ``settings``."""
    text = json.dumps({"model": tuning_description(name), "context": settings}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def chosen_payload(metrics: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The chosen file's content from an ``evaluate`` payload (every model must have been tuned)."""
    models: dict[str, Any] = {}
    for name, entry in metrics["models"].items():
        if "+" in name and not name.startswith("fusion("):
            raise ConfigError(f"--write-chosen: {name!r} is re-ranked; write chosen params without --rerank")
        if not entry.get("tuning"):
            raise ConfigError(f"--write-chosen: {name!r} was not tuned (drop --params-from / --no-tune)")
        models[name] = {"params": entry["params"], "fallback": entry.get("fallback", {}),
                        f"valid_{METRIC}": next((t[f"valid_{METRIC}"] for t in entry["tuning"]
                                                  if t["params"] == entry["params"]), None),
                        "grid": tuning_description(name), "fingerprint": fingerprint(name, settings)}
    return {"kind": KIND, "regenerate": REGENERATE, "context": settings, "models": models}


def write_chosen(path: Path, metrics: dict[str, Any], settings: dict[str, Any]) -> Path:
    """Write the chosen file (sorted, indented: reviewable diffs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chosen_payload(metrics, settings), indent=1, sort_keys=True, default=repr) + "\n")
    return path


def stale_models(path: Path) -> dict[str, str]:
    """Models of a chosen file whose fingerprint no longer matches the code -> why; empty when
    the file is current (a metrics.json, which carries no fingerprint, gives nothing)."""
    payload = json.loads(path.read_text())
    if payload.get("kind") != KIND:
        return {}
    split = payload["context"]["split"]
    now = context(payload["context"]["dataset"]["name"], **split)
    stale: dict[str, str] = {}
    for name, entry in payload["models"].items():
        if entry["fingerprint"] != fingerprint(name, now):
            why = "grid or defaults changed" if entry["grid"] != json.loads(
                json.dumps(tuning_description(name), default=repr)) else "settings changed"
            stale[name] = why
    return stale
