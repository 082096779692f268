"""An ordinary Strands Agents application, run unmodified by the end-to-end tests.

Its agents reach the model through Strands' ``OpenAIModel`` pointed at ``OPENAI_BASE_URL`` (the
fake OpenAI server, which answers a user message with a call to the first tool, and a tool
result with text; Strands streams every request). The ``providers`` group asks the same question
through Strands' other model providers: ``BedrockModel`` (Strands' default; boto3's
bedrock-runtime at ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``, streamed and not), ``AnthropicModel``
(``ANTHROPIC_BASE_URL``; with a client that traces itself and one that does not) and ``LiteLLMModel`` (OpenAI's API at ``OPENAI_BASE_URL``), whose
stand-ins answer the same way. It runs the scenario group named on the command line and prints
what it saw. The tests run it with and without ``posthog-instrument``
and compare: the output must be identical.

Every prompt starts with a label ("[sync] ...") so the tests can find its trace.
"""

import sys

# Whether anything imported Strands before the app did (start-up must not).
print("strands imported before the app:", "strands" in sys.modules, flush=True)

import asyncio  # noqa: E402
import os  # noqa: E402

from strands import Agent, tool  # noqa: E402
from strands.models.openai import OpenAIModel  # noqa: E402


def show(*values):
    print(*values, flush=True)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@tool
def broken_tool(city: str) -> str:
    """A tool that fails."""
    raise RuntimeError(f"no weather station in {city}")


def weather_agent(name="weather", tools=(get_weather,), quiet=True):
    model = OpenAIModel(
        client_args={"api_key": os.environ["OPENAI_API_KEY"], "base_url": os.environ["OPENAI_BASE_URL"]},
        model_id="gpt-4o-mini",
    )
    # quiet: no printing of the stream (Strands' default handler prints it as it arrives).
    handler = {"callback_handler": None} if quiet else {}
    return Agent(model=model, name=name, tools=list(tools), system_prompt="Answer in one sentence.", **handler)


def provider_agent(model):
    return Agent(
        model=model, name="weather", tools=[get_weather], system_prompt="Answer in one sentence.", callback_handler=None
    )


def providers_group():
    from strands.models.anthropic import AnthropicModel
    from strands.models.bedrock import BedrockModel
    from strands.models.litellm import LiteLLMModel

    bedrock = "anthropic.claude-3-5-haiku-20241022-v1:0"
    question = "What is the weather in Paris?"
    report("[bedrock-stream]", provider_agent(BedrockModel(model_id=bedrock))(f"[bedrock-stream] {question}"))
    report("[bedrock]", provider_agent(BedrockModel(model_id=bedrock, streaming=False))(f"[bedrock] {question}"))
    anthropic = AnthropicModel(model_id="claude-haiku-4-5", max_tokens=200)
    report("[anthropic]", provider_agent(anthropic)(f"[anthropic] {question}"))
    # A client that does not trace itself (an app's choice; SDKs before 1.14 never do).
    untraced = AnthropicModel(client_args={"open_telemetry": False}, model_id="claude-haiku-4-5", max_tokens=200)
    report("[anthropic-untraced]", provider_agent(untraced)(f"[anthropic-untraced] {question}"))
    litellm = LiteLLMModel(
        client_args={"api_key": os.environ["OPENAI_API_KEY"], "api_base": os.environ["OPENAI_BASE_URL"]},
        model_id="openai/gpt-4o-mini",
    )
    report("[litellm]", provider_agent(litellm)(f"[litellm] {question}"))


def report(label, result):
    usage = result.metrics.accumulated_usage
    show(label, repr(str(result)), "stop", result.stop_reason, "in", usage["inputTokens"], "out", usage["outputTokens"])


async def streamed():
    agent = weather_agent()
    pieces = []
    async for event in agent.stream_async("[stream] What is the weather in Paris? chunks=3"):
        if "data" in event:
            pieces.append(event["data"])
        if "result" in event:
            result = event["result"]
    show("[stream] pieces:", pieces)
    report("[stream]", result)


async def concurrently():
    first, second = await asyncio.gather(
        weather_agent().invoke_async("[first] What is the weather in Paris?"),
        weather_agent().invoke_async("[second] What is the weather in Paris?"),
    )
    report("[first]", first)
    report("[second]", second)


def main_group():
    # Strands' default callback handler prints the streamed answer and the tools it calls.
    result = weather_agent(quiet=False)("[sync] What is the weather in Paris?")
    show()  # the streamed answer ends without a newline
    report("[sync]", result)
    asyncio.run(streamed())
    asyncio.run(concurrently())
    report("[error]", weather_agent(tools=(broken_tool,))("[error] What is the weather in Paris?"))


def own_telemetry_group():
    # The app exports Strands' spans itself, to its own collector (OTEL_EXPORTER_OTLP_ENDPOINT).
    from strands.telemetry import StrandsTelemetry

    telemetry = StrandsTelemetry()
    telemetry.setup_otlp_exporter()
    report("[own]", weather_agent()("[own] What is the weather in Paris?"))
    telemetry.tracer_provider.force_flush()


if __name__ == "__main__":
    {"main": main_group, "own_telemetry": own_telemetry_group, "providers": providers_group}[sys.argv[1]]()
