"""Where datasets are found: the shipped default, ``../shared/data/*``, ``$LONGTAIL_DATA`` or a path."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from longtail.errors import LongtailError

DEFAULT_DATASET = "ml-latest-small"


def shipped_root() -> Path:
    """Folder of the datasets shipped inside the package."""
    return Path(str(resources.files("longtail") / "datasets"))


def dataset_dirs() -> list[Path]:
    """Folders searched for named datasets, in order: ``$LONGTAIL_DATA`` (os.pathsep-separated),
    the package's shipped datasets, then ``shared/data`` beside or above the working directory and
    beside the source checkout."""
    roots: list[Path] = [Path(p) for p in os.environ.get("LONGTAIL_DATA", "").split(os.pathsep) if p]
    roots.append(shipped_root())
    here = Path(__file__).resolve()
    candidates = [Path.cwd() / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    if len(here.parents) > 4:  # src/longtail/data/registry.py inside a checkout
        candidates.append(here.parents[4] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in {r.resolve() for r in roots}:
            roots.append(candidate)
    return roots


def _is_dataset(path: Path) -> bool:
    return path.is_dir() and any(path.glob("interactions.*")) and any(path.glob("items.*"))


def available_datasets() -> dict[str, Path]:
    """Every named dataset found, first root wins on a name clash."""
    found: dict[str, Path] = {}
    for root in dataset_dirs():
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if _is_dataset(child) and child.name not in found:
                    found[child.name] = child
    return found


def resolve_dataset(name_or_path: str | Path) -> Path:
    """A dataset folder from a name (shipped or shared) or a path; a clear error otherwise."""
    path = Path(name_or_path).expanduser()
    if _is_dataset(path):
        return path
    found = available_datasets()
    if str(name_or_path) in found:
        return found[str(name_or_path)]
    names = ", ".join(sorted(found)) or "none"
    raise LongtailError(
        f"dataset {str(name_or_path)!r} not found: not a folder with interactions.* and items.*, "
        f"and not a known name (known: {names})"
    )
