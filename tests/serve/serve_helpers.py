"""Helpers shared by the service tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Keys:
    """A store's URL and one key of each scope (``profile`` and ``admin`` empty when not made)."""

    url: str
    read: str
    write: str
    profile: str = ""
    admin: str = ""


def make_keys(url: str, name: str = "tests") -> Keys:
    """One key of each scope in the store at ``url``."""
    from longtail.serve.keys import create_key
    from longtail.serve.store import open_store

    store = open_store(url)
    try:
        return Keys(url, *(create_key(store, scope, name) for scope in ("read", "write", "profile", "admin")))
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m longtail.cli serve`` in a subprocess; ``kill()`` is a real SIGKILL."""

    def __init__(self, artifact: Path, store_url: str, env: dict[str, str], log: Path,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "longtail.cli", "serve", "--artifact", str(artifact), "--store", store_url,
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *extra_args],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /health in 90 s: {log.read_text()[-2000:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def serving_folder(folder: Path, bundle: object) -> tuple[Path, Keys]:
    """``folder`` with the artifact of ``bundle`` and a store holding a key of each scope."""
    from longtail.serve.bundle import save_bundle

    artifact = save_bundle(bundle, folder / "model")  # type: ignore[arg-type]
    return artifact, make_keys(f"sqlite:///{folder / 'service.db'}", "")


def adapted_slice(folder: Path, template: str, max_steps: int) -> tuple[Path, Path]:
    """A 120-item slice of ml-latest-small and a LoRA encoder adapted on it for ``max_steps`` steps
    (a bundled-encoder artifact's ingredients): (dataset folder, encoder folder)."""
    from slices import popular_slice

    from longtail.data.dataset import load_dataset
    from longtail.text import item_texts
    from longtail.text.finetune import FinetuneConfig, behaviour_pairs, finetune

    (folder / "data").mkdir()
    data = popular_slice(folder / "data", n_items=120)
    ds = load_dataset(data)
    pairs = behaviour_pairs(ds.train, ds.items["title"].astype(str).tolist())
    config = FinetuneConfig(mode="lora", max_steps=max_steps, batch_size=8, max_seq_length=24, num_threads=1)
    finetune(pairs, item_texts(ds.items, template), folder / "ft", config)
    return data, folder / "ft"
