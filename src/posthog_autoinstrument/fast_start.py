"""Start-up without OpenTelemetry's auto-instrumentation loader, for the common case.

Why: the upstream loader scans every installed distribution's entry points, imports
``opentelemetry-instrumentation``'s machinery (``packaging``, ``importlib.metadata``, wrapt and
through it asyncio) and loads and version-checks every instrumentor before the application's
first line runs: about 150 ms for ``python -c pass``, for libraries the program may never import.

What we do instead, when the user configured no OpenTelemetry export of their own (so nothing
but AI spans has anywhere to go, see ``configurator.user_configured_otel``) and our distro and
configurator are the ones chosen:

1. our configurator sets up the TracerProvider and the PostHog pipeline, as it always does;
2. our own instrumentors are read from our ``entry_points.txt`` (the single registry; its
   ``posthog_autoinstrument_triggers`` group names the top-level import that starts each
   one), and a tiny import hook waits for those imports. Only when the application imports,
   say, ``openai`` is the OpenAI instrumentor loaded, version-checked and instrumented,
   which then patches lazily as before. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` is honoured.

Other vendors' instrumentors (``opentelemetry_instrumentor`` entry points of other packages)
are not loaded on this path: their spans would have no exporter. As soon as the user sets
``OTEL_TRACES_EXPORTER`` (or another ``OTEL_*_EXPORTER``, or ``OTEL_CONFIG_FILE``), start-up
takes the upstream path and loads everything installed, as ``opentelemetry-instrument`` does.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Optional

logger = logging.getLogger("posthog_autoinstrument")

DISTRIBUTION = "posthog_autoinstrument"  # the dist-info directory's name prefix
INSTRUMENTORS = "opentelemetry_instrumentor"
TRIGGERS = "posthog_autoinstrument_triggers"


def usable(env=os.environ) -> bool:
    """Whether this path gives the same result as the upstream loader would."""
    from .configurator import user_configured_otel

    chosen = env.get("OTEL_PYTHON_DISTRO", "posthog") == "posthog" and \
        env.get("OTEL_PYTHON_CONFIGURATOR", "posthog") == "posthog"
    return chosen and not user_configured_otel(env) and read_registry() is not None


def run() -> None:
    from . import config
    from .configurator import PostHogConfigurator

    settings = config.settings()
    if settings.debug:
        config.log_to_stderr()
    PostHogConfigurator().configure()
    if settings.disabled or not config.has_destination(settings):
        logger.debug("posthog-instrument: no instrumentors loaded (disabled or nothing to export to)")
        return
    registry = read_registry() or {}
    instrumentors = registry.get(INSTRUMENTORS, {})
    excluded = {name.strip() for name in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")}
    if "*" in excluded:
        return
    by_module: dict = {}
    for module, name in registry.get(TRIGGERS, {}).items():
        if name in instrumentors and name not in excluded:
            by_module.setdefault(module, []).append((name, instrumentors[name]))
    if by_module:
        _ImportTrigger.install(by_module)


# -- the registry --------------------------------------------------------------------------------

_registry: Optional[dict] = None
_registry_read = False


def read_registry() -> Optional[dict]:
    """Our installed ``entry_points.txt`` as {group: {name: value}}, or None if not found.

    Read directly: ``importlib.metadata`` would cost more start-up time than everything else.
    """
    global _registry, _registry_read
    if not _registry_read:
        _registry_read = True
        try:
            _registry = _parse(_find_entry_points_file())
        except Exception:
            logger.debug("posthog-instrument: our entry points could not be read", exc_info=True)
            _registry = None
    return _registry


def _find_entry_points_file() -> Optional[str]:
    package_dir = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.dirname(package_dir)] + [p for p in sys.path if p]
    for directory in candidates:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.startswith(DISTRIBUTION + "-") and name.endswith(".dist-info"):
                path = os.path.join(directory, name, "entry_points.txt")
                if os.path.exists(path):
                    return path
    return None


def _parse(path: Optional[str]) -> Optional[dict]:
    if path is None:
        return None
    groups: dict = {}
    current = None
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                current = groups.setdefault(line[1:-1].strip(), {})
            elif current is not None and "=" in line:
                name, _, value = line.partition("=")
                current[name.strip()] = value.strip()
    return groups if TRIGGERS in groups else None


# -- the import hook -------------------------------------------------------------------------------

class _ImportTrigger:
    """A ``sys.meta_path`` finder that never finds anything itself: when a trigger module's
    import begins, it loads that module's instrumentors (which register their own lazy
    post-import hooks) and then lets the finders after it, theirs included, find the module."""

    _lock = threading.RLock()

    def __init__(self, by_module: dict):
        self.pending = dict(by_module)

    @classmethod
    def install(cls, by_module: dict) -> None:
        trigger = cls(by_module)
        already = [m for m in by_module if m in sys.modules]  # imported before us (a .pth file)
        if len(already) < len(by_module):
            sys.meta_path.insert(0, trigger)
        for module in already:
            trigger.fire(module)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.pending:
            return None
        self.fire(fullname)
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def fire(self, module: str) -> None:
        with self._lock:
            entries = self.pending.pop(module, ())
            if not self.pending:
                try:
                    sys.meta_path.remove(self)
                except ValueError:
                    pass
        for name, value in entries:
            _load(name, value)


_loaded: set = set()


def _load(name: str, value: str) -> None:
    """Load one of our instrumentors as the distro does (version check, failures contained);
    this runs while the app imports the library, so the distro's imports cost start-up nothing."""
    if name in _loaded:
        return
    _loaded.add(name)
    try:
        from importlib.metadata import EntryPoint

        from .distro import PostHogDistro

        PostHogDistro().load_instrumentor(EntryPoint(name, value, INSTRUMENTORS))
    except Exception as exc:
        logger.debug("posthog-instrument: skipping %s: %s", name, exc)
