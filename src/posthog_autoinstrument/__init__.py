"""posthog-autoinstrument: every LLM call a Python program makes, as PostHog LLM analytics.

Run an unmodified program under ``posthog-instrument`` (see the README). Importing this
package does nothing by itself; ``posthog_autoinstrument.context(...)`` is the optional API
for what no header or SDK context can know.
"""

__version__ = "0.1.0"

from .identity import context  # noqa: E402  (the optional API: person, session, properties, trace name)

__all__ = ["context", "__version__"]
