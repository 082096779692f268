"""Start-up loads nothing until the application imports a library we instrument (fast_start.py),
and takes OpenTelemetry's own loader as soon as the user configures an exporter of their own."""

from __future__ import annotations

import json
import sys

from posthog_autoinstrument import fast_start
from tests.conftest import LAUNCHER, clean_env, run

PROBE = """
import json, sys
def loaded(*names):
    return sorted(n for n in names if n in sys.modules)
before = loaded("wrapt", "asyncio", "packaging", "importlib.metadata", "opentelemetry.instrumentation",
                "opentelemetry.instrumentation.auto_instrumentation", "openai",
                "posthog_autoinstrument.instrumentation.openai")
import openai
from openai.resources.chat.completions import Completions
after = {"patched": type(Completions.__dict__["create"]).__name__,
         "adapter": "posthog_autoinstrument.instrumentation.openai" in sys.modules}
print(json.dumps({"before": before, "after": after}))
"""


def probe(**env: str) -> dict:
    done = run(
        [LAUNCHER, sys.executable, "-c", PROBE],
        clean_env(POSTHOG_API_KEY="phc_test_project_token", POSTHOG_HOST="http://127.0.0.1:9", **env),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_start_up_loads_no_instrumentation_machinery_until_the_app_imports_an_llm_library():
    result = probe()
    assert result["before"] == []
    assert result["after"] == {"patched": "FunctionWrapper", "adapter": True}


def test_disabled_instrumentations_are_honoured():
    result = probe(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="posthog_anthropic, posthog_openai")
    assert result["after"] == {"patched": "function", "adapter": False}


def test_a_user_exporter_takes_the_upstream_loader_which_instruments_the_same():
    result = probe(OTEL_TRACES_EXPORTER="console")
    assert "opentelemetry.instrumentation.auto_instrumentation" in result["before"]
    assert result["after"]["patched"] == "FunctionWrapper"


def test_every_instrumentor_we_register_has_a_trigger_and_every_trigger_an_instrumentor():
    registry = fast_start.read_registry()
    ours = {name for name in registry[fast_start.INSTRUMENTORS] if name.startswith("posthog_")}
    triggered = set(registry[fast_start.TRIGGERS].values())
    assert ours == triggered
