"""Schemathesis fuzzes the service through its own OpenAPI document: no 5xx, responses match it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.conftest import FUZZ_EXAMPLES, test_model_path
from vision_service.api.main import create_app
from vision_service.core.config import Settings


@pytest.fixture(scope="module")
def api_schema() -> Iterator[schemathesis.BaseSchema]:
    app = create_app(Settings(model=test_model_path(), device="cpu", image_size=320), load_model=False)
    app.state.service.load_model()
    yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES // 6, deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_no_server_errors_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    # Schema-valid but unknown source ids are refused by design (they would become labels), so
    # "positive data acceptance" is not a goal; everything about the responses is.
    case.call_and_validate(
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
        ]
    )
