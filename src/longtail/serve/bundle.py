"""The service artifact: a fitted model plus everything serving needs, in one atomic artifact.

``longtail train`` writes it with ``models.artifact.save_artifact`` (a new version directory,
checksummed, then one symlink flip), so a running service that reloads never reads half of one.
Contents: the model's own arrays (prefixed ``model.``), the item vectors, the train popularity,
the training positives (the users' histories) as arrays; the id vocabularies and the catalogue
(ids, titles, texts) as JSON files (strings do not fit ``npz`` without pickle); and a manifest with
the model name and params, a fingerprint of the dataset files, the encoder fingerprint and template.

Loading checks what the checksums cannot: a version written by another tool, or resealed by hand,
may parse and still be nonsense (lengths that differ, indices out of range, a model whose arrays do
not fit its catalogue). Every such defect is an ``ArtifactError`` at load, so ``longtail serve``
refuses to start with one line and a reload keeps the old version, instead of a 500 per request.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from longtail.common.arrays import pack, unpack
from longtail.common.files import sha256_files
from longtail.data.dataset import load_dataset
from longtail.data.history import HistoryBatch
from longtail.data.interactions import Interactions
from longtail.errors import ConfigError, LongtailError
from longtail.models.artifact import ARRAYS, KEEP_VERSIONS, ArtifactError, load_artifact, one_line, save_artifact
from longtail.models.base import Recommender
from longtail.models.registry import from_arrays, make_model
from longtail.pipeline import TextFallback
from longtail.text import DEFAULT_TEMPLATE, TextEncoder, embed_items
from longtail.text.sentiment import check_sentiment_weight, event_sentiment, sentiment_weights

KIND = "longtail-service"
CATALOGUE = "catalogue.json"
USERS = "users.json"
ENCODER_DIR = "encoder"  # an adapted encoder travels inside the artifact (manifest encoder.folder)
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
    categories: list[str] | None = None  # per item, "a|b|c" (genres / categories), when the catalogue has them
    encoder_files: dict[str, bytes] | None = None  # an adapted encoder's folder, to be saved with it

    @property
    def popularity(self) -> np.ndarray:
        """Train positives per item, (n_items,) int64."""
        return self.train.item_counts()

    @property
    def version(self) -> str:
        return self.source.name


def save_bundle(bundle: Bundle, path: str | Path, *, keep: int = KEEP_VERSIONS) -> Path:
    """Write ``bundle`` as a new version of the artifact at ``path`` (atomic symlink flip); the
    newest ``keep`` versions stay on disk for replicas still serving them."""
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
    if bundle.train.weights is not None:  # per-positive weights (sentiment): histories carry them
        arrays["train.weights"] = bundle.train.weights.astype(np.float32)
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
    if bundle.categories is not None:
        if len(bundle.categories) != n_items:
            raise ConfigError("bundle: categories differ in length from the item ids")
        catalogue["categories"] = list(bundle.categories)
    extra = {CATALOGUE: json.dumps(catalogue).encode(), USERS: json.dumps(list(bundle.user_ids)).encode()}
    extra |= {f"{ENCODER_DIR}/{name}": content for name, content in (bundle.encoder_files or {}).items()}
    return save_artifact(path, manifest, arrays, extra_files=extra, keep=keep)


# what rebuilding or querying a model from arrays that do not fit it can raise (torch: RuntimeError)
MODEL_ERRORS = (LongtailError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError)


def _read(version_dir: Path) -> Bundle:
    manifest, arrays = load_artifact(version_dir, files=(CATALOGUE, USERS))
    if manifest.get("kind") != KIND:
        raise ArtifactError(f"{version_dir}: not a service artifact (write one with `longtail train`)")
    catalogue = _json(version_dir / CATALOGUE)
    if not isinstance(catalogue, dict):
        raise ArtifactError(f"{version_dir / CATALOGUE}: not a JSON object")
    item_ids, titles, texts = (_strings(catalogue.get(key), version_dir / CATALOGUE, key)
                               for key in ("item_ids", "titles", "texts"))
    categories = (None if catalogue.get("categories") is None
                  else _strings(catalogue["categories"], version_dir / CATALOGUE, "categories"))
    user_ids = _strings(_json(version_dir / USERS), version_dir / USERS, "user ids")
    n_items, n_users = len(item_ids), len(user_ids)
    if not (n_items == len(titles) == len(texts) == len(titles if categories is None else categories)) or n_items == 0:
        raise ArtifactError(f"{version_dir / CATALOGUE}: {n_items} item ids, {len(titles)} titles, "
                            f"{len(texts)} texts (need as many of each, at least one)")
    embeddings = _array(arrays, "embeddings", "f", 2, version_dir)
    if embeddings.shape[0] != n_items or embeddings.shape[1] == 0 or not np.isfinite(embeddings).all():
        raise ArtifactError(f"{version_dir}: embeddings {embeddings.shape} do not fit {n_items} items, "
                            "or hold non-finite values")
    train = _train(arrays, n_users, n_items, version_dir)
    _check_manifest(manifest, {"n_items": n_items, "n_users": n_users, "n_interactions": len(train),
                               "embedding_dim": embeddings.shape[1]}, version_dir)
    model = _model(manifest["model_manifest"], arrays, train, version_dir)
    return Bundle(manifest, model, user_ids, item_ids, titles, texts,
                  np.ascontiguousarray(embeddings, dtype=np.float32), train, version_dir, categories)


def encoder_files(encoder: TextEncoder) -> dict[str, bytes]:
    """The files of ``encoder``'s folder (an adapter is a few MB; a full model ~90 MB), to ship
    inside the artifact. A LoRA adapter must name its base by package: a relative path would
    not survive the copy (merge the adapter, or fine-tune a packaged base)."""
    from longtail.text.adapter import read_meta

    meta = read_meta(encoder.path)
    if meta is not None and meta["kind"] == "lora" and "package" not in meta.get("base", {}):
        raise ConfigError(f"{encoder.path}: a LoRA adapter over a local base folder cannot travel in an "
                          "artifact; fine-tune with a packaged base or use --mode full")
    return {p.relative_to(encoder.path).as_posix(): p.read_bytes()
            for p in sorted(encoder.path.rglob("*")) if p.is_file()}


def bundle_encoder(bundle: Bundle) -> Path | None:
    """The artifact's own encoder folder (trained with an adapted encoder), or None (the bundled one)."""
    name = bundle.manifest.get("encoder", {}).get("folder")
    if name != ENCODER_DIR:
        return None
    folder = bundle.source / ENCODER_DIR
    if not folder.is_dir():
        raise ArtifactError(f"{bundle.source}: the manifest names an encoder folder that is missing")
    return folder


