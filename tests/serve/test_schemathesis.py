"""Acceptance: schemathesis generates requests from the OpenAPI spec (valid and invalid ones, a
bounded number per operation) and sends them over HTTP to the real server process with its real
limits (1 MiB bodies); with the admin key, a read key on the endpoints that need more, and no key. No answer
is a 5xx; answers to valid requests match their documented schema and status codes; no protected
endpoint answers 2xx without the right key. The longer, random run: ``benchmarks/fuzz_service.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzing import fuzz
from serve_helpers import Keys

EXAMPLES = {"admin": 25, "read": 10, "none": 10}


@pytest.mark.slow
def test_no_server_error_on_generated_requests(artifact: Path, keys: Keys, start_server) -> None:  # noqa: ANN001
    server = start_server(artifact, keys.url)
    report = fuzz(server.url, {"admin": keys.admin, "read": keys.read, "none": None}, EXAMPLES)
    operations = {k[0] for k in report.statuses}
    print(f"\nschemathesis over HTTP: {len(operations)} operations, {report.summary()}")
    assert len(operations) == 8
    assert report.total >= 8 * 20 and not report.server_errors()
    assert not report.violations, report.violations[:10]
    assert {k[1] for k in report.statuses} == {"admin", "read", "none"}
