"""The shipped chosen params (``datasets/ml-latest-small/chosen.json``, what ``make demo`` evaluates
and trains with instead of tuning) must still be what today's code would have searched: an edited
grid, default, selection rule, fallback grid, dataset or encoder without ``make chosen`` fails
here. Cheap: nothing is fitted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from longtail.eval import chosen
from longtail.models.registry import model_class

ROOT = Path(__file__).resolve().parents[2]
DATASET = "ml-latest-small"
STALE = f"stale: regenerate with `{chosen.REGENERATE}` (full tuning on valid, ~10-15 min on 2 cores)"


def _shipped() -> dict[str, Any]:
    return json.loads(chosen.shipped_path(DATASET).read_text())


def _normalised(value: Any) -> Any:
    """As the file stores it (JSON: tuples become lists, odd values their repr)."""
    return json.loads(json.dumps(value, default=repr))


def test_fingerprints_match_the_code() -> None:
    payload = _shipped()
    assert payload["kind"] == chosen.KIND
    now = chosen.context(DATASET, **payload["context"]["split"])
    assert payload["context"] == _normalised(now), f"settings changed; {STALE}"
    for name, entry in payload["models"].items():
        assert entry["grid"] == _normalised(chosen.tuning_description(name)), f"{name}: grid/defaults changed; {STALE}"
        assert entry["fingerprint"] == chosen.fingerprint(name, now), f"{name}: {STALE}"
    assert chosen.stale_models(chosen.shipped_path(DATASET)) == {}


def _on_grid(description: dict[str, Any], params: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys of ``params`` (a composite's in ``part__param`` form) whose value is off its grid."""
    off = [prefix + key for key, values in description["grid"].items()
           if _normalised(params.get(prefix + key)) not in _normalised(values)]
    for key, part in description["parts"].items():
        off += _on_grid(part, params, f"{prefix}{key}__")
    return off


def test_every_chosen_point_lies_on_its_grid() -> None:
    for name, entry in _shipped()["models"].items():
        assert _on_grid(entry["grid"], entry["params"]) == [], name
        assert entry["fallback"].get("threshold", None) in chosen.context(DATASET)["fallback_grid"]


def test_the_demo_models_are_all_shipped() -> None:
    match = re.search(r"^DEMO_MODELS \?= (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match is not None
    missing = set(match.group(1).strip().split(",")) - set(_shipped()["models"])
    assert not missing, f"make demo evaluates {sorted(missing)} without shipped params; {STALE}"


@pytest.mark.parametrize("model", ["ease", "neural-ips"])
def test_a_grid_edit_makes_the_file_stale(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is not vacuous: one more grid value in a part makes the part's users stale too."""
    klass = model_class(model)
    first = next(iter(klass.param_grid))
    monkeypatch.setattr(klass, "param_grid", {**klass.param_grid, first: [*klass.param_grid[first], 12345.0]})
    stale = chosen.stale_models(chosen.shipped_path(DATASET))
    assert "longtail" in stale and stale["longtail"] == "grid or defaults changed"
    assert (model in stale) == (model in _shipped()["models"])