def _json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8
        raise ArtifactError(f"{file}: unreadable JSON ({one_line(exc)})") from exc


def _strings(value: Any, file: Path, what: str) -> list[str]:
    """``value`` as a list of strings; ids (``what`` ending in "ids") must also be unique."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArtifactError(f"{file}: {what} must be a list of strings")
    if what.endswith("ids") and len(set(value)) != len(value):
        raise ArtifactError(f"{file}: {what} repeat")
    return value


def _array(arrays: dict[str, np.ndarray], key: str, kinds: str, ndim: int, where: Path) -> np.ndarray:
    value = arrays.get(key)
    if value is None:
        raise ArtifactError(f"{where}: no array {key!r} in {ARRAYS}")
    if value.dtype.kind not in kinds or value.ndim != ndim:
        raise ArtifactError(f"{where}: array {key!r} is {value.dtype} {value.shape}, expected {ndim}-d "
                            f"of kind {kinds!r}")
    return value


def _train(arrays: dict[str, np.ndarray], n_users: int, n_items: int, where: Path) -> Interactions:
    """The training positives, checked against the vocabularies (an index out of range would
    surface as an IndexError inside a request, or silently as another user's history)."""
    users, items, ts = (_array(arrays, f"train.{key}", "iu", 1, where) for key in ("users", "items", "timestamps"))
    if not len(users) == len(items) == len(ts):
        raise ArtifactError(f"{where}: train.users, train.items, train.timestamps differ in length")
    for name, values, bound in (("users", users, n_users), ("items", items, n_items)):
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise ArtifactError(f"{where}: train.{name} indices outside 0..{bound - 1}")
    weights = None
    if "train.weights" in arrays:
        weights = _array(arrays, "train.weights", "f", 1, where)
        if len(weights) != len(users) or not (np.isfinite(weights).all() and (weights > 0).all()):
            raise ArtifactError(f"{where}: train.weights must be {len(users)} finite values > 0")
    return Interactions(users.astype(np.int32), items.astype(np.int32), ts.astype(np.int64), n_users, n_items,
                        weights=None if weights is None else weights.astype(np.float32))


def _check_manifest(manifest: dict[str, Any], counts: dict[str, int], where: Path) -> None:
    """The manifest's own fields that serving reads, and its counts against the files."""
    for key, actual in counts.items():
        if manifest.get(key, actual) != actual:
            raise ArtifactError(f"{where}: manifest says {key}={manifest.get(key)!r}, the files hold {actual}")
    encoder = manifest.get("encoder", {})
    if not isinstance(encoder, dict) or not isinstance(encoder.get("fingerprint", ""), str) \
            or not isinstance(encoder.get("template"), (str, type(None))):
        raise ArtifactError(f"{where}: manifest 'encoder' must be an object with a fingerprint and template")
    pipeline = manifest.get("pipeline", {})
    fallback = pipeline.get("fallback", {}) if isinstance(pipeline, dict) else None
    try:
        TextFallback(**fallback)  # type: ignore[arg-type]
    except (LongtailError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: manifest pipeline.fallback is unusable ({one_line(exc)})") from exc
    if not isinstance(manifest.get("model_manifest"), dict):
        raise ArtifactError(f"{where}: the manifest has no 'model_manifest' object")


def _model(model_manifest: dict[str, Any], arrays: dict[str, np.ndarray], train: Interactions,
           where: Path) -> Recommender:
    """The fitted model, rebuilt and asked once for one user's scores: models trust their arrays,
    so arrays that do not fit (a short mask, a scrambled sparse index) fail here, at load."""
    if model_manifest.get("n_items") != train.n_items:
        raise ArtifactError(f"{where}: the model has {model_manifest.get('n_items')!r} items, "
                            f"the catalogue {train.n_items}")
    try:
        model = from_arrays(model_manifest, unpack(MODEL_PREFIX, arrays))
        active = train.active_users()[:1]
        if len(active):
            scores = model.score(HistoryBatch.from_interactions(train, active))
            if np.shape(scores) != (1, train.n_items):
                raise ArtifactError(f"scores of shape {np.shape(scores)} for 1 user x {train.n_items} items")
    except MODEL_ERRORS as exc:
        raise ArtifactError(f"{where}: the model cannot be rebuilt from its arrays ({one_line(exc)})") from exc
    return model


def load_bundle(path: str | Path, *, attempts: int = 3) -> Bundle:
    """Read the artifact that ``path`` (the symlink) points to now; any defect is an ``ArtifactError``.

    The link is resolved once and the concrete version directory read; a save that flips the link
    and deletes the old version mid-read makes the read fail its checksums or lose a file, and it
    is retried on the new target."""
    link = Path(path)
    for attempt in range(attempts):
        target = link.resolve()
        try:
            return _read(target)
        except (ArtifactError, OSError) as exc:
            if attempt == attempts - 1 or link.resolve() == target:
                if isinstance(exc, ArtifactError):
                    raise
                raise ArtifactError(f"{link}: cannot read service artifact ({one_line(exc)})") from exc
            time.sleep(0.05)
    raise AssertionError("unreachable")


def train_bundle(dataset: str | Path, model_name: str, params: dict[str, Any] | None = None, *,
                 fit_on: str = "all", min_rating: float = 4.0, template: str | None = None,
                 fallback: dict[str, Any] | None = None, sentiment_weight: float = 0.0,
                 sentiment_method: str = "vader", encoder_path: str | Path | None = None) -> Bundle:
    """Load ``dataset``, embed its items (cached), fit ``model_name`` on its positives.

    ``fit_on='all'`` fits on every positive (what a deployed model should know);
    ``'train_valid'`` holds the protocol's test part out, to compare with ``evaluate``.
    ``fallback``: the text fallback's settings (``longtail evaluate`` chooses them on valid and
    writes them to metrics.json); the service ranks with them. ``sentiment_weight`` > 0 weighs
    each positive by its review's sentiment (``text.sentiment``; every fitted positive's review is
    readable here, as nothing is evaluated); the weights are stored with the histories, so the
    service scores with the ones the model was fitted with. ``encoder_path``: an adapted encoder
    (``longtail finetune`` output or a sentence-transformers folder; None: the bundled MiniLM);
    the artifact carries a copy, so the service encodes posted items with it."""
    if fit_on not in FIT_ON:
        raise ConfigError(f"fit_on must be one of {FIT_ON}, got {fit_on!r}")
    template = DEFAULT_TEMPLATE if template is None else template
    ds = load_dataset(dataset, min_rating=min_rating)
    positives = ds.train_valid + ds.test if fit_on == "all" else ds.train_valid
    sentiment: dict[str, Any] = {}
    if check_sentiment_weight(sentiment_weight) > 0:
        values, source = event_sentiment(ds, positives, sentiment_method)
        positives = positives.with_weights(sentiment_weights(values, sentiment_weight))
        sentiment = {"sentiment": {"weight": float(sentiment_weight), "method": sentiment_method,
                                   "source": source}}
    encoder = TextEncoder(encoder_path)
    embeddings = embed_items(ds.items, template=template, encoder=encoder)
    model = make_model(model_name, **(params or {}))
    started = time.perf_counter()
    model.fit(positives, item_embeddings=embeddings)
    manifest = {
        "dataset": {"name": ds.name, "min_rating": min_rating, "fit_on": fit_on,
                    "fingerprint": sha256_files([ds.raw.interactions_path, ds.raw.items_path])},
        "encoder": {"fingerprint": encoder.fingerprint, "template": template,
                    **({} if encoder_path is None else {"folder": ENCODER_DIR})},
        "fit_seconds": round(time.perf_counter() - started, 3),
        "pipeline": {"fallback": asdict(TextFallback(**(fallback or {})))},
        **sentiment,
    }
    return Bundle(manifest, model, [str(u) for u in ds.users.ids], [str(i) for i in ds.item_vocab.ids],
                  ds.items["title"].fillna("").astype(str).tolist(),
                  ds.items["text"].fillna("").astype(str).tolist(), embeddings, positives,
                  categories=_categories(ds.items), encoder_files=None if encoder_path is None else encoder_files(encoder))


def _categories(items: pd.DataFrame) -> list[str] | None:
    """Each item's genres / categories ("a|b|c") when the catalogue has such a column (profiles
    read them), else None."""
    for column in ("genres", "categories"):
        if column in items.columns:
            return items[column].fillna("").astype(str).tolist()
    return None
