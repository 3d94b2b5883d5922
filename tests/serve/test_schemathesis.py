"""Acceptance: schemathesis generates requests from the OpenAPI spec (valid and invalid ones, a
bounded number per operation) and the service answers none of them with a 5xx; responses to valid
requests match their documented schema and status codes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from serve_helpers import Keys

from longtail.serve import create_app

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 25}


@pytest.mark.slow
def test_no_server_error_on_generated_requests(artifact: Path, keys: Keys) -> None:
    app = create_app(artifact, keys.url, max_body_bytes=64_000)
    with TestClient(app):  # runs the lifespan (watcher, store close) around the whole run
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        statuses: Counter[tuple[str, str, int]] = Counter()
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 8
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                checks = [not_a_server_error]
                if mode is GenerationMode.POSITIVE:
                    checks += [status_code_conformance, response_schema_conformance]

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
                def run(case: schemathesis.Case) -> None:
                    case.headers = {**(case.headers or {}), "X-API-Key": keys.write}  # auth is tested elsewhere
                    response = case.call()
                    statuses[(operation.label, mode.value, response.status_code)] += 1
                    case.validate_response(response, checks=checks)

                try:
                    run()
                except Unsatisfiable:  # nothing to make invalid (GET /health has no parameters)
                    assert mode is GenerationMode.NEGATIVE
    total = sum(statuses.values())
    server_errors = {k: v for k, v in statuses.items() if k[2] >= 500}
    print(f"\nschemathesis: {total} generated requests over {len(operations)} operations; "
          f"statuses {dict(Counter(k[2] for k in statuses.elements()))}; 5xx: {server_errors or 'none'}")
    assert total >= 8 * 20 and not server_errors
