"""Reading exported spans: their JSON attributes, the spans of one call, and traces the way
PostHog shows them."""

from __future__ import annotations

from collections import defaultdict


def posthog_input(span: dict) -> list:
    """``$ai_input`` as PostHog stores it: ``[{role, content}]``, the system prompt first."""
    return span["attributes"]["$ai_input"]


def posthog_output(span: dict) -> list:
    """``$ai_output_choices``: ``[{role: assistant, content: [typed items]}]``."""
    return span["attributes"]["$ai_output_choices"]


def message_text(message: dict) -> str:
    """The text of one ``$ai_input`` message: its string content, or its first text item's."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return next((i["text"] for i in content or () if isinstance(i, dict) and i.get("type") == "text"), "")


def tools(span: dict) -> list:
    """The tools PostHog shows (``$ai_tools``, structured as PostHog's SDK sends them)."""
    return span["attributes"]["$ai_tools"]


def posthog_tool(definition: dict) -> dict:
    """A function tool as ``gen_ai.tool.definitions`` holds it, in PostHog's shape."""
    return {
        "type": "function",
        "function": {k: definition[k] for k in ("name", "description", "parameters") if k in definition},
    }


def by_prompt(spans: list) -> dict:
    """Spans grouped by the first text of their first user message (a chat's history starts the same)."""
    grouped: dict = {}
    for span in spans:
        # (an embedding's input is its texts)
        first = next(m for m in posthog_input(span) if isinstance(m, str) or m["role"] == "user")
        grouped.setdefault(first if isinstance(first, str) else message_text(first), []).append(span)
    return grouped


def by_model(spans: list, model: str, stream: bool = False) -> dict:
    """The one span that asked for ``model``, streamed or not."""
    found = [
        s
        for s in spans
        if s["attributes"].get("gen_ai.request.model") == model
        and bool(s["attributes"].get("gen_ai.request.stream")) == stream
    ]
    assert len(found) == 1, [(s["name"], s["attributes"].get("gen_ai.request.stream")) for s in spans]
    return found[0]


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


def run_of(spans: list, label: str) -> list:
    """The spans of the one trace whose root was given the input labelled ``[label]``."""
    roots = [
        s for s in spans if s["parent_span_id"] is None and f"[{label}]" in s["attributes"].get("$ai_input_state", "")
    ]
    assert len(roots) == 1, [r["name"] for r in roots]
    return [s for s in spans if s["trace_id"] == roots[0]["trace_id"]]


def named(spans: list, name: str) -> list:
    """The spans called ``name``, in start order."""
    return sorted((s for s in spans if s["name"] == name), key=lambda s: s["start_ns"])


def traces_by_root(spans: list) -> dict:
    """Each trace's spans, keyed by its root's name (unique per scenario in the app)."""
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids]
    names = [r["name"] for r in roots]
    assert len(names) == len(set(names)), names
    return {r["name"]: [s for s in spans if s["trace_id"] == r["trace_id"]] for r in roots}


# What privacy mode keeps out of every span PostHog receives: prompts, outputs, step states, tool
# arguments and results.
CONTENT_KEYS = frozenset(
    {
        "$ai_input",
        "$ai_output_choices",
        "$ai_input_state",
        "$ai_output_state",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)


def assert_no_content(spans: list) -> None:
    for span in spans:
        assert not CONTENT_KEYS & set(span["attributes"]), span["name"]


def successful_generations(spans: list) -> list:
    return [s for s in spans if event_type(s) == "$ai_generation" and s["status_code"] != "ERROR"]
