"""The service artifact: a fitted model plus everything serving needs, in one atomic artifact.

``longtail train`` writes it with ``models.artifact.save_artifact`` (a new version directory,
checksummed, then one symlink flip), so a running service that reloads never reads half of one.
Contents: the model's own arrays (prefixed ``model.``), the item vectors, the train popularity,
the training positives (the users' histories) as arrays; the id vocabularies and the catalogue
(ids, titles, texts) as JSON files (strings do not fit ``npz`` without pickle); and a manifest with
the model name and params, a fingerprint of the dataset files, the encoder fingerprint and template.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longtail.common.arrays import pack, unpack
from longtail.common.files import sha256_files
from longtail.data.dataset import load_dataset
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError
from longtail.models.artifact import ArtifactError, load_artifact, save_artifact
from longtail.models.base import Recommender
from longtail.models.registry import from_arrays, make_model
from longtail.pipeline import TextFallback
from longtail.text import DEFAULT_TEMPLATE, TextEncoder, embed_items

KIND = "longtail-service"
CATALOGUE = "catalogue.json"
USERS = "users.json"
MODEL_PREFIX = "model."  # the model's own arrays, nested in the artifact's (common.arrays.pack)
FIT_ON = ("all", "train_valid")


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded service artifact (everything in memory; the files may be replaced meanwhile)."""

    manifest: dict[str, Any]
    model: Recommender
    user_ids: list[str]
    item_ids: list[str]
    titles: list[str]
    texts: list[str]
    embeddings: np.ndarray  # (n_items, d) float32, unit rows
    train: Interactions  # the positives the model was fitted on (users x items)
    source: Path = field(default=Path("."))  # the version directory it was read from

    @property
    def popularity(self) -> np.ndarray:
        """Train positives per item, (n_items,) int64."""
        return self.train.item_counts()

    @property
    def version(self) -> str:
        return self.source.name


def save_bundle(bundle: Bundle, path: str | Path) -> Path:
    """Write ``bundle`` as a new version of the artifact at ``path`` (atomic symlink flip)."""
    model_manifest, model_arrays = bundle.model.to_arrays()
    n_items = len(bundle.item_ids)
    if not (len(bundle.titles) == len(bundle.texts) == n_items == len(bundle.embeddings)):
        raise ConfigError("bundle: item ids, titles, texts and embeddings differ in length")
    if model_manifest["n_items"] != n_items or bundle.train.n_items != n_items:
        raise ConfigError(f"bundle: model has {model_manifest['n_items']} items, catalogue {n_items}")
    arrays = pack(MODEL_PREFIX, model_arrays)
    arrays |= {
        "embeddings": np.ascontiguousarray(bundle.embeddings, dtype=np.float32),
        "popularity": bundle.popularity,
        "train.users": bundle.train.users.astype(np.int32),
        "train.items": bundle.train.items.astype(np.int32),
        "train.timestamps": bundle.train.timestamps.astype(np.int64),
    }
    manifest = {
        **bundle.manifest,
        "kind": KIND,
        "model": model_manifest["model"],
        "params": {k: v for k, v in bundle.model.get_params(deep=True).items() if not isinstance(v, Recommender)},
        "model_manifest": model_manifest,
        "n_items": n_items,
        "n_users": len(bundle.user_ids),
        "n_interactions": len(bundle.train),
        "embedding_dim": int(bundle.embeddings.shape[1]),
    }
    catalogue = {"item_ids": list(bundle.item_ids), "titles": list(bundle.titles), "texts": list(bundle.texts)}
    extra = {CATALOGUE: json.dumps(catalogue).encode(), USERS: json.dumps(list(bundle.user_ids)).encode()}
    return save_artifact(path, manifest, arrays, extra_files=extra)


def _read(version_dir: Path) -> Bundle:
    manifest, arrays = load_artifact(version_dir)
    if manifest.get("kind") != KIND:
        raise ArtifactError(f"{version_dir}: not a service artifact (write one with `longtail train`)")
    catalogue = json.loads((version_dir / CATALOGUE).read_text(encoding="utf-8"))
    user_ids = json.loads((version_dir / USERS).read_text(encoding="utf-8"))
    try:
        model = from_arrays(manifest["model_manifest"], unpack(MODEL_PREFIX, arrays))
    except ConfigError as exc:
        raise ArtifactError(f"{version_dir.name}: {exc}") from exc
    n_items = len(catalogue["item_ids"])
    train = Interactions(arrays["train.users"], arrays["train.items"], arrays["train.timestamps"],
                         len(user_ids), n_items)
    return Bundle(manifest, model, user_ids, catalogue["item_ids"], catalogue["titles"], catalogue["texts"],
                  arrays["embeddings"], train, version_dir)


def load_bundle(path: str | Path, *, attempts: int = 3) -> Bundle:
    """Read the artifact that ``path`` (the symlink) points to now.

    The link is resolved once and the concrete version directory read; a save that flips the link
    and deletes the old version mid-read makes the read fail its checksums or lose a file, and it
    is retried on the new target."""
    link = Path(path)
    for attempt in range(attempts):
        target = link.resolve()
        try:
            return _read(target)
        except (ArtifactError, FileNotFoundError, KeyError, json.JSONDecodeError) as exc:
            if attempt == attempts - 1 or link.resolve() == target:
                if isinstance(exc, ArtifactError):
                    raise
                raise ArtifactError(f"{link}: cannot read service artifact ({exc})") from exc
            time.sleep(0.05)
    raise AssertionError("unreachable")


def train_bundle(dataset: str | Path, model_name: str, params: dict[str, Any] | None = None, *,
                 fit_on: str = "all", min_rating: float = 4.0, template: str | None = None,
                 fallback: dict[str, Any] | None = None) -> Bundle:
    """Load ``dataset``, embed its items (cached), fit ``model_name`` on its positives.

    ``fit_on='all'`` fits on every positive (what a deployed model should know);
    ``'train_valid'`` holds the protocol's test part out, to compare with ``evaluate``.
    ``fallback``: the text fallback's settings (``longtail evaluate`` chooses them on valid and
    writes them to metrics.json); the service ranks with them."""
    if fit_on not in FIT_ON:
        raise ConfigError(f"fit_on must be one of {FIT_ON}, got {fit_on!r}")
    template = DEFAULT_TEMPLATE if template is None else template
    ds = load_dataset(dataset, min_rating=min_rating)
    positives = ds.train_valid + ds.test if fit_on == "all" else ds.train_valid
    encoder = TextEncoder()
    embeddings = embed_items(ds.items, template=template, encoder=encoder)
    model = make_model(model_name, **(params or {}))
    started = time.perf_counter()
    model.fit(positives, item_embeddings=embeddings)
    manifest = {
        "dataset": {"name": ds.name, "min_rating": min_rating, "fit_on": fit_on,
                    "fingerprint": sha256_files([ds.raw.interactions_path, ds.raw.items_path])},
        "encoder": {"fingerprint": encoder.fingerprint, "template": template},
        "fit_seconds": round(time.perf_counter() - started, 3),
        "pipeline": {"fallback": asdict(TextFallback(**(fallback or {})))},
    }
    return Bundle(manifest, model, [str(u) for u in ds.users.ids], [str(i) for i in ds.item_vocab.ids],
                  ds.items["title"].fillna("").astype(str).tolist(),
                  ds.items["text"].fillna("").astype(str).tolist(), embeddings, positives)
