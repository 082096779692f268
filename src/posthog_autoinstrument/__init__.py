"""posthog-autoinstrument: every LLM call a Python program makes, as PostHog LLM analytics.

Run an unmodified program under ``posthog-instrument`` (see the README). Importing this
package does nothing by itself; ``posthog_autoinstrument.context(...)`` is the optional API
for what no header or SDK context can know, and ``posthog_autoinstrument.start()`` (or
``%load_ext posthog_autoinstrument`` in IPython and Jupyter) starts what the launcher starts,
in a program the launcher did not start.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (10 ms) in the launcher

__version__ = "0.1.0"

__all__ = ["context", "start", "__version__"]

if TYPE_CHECKING:
    from .identity import context

# start()'s arguments and the variables they set, as the launcher's flags set them.
_START_OPTIONS = {
    "api_key": "POSTHOG_API_KEY",
    "host": "POSTHOG_HOST",
    "distinct_id": "POSTHOG_DISTINCT_ID",
    "privacy_mode": "POSTHOG_PRIVACY_MODE",
    "dry_run": "POSTHOG_DRY_RUN",
    "debug": "POSTHOG_DEBUG",
}


def start(**options) -> bool:
    """Instrument this running program, as ``posthog-instrument`` would have at its start.

    For code we cannot launch: a notebook, a program started by a platform. Configuration comes
    from the same environment variables as the launcher's; the keyword arguments ``api_key``,
    ``host``, ``distinct_id``, ``privacy_mode``, ``dry_run`` and ``debug`` set them first (as
    the launcher's flags do). LLM libraries already imported are instrumented at once. A second
    call does nothing. Returns whether events are recorded; a problem is one line on stderr,
    never an exception.
    """
    try:
        from .config import say

        unknown = sorted(set(options) - set(_START_OPTIONS))
        if unknown:
            say(f"start() has no option {', '.join(unknown)}; use {', '.join(_START_OPTIONS)} (ignored).")
        overrides = {}
        for name, variable in _START_OPTIONS.items():
            value = options.get(name)
            if value is not None:
                overrides[variable] = str(value).lower() if isinstance(value, bool) else str(value)
        from .startup import start_in_process

        return start_in_process(overrides)
    except Exception as exc:  # never the program's problem
        try:
            from .config import say

            say(f"could not start ({exc!r}); the program runs uninstrumented.")
        except Exception:
            pass
        return False


def load_ipython_extension(ipython) -> None:
    """``%load_ext posthog_autoinstrument``: ``start()`` with the environment's configuration."""
    start()


def __getattr__(name: str):
    # The optional API (person, session, properties, trace name) loads on first use: the
    # launcher imports this package too, and ``identity`` (with dataclasses, inspect and json)
    # was about 20 ms of its start-up.
    if name == "context":
        from .identity import context

        return context
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
