"""The on-disk form of an adapted encoder, and loading it as one sentence-transformers model.

``longtail finetune --out OUT`` writes ``OUT/encoder/``: ``longtail-encoder.json`` (what was adapted
from what) plus either a whole sentence-transformers folder (``full``) or only a peft LoRA adapter
(``lora``: ``adapter_config.json`` + ``adapter_model.safetensors``, a few MB). An adapter names its
base without an absolute path -- an installed package (``{"package": NAME}``) or a path relative to
the adapter folder -- and is merged into the base at load, so serving it costs what the base does.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longtail.common.files import atomic_write_text
from longtail.errors import LongtailError
from longtail.text.base_models import package_model_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

META_FILE = "longtail-encoder.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
FORMAT = 1


def encoder_folder(path: Path) -> Path:
    """``OUT/encoder`` for a finetune output folder ``OUT``, else ``path`` itself."""
    inner = path / "encoder"
    return inner if (inner / META_FILE).is_file() else path


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The folder's ``longtail-encoder.json`` (None when it has none: a plain model folder)."""
    path = folder / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LongtailError(f"{path}: unreadable adapted-encoder description ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("kind") not in {"full", "lora"}:
        raise LongtailError(f"{path}: 'kind' must be 'full' or 'lora'")
    return meta


def is_adapter(folder: Path) -> bool:
    """True for a LoRA adapter folder (weights of the base live elsewhere)."""
    meta = read_meta(folder)
    return meta is not None and meta["kind"] == "lora"


def check_adapter(folder: Path) -> None:
    missing = [name for name in ADAPTER_FILES if not (folder / name).is_file()]
    if missing:
        raise LongtailError(f"{folder} is a LoRA encoder without {', '.join(missing)}")


def base_record(base: dict[str, str], folder: Path) -> dict[str, str]:
    """How ``folder`` (an adapter) records its base: a package name, or a path relative to it."""
    if "package" in base:
        return {"package": base["package"]}
    return {"relative": os.path.relpath(base["path"], folder.resolve())}


def adapter_base(folder: Path) -> Path:
    """The base model folder of the adapter in ``folder``."""
    meta = read_meta(folder) or {}
    base = meta.get("base", {})
    if "package" in base:
        return package_model_path(str(base["package"]))
    if "relative" in base:
        path = (folder.resolve() / str(base["relative"])).resolve()
        if not path.is_dir():
            raise LongtailError(f"{folder}: the adapter's base model is missing (expected it at "
                                f"{base['relative']!r} relative to the adapter); merge it or re-point it")
        return path
    raise LongtailError(f"{folder / META_FILE}: 'base' must name a package or a relative path")


def load_sentence_transformer(folder: Path, device: str) -> SentenceTransformer:
    """A SentenceTransformer for ``folder``: loaded as is, or base + LoRA adapter merged."""
    from sentence_transformers import SentenceTransformer

    if not is_adapter(folder):
        return SentenceTransformer(str(folder), device=device, local_files_only=True)
    check_adapter(folder)
    from peft import PeftModel

    model = SentenceTransformer(str(adapter_base(folder)), device=device, local_files_only=True)
    merged = PeftModel.from_pretrained(model[0].model, str(folder), is_trainable=False).merge_and_unload()
    model[0].model = merged
    return model


def replace_folder(folder: Path, write: Any) -> None:
    """Build a folder with ``write(tmp)`` beside ``folder``, then swap it in (readers see the old or
    the new folder whole; a crash leaves the old one or a stray ``.tmp-*`` sibling)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def save_encoder(model: Any, folder: Path, meta: dict[str, Any]) -> None:
    """Write the trained encoder to ``folder`` (whole, or adapter only for a peft-wrapped model)
    with its ``longtail-encoder.json``; no absolute path is written."""
    lora = meta["kind"] == "lora"

    def write(tmp: Path) -> None:
        if lora:
            model[0].model.save_pretrained(str(tmp))
            # peft records the base's absolute path (here, the virtualenv's); ours is in META_FILE
            config_path = tmp / "adapter_config.json"
            config = json.loads(config_path.read_text())
            config["base_model_name_or_path"] = None
            atomic_write_text(config_path, json.dumps(config, indent=2, sort_keys=True))
            (tmp / "README.md").unlink(missing_ok=True)  # peft's model card names that path too
        else:
            model.save(str(tmp))
        record = dict(meta, format=FORMAT)
        atomic_write_text(tmp / META_FILE, json.dumps(record, indent=2, sort_keys=True))

    replace_folder(folder, write)
