"""The layers of README's "How it works": formats translate without patching or OpenTelemetry,
and adapters take translation from formats, never from another adapter's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import posthog_autoinstrument

PACKAGE = Path(posthog_autoinstrument.__file__).parent
# Modules under instrumentation/ that exist to be shared by adapters.
SHARED = {"base", "_raw_response"}


def _imports(path: Path) -> list:
    """(module as written, with leading dots; names) of each import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(("." * node.level + (node.module or ""), [alias.name for alias in node.names]))
    return found


def test_formats_import_no_opentelemetry_no_patching_and_no_adapter():
    modules = sorted((PACKAGE / "formats").glob("*.py"))
    assert {p.stem for p in modules} >= {"openai_chat", "openai_responses", "fields", "endpoints"}
    for path in modules:
        for module, _ in _imports(path):
            assert not module.startswith(("opentelemetry", "wrapt")), (path.name, module)
            assert "instrumentation" not in module, (path.name, module)


def test_adapters_import_no_other_adapters_private_names():
    for path in sorted((PACKAGE / "instrumentation").glob("*.py")):
        for module, names in _imports(path):
            if not module.startswith(".") or module.startswith(".."):
                continue
            imported = module.lstrip(".") or None
            if imported in SHARED:
                continue
            private = [n for n in names if n.startswith("_")] if imported else []
            if imported is None:  # ``from . import openai``: a whole adapter, whose privates may then be read
                source = path.read_text()
                private = [f"{alias}._" for alias in _module_aliases(path, names) if f"{alias}._" in source]
            assert not private, (path.name, module, private)


def _module_aliases(path: Path, names: list) -> list:
    aliases = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            aliases += [
                alias.asname or alias.name for alias in node.names if alias.name in names and alias.name not in SHARED
            ]
    return aliases


def _imports_our_adapters(path: Path, module: str) -> bool:
    """Whether an import (as written in ``path``) names our ``instrumentation`` package."""
    if module.startswith("."):
        package = path.parent.relative_to(PACKAGE.parent).parts
        dots = len(module) - len(module.lstrip("."))
        module = ".".join(package[: len(package) - dots + 1] + tuple(filter(None, [module.lstrip(".")])))
    return module == "posthog_autoinstrument.instrumentation" or module.startswith(
        "posthog_autoinstrument.instrumentation."
    )


def test_export_imports_no_adapter():
    # Libraries that trace themselves plug into the export pipeline from their adapter's side
    # (genai.self_tracing): the pipeline, on its own thread, never imports adapter code.
    modules = sorted((PACKAGE / "export").glob("*.py"))
    assert {p.stem for p in modules} >= {"dialect", "foreign", "processor", "exporter"}
    for path in modules:
        for module, names in _imports(path):
            assert not _imports_our_adapters(path, module), (path.name, module)
            if module in ("..", "posthog_autoinstrument"):
                assert "instrumentation" not in names, (path.name, module, names)


def test_our_adapters_package_is_recognised():
    # The check above must be able to fail: the import shapes it sees in a module of export/.
    export = PACKAGE / "export" / "foreign.py"
    assert _imports_our_adapters(export, "..instrumentation.anthropic")
    assert _imports_our_adapters(export, "..instrumentation")
    assert _imports_our_adapters(export, "posthog_autoinstrument.instrumentation.pydantic_ai")
    assert not _imports_our_adapters(export, "opentelemetry.instrumentation.utils")
    assert not _imports_our_adapters(export, "..genai.self_tracing")
    assert not _imports_our_adapters(export, ".dialect")
