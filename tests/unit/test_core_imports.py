"""The core's modules import on their own, in any order, and genai/ never reaches for identity:
a cycle between them (each importing the other) must not come back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import posthog_autoinstrument

PACKAGE = Path(posthog_autoinstrument.__file__).parent
LAYERS = ("genai", "export", "formats")
# Imports each module named on the command line alone: our package is dropped from sys.modules
# before each, so the module and everything of ours it needs load afresh, in its own order (a
# cycle among our modules fails there), while the third-party modules below them, which cannot
# be part of such a cycle, load once (a new interpreter per module would take seconds).
# Prints, per module, whether importing it brought identity in, or the error.
PROBE = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "posthog_autoinstrument"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException as exc:
        print(name, "failed", repr(exc))
    else:
        print(name, "posthog_autoinstrument.identity" in sys.modules)
"""


def _modules() -> list:
    names = []
    for layer in LAYERS:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            suffix = "" if path.stem == "__init__" else f".{path.stem}"
            names.append(f"posthog_autoinstrument.{layer}{suffix}")
    return names + ["posthog_autoinstrument.config", "posthog_autoinstrument.otel_internals"]


def test_each_module_imports_alone():
    names = _modules()
    assert {"posthog_autoinstrument.genai.recorder", "posthog_autoinstrument.genai.one_generation"} <= set(names)
    run = subprocess.run([sys.executable, "-c", PROBE, *names], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    results = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert set(results) == set(names), run.stdout
    failed = {name: result for name, result in results.items() if result.startswith("failed")}
    assert not failed, failed
    with_identity = [
        name for name, result in results.items() if name.startswith("posthog_autoinstrument.genai") and result == "True"
    ]
    assert not with_identity, f"genai modules that import identity: {with_identity}"


def test_no_genai_source_imports_identity():
    # Imports inside functions too, which importing a module does not run.
    for path in sorted((PACKAGE / "genai").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [alias.name for alias in node.names]
                assert "identity" not in module.split(".") and "identity" not in names, (path.name, module, names)
            elif isinstance(node, ast.Import):
                assert not any("identity" in alias.name.split(".") for alias in node.names), path.name
