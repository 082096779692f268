"""Reading exported traces the way PostHog shows them, for the framework end-to-end tests."""

from __future__ import annotations

from collections import defaultdict


def event_type(span: dict) -> str:
    """How PostHog classifies the span it receives."""
    operation = span["attributes"].get("gen_ai.operation.name")
    if operation == "chat":
        return "$ai_generation"
    if operation == "embeddings":
        return "$ai_embedding"
    return "$ai_span" if span["parent_span_id"] else "$ai_trace"


def tree(spans: list) -> list:
    """(depth, event type, name) depth first, children by start time: the trace as PostHog shows it."""
    children = defaultdict(list)
    for s in spans:
        children[s["parent_span_id"]].append(s)
    ids = {s["span_id"] for s in spans}
    (root,) = [s for s in spans if s["parent_span_id"] not in ids]
    out = []

    def walk(span, depth):
        out.append((depth, event_type(span), span["name"]))
        for child in sorted(children[span["span_id"]], key=lambda c: c["start_ns"]):
            walk(child, depth + 1)

    walk(root, 0)
    assert len(out) == len(spans)
    return out
