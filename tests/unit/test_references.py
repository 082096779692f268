"""Every file that the code's comments and the project's docs point to exists.

A name like ``startup.py`` or ``tests/constraints.txt`` in a comment, a docstring or a README
is a promise to the reader; one that points nowhere sends them looking. A reference counts as
found when the path exists from the repository root or from the referring file's folder, or
when a file of that name is in the repository. Files of other projects (PostHog's repository,
the posthog SDK, an example app of the user's) are listed below with where they live.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = [
    "src",
    "benchmarks",
    "README.md",
    "pyproject.toml",
    "entry_points.txt",
    "tests/posthog_ingest.py",
    "tests/conftest.py",
    "tests/servers",
    ".ci",
]
PACKAGE = ROOT / "src" / "posthog_autoinstrument"
SKIPPED_DIRS = {".venv", "__pycache__", ".envs", "results", ".git"}
REFERENCE = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.(?:py|md|txt|toml|ya?ml|json|cfg|ini))\b")

# Named in the text as another project's files, or as the user's own.
ELSEWHERE = {
    "app.py": "the user's program, in usage examples",
    "manage.py": "a Django project's, in usage examples",
    "ipython_config.py": "the user's IPython profile",
    "costs/providers/llm-costs.json": "PostHog's repository (nodejs/src/ingestion/pipelines/ai/costs)",
    "costs/provider-matching.ts": "PostHog's repository",
    "setup.py": "a library's, where named",
    "package.json": "a JavaScript project's, where named",
    "benchmarks/results/latest.json": "written by a benchmark run",
    "results/latest.json": "written by a benchmark run",
    "latest.json": "written by a benchmark run",
    "benchmark-spec.json": "written by a benchmark run for the peers' workers",
    "unauthorized.json": "a path the stand-in is asked for in its self-check",
}


def _scanned_files():
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for file in path.rglob("*"):
                parts = file.relative_to(ROOT).parts
                if (
                    file.is_file()
                    and file.suffix in (".py", ".md", ".txt", ".toml")
                    and not SKIPPED_DIRS.intersection(parts)
                    and not any(p.endswith(".egg-info") for p in parts)
                ):
                    yield file


def _repository_names() -> set:
    return {p.name for p in ROOT.rglob("*") if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(ROOT).parts)}


def _installed() -> list:
    # A file of an installed package, named by its path inside the package (openai/__init__.py).
    return [Path(p) for p in sys.path if p.endswith("site-packages")]


def _prose(file: Path) -> list:
    """(line number, text) of what a reader reads: a Python file's comments and strings, any
    other file whole."""
    text = file.read_text(encoding="utf-8", errors="replace")
    if file.suffix != ".py":
        return list(enumerate(text.splitlines(), 1))
    found = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            found.extend((token.start[0] + i, line) for i, line in enumerate(token.string.splitlines()))
    return found


def test_every_referenced_file_exists():
    names = _repository_names()
    missing = []
    for file in _scanned_files():
        for number, line in _prose(file):
            for reference in REFERENCE.findall(line):
                if reference in ELSEWHERE or reference.startswith(("http", "www.")):
                    continue
                if any((base / reference).exists() for base in (ROOT, PACKAGE, file.parent, *_installed())):
                    continue
                if "/" not in reference and reference in names:
                    continue
                missing.append(f"{file.relative_to(ROOT)}:{number}: {reference}")
    assert not missing, "references to files that do not exist:\n" + "\n".join(missing)


def test_the_check_finds_a_missing_file(tmp_path):
    # The pattern sees the references written the ways the code writes them.
    line = "see ``context.py``, tests/constraints.txt and (posthog-ingest.md); not example.com or v1.2"
    assert REFERENCE.findall(line) == ["context.py", "tests/constraints.txt", "posthog-ingest.md"]
