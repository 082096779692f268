"""posthog-autoinstrument: every LLM call a Python program makes, as PostHog LLM analytics.

Run an unmodified program under ``posthog-instrument`` (see the README). Importing this
package does nothing by itself.
"""

__version__ = "0.1.0"
