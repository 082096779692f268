"""``posthog-instrument [options] COMMAND [ARGS...]``: run a program with LLM analytics on.

The launcher sets the environment and then *replaces itself* with COMMAND (exec), so the
program keeps the pid, signals, stdin/stdout and exit code it would have had. Python
processes started with that environment load ``bootstrap/sitecustomize.py``, which
instruments them.
"""

from __future__ import annotations

import os
import sys

from . import __version__
from .startup import BOOTSTRAP_DIR

TYPE_CHECKING = False  # not typing's: the usual launch imports as little as it can
if TYPE_CHECKING:
    import argparse

_EPILOG = """\
examples:
  POSTHOG_API_KEY=phc_... posthog-instrument python app.py
  posthog-instrument --dry-run python app.py      # print what would be sent, send nothing
  posthog-instrument uvicorn main:app --workers 4
  posthog-instrument doctor                        # check the configuration and the connection

Configuration is read from the environment; see the README for every variable.
"""


def _parser() -> argparse.ArgumentParser:
    import argparse  # only when options of ours are given: see main

    parser = argparse.ArgumentParser(
        prog="posthog-instrument",
        description="Run a Python program so that every LLM call it makes becomes a PostHog LLM analytics event.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"posthog-instrument {__version__}")
    parser.add_argument("--api-key", metavar="TOKEN", help="PostHog project token (sets POSTHOG_API_KEY)")
    parser.add_argument(
        "--host", metavar="URL", help="PostHog host, default https://us.i.posthog.com (sets POSTHOG_HOST)"
    )
    parser.add_argument("--distinct-id", metavar="ID", help="PostHog person for every event (sets POSTHOG_DISTINCT_ID)")
    parser.add_argument(
        "--privacy-mode", action="store_true", help="send no prompts or outputs (sets POSTHOG_PRIVACY_MODE=true)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print each event to stderr as it would be sent, and send nothing (sets POSTHOG_DRY_RUN=true)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="log what the instrumentation does to stderr (sets POSTHOG_DEBUG=true)"
    )
    parser.add_argument("command", help="the program to run, e.g. python")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    return parser


def _apply_options(options: argparse.Namespace, env: dict) -> None:
    if options.api_key is not None:
        env["POSTHOG_API_KEY"] = options.api_key
    if options.host is not None:
        env["POSTHOG_HOST"] = options.host
    if options.distinct_id is not None:
        env["POSTHOG_DISTINCT_ID"] = options.distinct_id
    if options.privacy_mode:
        env["POSTHOG_PRIVACY_MODE"] = "true"
    if options.dry_run:
        env["POSTHOG_DRY_RUN"] = "true"
    if options.debug:
        env["POSTHOG_DEBUG"] = "true"


def prepare_environment(env: dict) -> None:
    """PYTHONPATH gets our bootstrap first, once, keeping the user's entries. Nothing else
    changes: the user's OpenTelemetry settings (OTEL_PYTHON_DISTRO, ...) are theirs."""
    existing = env.get("PYTHONPATH", "")
    # Empty entries mean the current directory to Python: keep them, but add none of our own.
    entries = (
        [p for p in existing.split(os.pathsep) if not p or os.path.abspath(p) != BOOTSTRAP_DIR] if existing else []
    )
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *entries])


def resolve_command(command: str) -> str | None:
    """Find COMMAND like a shell would, plus an executable file given without ``./``.

    An existing file without the execute bit is returned too: exec then fails with
    "Permission denied" and exit status 126, as in a shell.
    """
    if os.sep in command or (os.altsep and os.altsep in command):
        return command if os.path.isfile(command) else None
    found = _search_path(command)
    if found:
        return found
    if os.path.isfile(command):
        return os.path.abspath(command)
    return None


def _search_path(command: str) -> str | None:
    """``shutil.which`` on POSIX, without importing shutil (which brings ``re`` and ``enum``
    along): the first executable file named ``command`` on PATH."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        candidate = os.path.join(directory, command)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    return None


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:
        from . import doctor

        return doctor.main(argv[1:])
    env = dict(os.environ)
    if argv and not argv[0].startswith("-"):
        # The usual launch, `posthog-instrument COMMAND ...` with no option of ours: what argparse
        # would make of it, without importing argparse (with shutil's, about 10 ms of start-up).
        command, args = argv[0], argv[1:]
    else:
        options = _parser().parse_args(argv)
        _apply_options(options, env)
        command, args = options.command, options.args
    if command == "doctor":  # `posthog-instrument --privacy-mode doctor`: check that configuration
        from . import doctor

        os.environ.update(env)
        return doctor.main(args)
    prepare_environment(env)
    executable = resolve_command(command)
    if executable is None:
        print(f"posthog-instrument: {command}: command not found", file=sys.stderr, flush=True)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(executable, [command, *args], env)
    except OSError as exc:
        print(f"posthog-instrument: {command}: {exc.strerror}", file=sys.stderr, flush=True)
        return 126
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
