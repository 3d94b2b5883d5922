"""Prometheus text exposition (format 0.0.4) of request counts, latencies and live-state sizes.

Hand-written (about 80 lines) instead of ``prometheus-client``: the service needs one counter, one
histogram and a few gauges, and a module-level registry would be shared between the apps that
tests create in one process. Labels use the route *template* (``/items/{item_id}/similar``), never
the raw path, so a scan of random URLs cannot grow the series without bound.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    """Thread-safe counters and latency histograms, rendered on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str, str], list[float]] = {}  # bucket counts..., sum, count

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        with self._lock:
            key = (method, route, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            series = self._latency.setdefault((method, route), [0.0] * (len(BUCKETS) + 2))
            bucket = bisect.bisect_left(BUCKETS, seconds)  # first bound >= seconds ("le")
            if bucket < len(BUCKETS):
                series[bucket] += 1
            series[-2] += seconds
            series[-1] += 1

    def render(self, gauges: Mapping[str, tuple[str, float]]) -> str:
        """The exposition text; ``gauges``: name -> (help, value)."""
        lines = ["# HELP longtail_requests_total HTTP requests answered, by route template and status.",
                 "# TYPE longtail_requests_total counter"]
        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((k, list(v)) for k, v in self._latency.items())
        for (method, route, status), count in requests:
            lines.append(f"longtail_requests_total{_labels(method=method, route=route, status=status)} {count}")
        lines += ["# HELP longtail_request_duration_seconds Time to answer a request (server side).",
                  "# TYPE longtail_request_duration_seconds histogram"]
        for (method, route), series in latency:
            cumulative = 0.0
            for bound, count in zip(BUCKETS, series, strict=False):
                cumulative += count
                labels = _labels(method=method, route=route, le=f"{bound:g}")
                lines.append(f"longtail_request_duration_seconds_bucket{labels} {cumulative:g}")
            lines.append(f"longtail_request_duration_seconds_bucket"
                         f"{_labels(method=method, route=route, le='+Inf')} {series[-1]:g}")
            lines.append(f"longtail_request_duration_seconds_sum{_labels(method=method, route=route)} {series[-2]:.6f}")
            lines.append(f"longtail_request_duration_seconds_count{_labels(method=method, route=route)} {series[-1]:g}")
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
