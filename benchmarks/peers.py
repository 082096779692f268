"""The peers' environment: one venv under ``benchmarks/.envs/peers``, created on demand.

It pins the same SDK versions as the main environment (openai, anthropic, httpx2, pydantic,
opentelemetry-sdk), so the peers' baseline is the same SDK code as ours, and adds the peer
instrumentations plus the OTLP/HTTP exporter they ship spans with. The spec is stamped in the
venv; a changed spec rebuilds it. If the official OTel GenAI package cannot be installed,
the deprecated ``opentelemetry-instrumentation-openai-v2`` is installed instead (and the
result says so).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

from common import ENVS, MAIN_PYTHON, versions

ENV = ENVS / "peers"
STAMP = ENV / "benchmark-spec.json"
LOG = ENVS / "peers-install.log"

PINNED_FROM_MAIN = [
    "openai",
    "anthropic",
    "httpx2",
    "pydantic",
    "opentelemetry-sdk",
    "opentelemetry-api",
    "opentelemetry-proto",
    "opentelemetry-exporter-otlp-proto-common",
]
PEER_REQUIREMENTS = [
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation-openai",  # OpenLLMetry
    "openinference-instrumentation-openai",  # OpenInference
    "opentelemetry-instrumentation-genai-openai",  # official OTel GenAI (successor of openai-v2)
    "posthog",  # PostHog's own posthog.ai.openai wrappers
]
OTEL_GENAI_FALLBACK = "opentelemetry-instrumentation-openai-v2"


def python() -> Path:
    return ENV / "bin" / "python"


def spec() -> dict:
    pins = [f"{name}=={version}" for name, version in versions(PINNED_FROM_MAIN).items()]
    return {"python": sys.version.split()[0], "pins": pins, "requirements": PEER_REQUIREMENTS}


def _pip(args: list, log) -> bool:
    command = [str(python()), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode == 0


def ready() -> bool:
    """The venv exists and was built for the current spec."""
    return python().exists() and STAMP.exists() and json.loads(STAMP.read_text()).get("spec") == spec()


def ensure(say: Callable[[str], None] = print) -> Optional[dict]:
    """Create or reuse the peers' venv; returns what it holds, or None if it cannot be built."""
    if ready():
        return json.loads(STAMP.read_text())
    wanted = spec()
    say(f"building the peers' environment in {ENV} (one-off; log: {LOG}) ...")
    shutil.rmtree(ENV, ignore_errors=True)
    ENVS.mkdir(parents=True, exist_ok=True)
    with open(LOG, "w") as log:
        created = subprocess.run([MAIN_PYTHON, "-m", "venv", str(ENV)], stdout=log, stderr=subprocess.STDOUT)
        if created.returncode != 0:
            say("could not create the peers' venv; peers are skipped")
            return None
        notes = []
        if not _pip([*wanted["pins"], *PEER_REQUIREMENTS], log):
            # Install what can be installed, one peer at a time, and say what failed.
            if not _pip([*wanted["pins"], PEER_REQUIREMENTS[0]], log):
                say("could not install the SDKs in the peers' venv; peers are skipped")
                return None
            for requirement in PEER_REQUIREMENTS[1:]:
                if not _pip([*wanted["pins"], requirement], log):
                    notes.append(f"{requirement} could not be installed")
            if any(OTEL_GENAI_FALLBACK not in n and "genai-openai" in n for n in notes):
                if _pip([*wanted["pins"], OTEL_GENAI_FALLBACK], log):
                    notes.append(f"installed {OTEL_GENAI_FALLBACK} instead (fallback)")
    state = {"spec": wanted, "notes": notes}
    STAMP.write_text(json.dumps(state, indent=1))
    return state
