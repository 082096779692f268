"""What the vector-store end-to-end tests share: one app run (instrumented, then plainly), and
reading the retrieval steps it exported."""

from __future__ import annotations

import json

from tests.e2e.providers import app_env, run_both
from tests.servers import FakePostHog


def record(app: str, scenarios, span_count: int, **env: str) -> tuple:
    """(stdout, spans) of ``app`` run with ``scenarios``; exactly ``span_count`` spans accepted."""
    with FakePostHog() as posthog:
        result = run_both(app, scenarios, app_env(posthog, (), **env))
        spans = posthog.wait_for_spans(span_count)
        assert posthog.rejections == []
        assert len(posthog.spans) == span_count, [s["name"] for s in posthog.spans]
        return result.stdout, spans


def state(span: dict, key: str):
    """``$ai_input_state`` / ``$ai_output_state`` decoded."""
    value = span["attributes"].get(key)
    return json.loads(value) if isinstance(value, str) else value


def retrievals(spans: list) -> list:
    """The vector stores' retrieval steps (not a framework's retriever)."""
    return [
        s
        for s in spans
        if s["attributes"].get("gen_ai.operation.name") == "retrieval" and "$ai_framework" not in s["attributes"]
    ]


def by_query(spans: list) -> dict:
    """Retrieval steps by their query text ("vector" for a vector query, "other" for another kind,
    "private" without input)."""
    found: dict = {}
    for span in retrievals(spans):
        query = state(span, "$ai_input_state")
        if query is None:
            key = "private"
        else:
            key = query.get("query", "vector" if "query_vector" in query else "other")
        found.setdefault(key if isinstance(key, str) else tuple(key), []).append(span)
    return found


def assert_no_vectors(spans: list, *vectors: list) -> None:
    """None of ``vectors`` (written either way JSON may be), and nothing named a vector or an
    embedding, in any exported attribute (error messages aside)."""
    exported = json.dumps([s["attributes"] for s in spans])
    assert "embedding" not in exported.lower() and '"vector"' not in exported
    for vector in vectors:
        for separator in (", ", ","):
            assert separator.join(str(x) for x in vector) not in exported, vector
