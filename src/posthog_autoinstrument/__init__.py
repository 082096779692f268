"""posthog-autoinstrument: every LLM call a Python program makes, as PostHog LLM analytics.

Run an unmodified program under ``posthog-instrument`` (see the README). Importing this
package does nothing by itself; ``posthog_autoinstrument.context(...)`` is the optional API
for what no header or SDK context can know.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (10 ms) in the launcher

__version__ = "0.1.0"

__all__ = ["context", "__version__"]

if TYPE_CHECKING:
    from .identity import context


def __getattr__(name: str):
    # The optional API (person, session, properties, trace name) loads on first use: the
    # launcher imports this package too, and ``identity`` (with dataclasses, inspect and json)
    # was about 20 ms of its start-up.
    if name == "context":
        from .identity import context

        return context
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
