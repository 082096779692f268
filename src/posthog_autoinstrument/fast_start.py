"""What start-up needs without OpenTelemetry's loader: whether that loader is needed at all,
and our adapters, each loaded when the application imports its library.

Why: OpenTelemetry's loader (``opentelemetry.instrumentation.auto_instrumentation``) scans
every installed distribution's entry points, imports ``packaging``, ``importlib.metadata``,
wrapt and through it asyncio, and loads and version-checks every instrumentor before the
application's first line runs: about 150 ms for ``python -c pass``, for libraries the program
may never import.

1. ``loader_not_needed``: the loader runs the user's OpenTelemetry set-up, which must work as
   under ``opentelemetry-instrument``. It is skipped only when it would set up nothing that
   exports anything: no other distro, configurator or loader hook installed (or only
   ``opentelemetry-distro``'s, whose distro sets environment defaults and whose configurator is
   the SDK's standard one), and no ``OTEL_*`` exporter in effect. Other vendors' instrumentors
   are then not loaded: their spans would have nowhere to go.
2. ``watch_imports``: our instrumentors are read from our ``entry_points.txt`` (the single
   registry; its ``posthog_autoinstrument_triggers`` group names the top-level import that
   starts each one), and a tiny import hook waits for those imports. Only when the application
   imports, say, ``openai`` is the OpenAI instrumentor loaded, version-checked and instrumented,
   which then patches lazily as before. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` is honoured.

Entry points are read from the ``entry_points.txt`` files directly: ``importlib.metadata``
would cost more start-up time than everything else.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Optional

logger = logging.getLogger("posthog_autoinstrument")

DISTRIBUTION = "posthog_autoinstrument"  # the dist-info directory's name prefix
INSTRUMENTORS = "posthog_autoinstrument_instrumentors"
TRIGGERS = "posthog_autoinstrument_triggers"

# What OpenTelemetry's loader runs at start-up besides instrumentors
# (opentelemetry/instrumentation/auto_instrumentation/_load.py).
DISTROS = "opentelemetry_distro"
CONFIGURATORS = "opentelemetry_configurator"
LOADER_HOOKS = ("opentelemetry_pre_instrument", "opentelemetry_post_instrument")
_LOADER_GROUPS = (DISTROS, CONFIGURATORS, *LOADER_HOOKS)

# Distros whose only effect is setting these environment defaults (opentelemetry/distro/__init__.py),
# and configurators that only apply the SDK's standard OTEL_* configuration.
KNOWN_DISTROS = {
    "opentelemetry.distro:OpenTelemetryDistro": {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    },
}
STANDARD_CONFIGURATORS = {"opentelemetry.distro:OpenTelemetryConfigurator"}
_GEVENT_PATCH = "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH"


def loader_not_needed(env=os.environ) -> Optional[dict]:
    """None when OpenTelemetry's loader must run the user's set-up; otherwise the environment
    defaults that it would have set (``opentelemetry-distro``'s, when that is installed)."""
    from .configurator import user_configured_otel

    plugins = installed_plugins()
    if plugins is None or env.get(_GEVENT_PATCH) or any(plugins[group] for group in LOADER_HOOKS):
        return None
    defaults: dict = {}
    distros = _selected(plugins[DISTROS], env.get("OTEL_PYTHON_DISTRO"))
    if len(distros) > 1 or (distros and distros[0] not in KNOWN_DISTROS):
        return None
    if distros:
        defaults = {name: value for name, value in KNOWN_DISTROS[distros[0]].items() if name not in env}
    configurators = plugins[CONFIGURATORS]
    if configurators:
        wanted = env.get("OTEL_PYTHON_CONFIGURATOR")
        if len(configurators) > 1 or (wanted is not None and configurators[0][0] != wanted):
            return None  # the loader warns about the ones it skips, as it does under opentelemetry-instrument
        if configurators[0][1] not in STANDARD_CONFIGURATORS:
            return None
    if user_configured_otel({**env, **defaults}):
        return None
    return defaults


def configurator_would_run(env=os.environ) -> bool:
    """Whether OpenTelemetry's loader runs a configurator here (if it runs)."""
    plugins = installed_plugins()
    if plugins is None:
        return True
    return bool(_selected(plugins[CONFIGURATORS], env.get("OTEL_PYTHON_CONFIGURATOR")))


def _selected(entries: list, wanted: Optional[str]) -> list:
    """The entry values the loader would consider: all of them, or those named ``wanted``."""
    return [value for name, value in entries if wanted is None or name == wanted]


def watch_imports(settings) -> None:
    """Load each of our instrumentors when the application imports its library."""
    from . import config

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


# -- entry points --------------------------------------------------------------------------------

_registry: Optional[dict] = None
_plugins: Optional[dict] = None
_scanned = False


def read_registry() -> Optional[dict]:
    """Our installed ``entry_points.txt`` as {group: {name: value}}, or None if not found."""
    _scan()
    return _registry


def installed_plugins() -> Optional[dict]:
    """Other distributions' entries in the groups OpenTelemetry's loader runs at start-up, as
    {group: [(name, value), ...]}; None if they could not be read."""
    _scan()
    return _plugins


def _scan() -> None:
    """One pass over the distributions on sys.path (the first of each name counts, as for
    ``importlib.metadata``); ours is looked for beside this package first."""
    global _registry, _plugins, _scanned
    if _scanned:
        return
    _scanned = True
    listings: dict = {}
    try:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        on_path = [p for p in sys.path if p]
        for directory in [package_parent] + on_path:
            path = _our_entry_points_file(directory, _listing(directory, listings))
            if path is not None:
                _registry = _parse(_read(path).decode("utf-8"))
                break
        plugins: dict = {group: [] for group in _LOADER_GROUPS}
        seen: set = set()
        for directory in on_path:
            for name in _listing(directory, listings):
                key = _distribution_name(name)
                if key is None or key in seen or key == DISTRIBUTION:
                    continue
                seen.add(key)
                data = _read(os.path.join(directory, name, "entry_points.txt"))
                if b"[opentelemetry_" in data:
                    groups = _parse(data.decode("utf-8", "replace"))
                    for group in _LOADER_GROUPS:
                        plugins[group].extend(groups.get(group, {}).items())
        _plugins = plugins
    except Exception:
        logger.debug("posthog-instrument: entry points could not be read", exc_info=True)
        _registry = None
    if _registry is None or TRIGGERS not in _registry:
        _registry = _registry_from_metadata()


def _registry_from_metadata() -> Optional[dict]:
    """Our entry points through ``importlib.metadata``, where our ``entry_points.txt`` is not a
    file beside this package or on sys.path (a zipped install, say)."""
    try:
        from importlib.metadata import entry_points

        registry = {
            group: {ep.name: ep.value for ep in entry_points(group=group)} for group in (INSTRUMENTORS, TRIGGERS)
        }
        return registry if registry[TRIGGERS] else None
    except Exception:
        logger.debug("posthog-instrument: our entry points could not be read", exc_info=True)
        return None


def _listing(directory: str, listings: dict) -> list:
    if directory not in listings:
        try:
            listings[directory] = os.listdir(directory)
        except OSError:
            listings[directory] = []
    return listings[directory]


def _distribution_name(name: str) -> Optional[str]:
    """``foo_bar`` for ``foo_bar-1.0.dist-info`` or ``foo_bar.egg-info``; None for other names."""
    if not name.endswith((".dist-info", ".egg-info")):
        return None
    return name.rsplit(".", 1)[0].partition("-")[0].lower().replace(".", "_")


def _our_entry_points_file(directory: str, names: list) -> Optional[str]:
    for name in names:
        if name.startswith(DISTRIBUTION + "-") and name.endswith(".dist-info"):
            path = os.path.join(directory, name, "entry_points.txt")
            if os.path.exists(path):
                return path
    return None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:  # bytes: most files are only searched, not decoded
            return file.read()
    except OSError:
        return b""


def _parse(text: str) -> dict:
    groups: dict = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = groups.setdefault(line[1:-1].strip(), {})
        elif current is not None and "=" in line:
            name, _, value = line.partition("=")
            current[name.strip()] = value.strip()
    return groups


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
        already = [m for m in by_module if m in sys.modules]  # imported before us (a .pth file, or before start())
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
    """Load and apply one of our instrumentors: its version check is enforced (the upstream
    loader skips it) and a failure disables that instrumentor only. This runs while the app
    imports the library, so start-up pays nothing for it."""
    if name in _loaded:
        return
    _loaded.add(name)
    try:
        import importlib

        module, _, attribute = value.partition(":")
        instrumentor = importlib.import_module(module.strip())
        for part in attribute.strip().split("."):
            instrumentor = getattr(instrumentor, part)
        instrumentor().instrument(raise_exception_on_conflict=True)
    except Exception as exc:
        logger.debug("posthog-instrument: skipping %s: %s", name, exc)
