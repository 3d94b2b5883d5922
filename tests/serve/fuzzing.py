"""Schemathesis against a real server: requests generated from the OpenAPI spec (valid and
invalid), sent over HTTP with an admin key (every scope), a read key or no key. Shared by
``test_schemathesis.py`` (derandomised, bounded) and ``benchmarks/fuzz_service.py`` (longer,
random, seed printed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

OPEN = {"GET /health"}  # no key needed: liveness says nothing about users
BEYOND_READ = {"POST /events", "POST /items", "POST /admin/reload", "GET /users/{user_id}/profile"}


@dataclass
class FuzzReport:
    """Statuses per (operation, auth, mode), and every answer that broke a rule, in words."""

    statuses: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def server_errors(self) -> dict[tuple[str, str, str, int], int]:
        return {k: v for k, v in self.statuses.items() if k[3] >= 500}

    def summary(self) -> str:
        by_auth: dict[str, Counter[int]] = {}
        for (_, auth, _, status), n in self.statuses.items():
            by_auth.setdefault(auth, Counter())[status] += n
        return (f"{self.total} requests; statuses by key: "
                + "; ".join(f"{auth}: {dict(sorted(c.items()))}" for auth, c in sorted(by_auth.items()))
                + f"; 5xx: {self.server_errors() or 'none'}; rule violations: {len(self.violations)}")


def fuzz(base_url: str, keys: dict[str, str | None], examples: dict[str, int], *,
         random_seed: int | None = None, report: FuzzReport | None = None) -> FuzzReport:
    """Fuzz every operation of the server at ``base_url``.

    ``keys``: auth name ("admin", "read", "none") -> X-API-Key value (None: no header).
    ``examples``: auth name -> examples per operation and generation mode. With the admin key every
    operation is tried with valid and invalid requests, valid ones checked against the spec; with a
    read key only the endpoints that need more (``BEYOND_READ``: they must refuse it); with no key
    every operation, all but ``OPEN`` must refuse it. Derandomised unless ``random_seed`` is given."""
    report = report or FuzzReport()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers={"X-API-Key": keys["admin"]})
    for result in schema.get_all_operations():
        operation = result.ok()
        for auth, key in keys.items():
            if auth == "read" and operation.label not in BEYOND_READ:
                continue
            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if auth == "admin" else [GenerationMode.POSITIVE]
            for mode in modes:
                _run(operation, auth, key, mode, examples[auth], random_seed, report)
    return report


def _run(operation: object, auth: str, key: str | None, mode: GenerationMode, examples: int,
         random_seed: int | None, report: FuzzReport) -> None:
    label = operation.label  # type: ignore[attr-defined]
    checks = [not_a_server_error]
    if mode is GenerationMode.POSITIVE and auth == "admin":
        checks += [status_code_conformance, response_schema_conformance]

    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(max_examples=examples, deadline=None, database=None, derandomize=random_seed is None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
        if key is not None:
            headers["X-API-Key"] = key
        case.headers = headers
        response = case.call(timeout=60)
        report.statuses[(label, auth, mode.value, response.status_code)] += 1
        refused = auth == "none" and label not in OPEN or auth == "read" and label in BEYOND_READ
        if refused and response.status_code < 400:
            report.violations.append(f"{label} with {auth} key answered {response.status_code}")
        case.validate_response(response, checks=checks)

    if random_seed is not None:
        run = seed(random_seed)(run)
    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (GET /health has no parameters)
        assert mode is GenerationMode.NEGATIVE
