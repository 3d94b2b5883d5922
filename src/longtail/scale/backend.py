"""Where sharded work runs: in this process (``local``) or on Ray tasks (``ray``).

A job is a pure function of one shard and a few shared, read-only objects (a fitted pipeline, an
evaluator, the histories). ``put`` places a shared object once (Ray: the object store, so every task
reads the same copy without pickling it again); ``map`` runs the function on every shard and returns
the results in shard order, whatever order they finished in. The local backend runs the very same
function on the very same shards, so the two backends differ only in where the work happens.

Ray is imported only inside ``RayBackend``: ``import longtail`` never needs it. A local Ray instance
is started with ``num_cpus=workers`` (no dashboard, worker logs kept off the terminal) and shut down
afterwards; with ``address`` the backend joins a running cluster instead and leaves it running. An
already initialised Ray session (a test's, a notebook's) is reused and left as it was.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from longtail.errors import ConfigError

S = TypeVar("S")
R = TypeVar("R")
BACKENDS = ("local", "ray")
INSTALL_HINT = "install longtail[ray] (pip install 'longtail[ray]')"


class RayMissing(ConfigError):
    """``--backend ray`` without Ray installed (exit code 2, like every bad option)."""


def require_ray() -> Any:
    """The ``ray`` module, or ``RayMissing`` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(f"the ray backend needs Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, stop)`` of a job's users; ``index`` names its output (part-00003)."""

    index: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def shards_of(n: int, size: int, *, align: int = 1) -> list[Shard]:
    """Consecutive shards of ``size`` rows (the last may be shorter). ``size`` is rounded up to a
    multiple of ``align`` (a ranking batch), so every shard starts on a batch boundary and is ranked
    in exactly the batches a single run uses: results do not depend on the sharding."""
    if size < 1 or align < 1:
        raise ConfigError(f"shard size and alignment must be >= 1, got {size} and {align}")
    size = -(-size // align) * align
    return [Shard(i, start, min(start + size, n)) for i, start in enumerate(range(0, n, size))]


class Backend(ABC):
    """Runs ``fn(shard, *shared)`` for every shard; a context manager owning its resources."""

    name: str = ""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = int(workers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        return None

    @abstractmethod
    def put(self, value: Any) -> Any:
        """A handle to ``value`` that ``map`` passes to every shard's call."""

    @abstractmethod
    def map(self, fn: Callable[..., R], shards: Sequence[S], *shared: Any,
            on_result: Callable[[S, R], None] | None = None) -> list[R]:
        """``[fn(shard, *shared) for shard in shards]``; ``on_result`` is told of each as it ends."""


class LocalBackend(Backend):
    """Every shard in this process, one after the other."""

    name = "local"

    def put(self, value: Any) -> Any:
        return value

    def map(self, fn: Callable[..., R], shards: Sequence[S], *shared: Any,
            on_result: Callable[[S, R], None] | None = None) -> list[R]:
        results = []
        for shard in shards:
            results.append(fn(shard, *shared))
            if on_result is not None:
                on_result(shard, results[-1])
        return results


class RayBackend(Backend):
    """Every shard as a Ray task of one CPU; ``workers`` CPUs run them (local instance), or the
    cluster at ``address`` does."""

    name = "ray"

    def __init__(self, workers: int = 2, *, address: str | None = None) -> None:
        super().__init__(workers)
        self.address = address
        self._ray = require_ray()
        self._owner = False

    @property
    def ray(self) -> Any:
        """The ``ray`` module (for Ray Data jobs)."""
        return self._ray

    def __enter__(self) -> Self:
        ray = self._ray
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                       "logging_level": logging.WARNING, "configure_logging": True}
            if self.address is None:
                options["num_cpus"] = self.workers
            else:
                options["address"] = self.address
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                raise ConfigError(f"cannot start {where}: {exc}") from exc
            self._owner = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._owner:
            self._ray.shutdown()
            self._owner = False

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def map(self, fn: Callable[..., R], shards: Sequence[S], *shared: Any,
            on_result: Callable[[S, R], None] | None = None) -> list[R]:
        ray = self._ray
        task = ray.remote(num_cpus=1)(fn)
        pending = {task.remote(shard, *shared): n for n, shard in enumerate(shards)}
        results: dict[int, R] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                n = pending.pop(ref)
                results[n] = ray.get(ref)
                if on_result is not None:
                    on_result(shards[n], results[n])
        return [results[n] for n in range(len(shards))]


def open_backend(name: str, workers: int = 1, address: str | None = None) -> Backend:
    """The backend ``--backend NAME --workers N [--address ADDR]`` asks for (not yet entered)."""
    if name not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if name == "local":
        if address is not None:
            raise ConfigError("--address needs --backend ray")
        return LocalBackend(1)  # one process: --workers is Ray's
    return RayBackend(workers, address=address)
