"""GenAI conventions message JSON, as our message builders write it.

What libraries that trace themselves record in ``gen_ai.input.messages`` and the like follows
the conventions too, but with other keys, another key order or extra markers; these helpers
rebuild it so that PostHog gets byte for byte what our adapters record.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..genai import messages as m


def part(part: Any) -> Any:
    """A part as our message builders write it (same keys, same order)."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "text":
        return m.text(part.get("content"))
    if kind == "reasoning":
        return m.reasoning(part.get("content"))
    if kind == "tool_call":
        rebuilt = m.tool_call(part.get("id"), part.get("name"), part.get("arguments"))
        rebuilt.update(
            {k: v for k, v in part.items() if k not in ("type", "id", "name", "arguments") and v is not None}
        )
        return rebuilt
    if kind == "tool_call_response":
        return m.tool_call_response(part.get("id"), part.get("response"))
    return part


def rewrite_json(attrs: dict, key: str, rewrite: Callable[[list], list]) -> None:
    """Rewrite the JSON list under ``key`` (its dict items) with ``rewrite``; other values stay."""
    value = attrs.get(key)
    if not isinstance(value, str):
        return
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    if isinstance(parsed, list):
        attrs[key] = m.to_json(rewrite([item for item in parsed if isinstance(item, dict)]))
