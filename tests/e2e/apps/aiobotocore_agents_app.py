"""An ordinary async application using Agents for Amazon Bedrock through aiobotocore, run
unmodified by the end-to-end tests.

Configured only through the variables botocore reads (AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME,
AWS_ACCESS_KEY_ID, ...); runs the scenarios named on the command line in order, in one event
loop with one client, and prints what it saw (the lines the boto3 app prints, where they match).
"""

import asyncio
import sys

from aiobotocore.session import get_session

KB = "KB12345678"
MODEL_ARN = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"


def show(*values):
    print(*values, flush=True)


async def read_agent(response):
    text, kinds = "", []
    async for event in response["completion"]:
        kind = next(iter(event))
        kinds.append(kind)
        if kind == "chunk":
            text += event["chunk"]["bytes"].decode()
    return text, kinds


async def invoke_agent(c, session="session-0001", question="What is the weather in Paris?", agent_id="AGENT123"):
    response = await c.invoke_agent(
        agentId=agent_id, agentAliasId="ALIAS1", sessionId=session, inputText=question, enableTrace=True
    )
    return response, *(await read_agent(response))


async def agent(c):
    response, text, kinds = await invoke_agent(c)
    show("agent", response["completion"].__class__.__name__, response["sessionId"], repr(text), kinds.count("trace"))


async def inline_agent(c):
    response = await c.invoke_inline_agent(
        sessionId="session-0006",
        agentName="Planner",
        foundationModel="anthropic.claude-3-5-haiku-20241022-v1:0",
        instruction="You plan trips and answer weather questions.",
        inputText="Plan a day in Paris",
        enableTrace=True,
    )
    text, kinds = await read_agent(response)
    show("inline_agent", repr(text), kinds.count("trace"))


async def collaborators(c):
    _, text, kinds = await invoke_agent(c, "session-0003", "Ask the forecaster", agent_id="supervisor")
    show("collaborators", repr(text), kinds.count("trace"))


async def concurrent(c):
    # Two runs whose events interleave in one event loop.
    runs = await asyncio.gather(*(invoke_agent(c, f"session-100{n}", f"Concurrent question {n}") for n in (1, 2)))
    show("concurrent", [text for _, text, _ in runs])


async def agent_closed(c):
    # The app stops after the first event and closes the stream.
    response = await c.invoke_agent(
        agentId="AGENT123", agentAliasId="ALIAS1", sessionId="session-0008", inputText="Stop early", enableTrace=False
    )
    stream = response["completion"]
    async for event in stream:
        show("agent_closed", event["chunk"]["bytes"].decode())
        break
    stream.close()


async def agent_errors(c):
    try:
        await invoke_agent(c, "session-0004", agent_id="error-404")
    except Exception as exc:
        show(
            "agent_error",
            type(exc).__name__,
            exc.response["Error"]["Code"],
            exc.response["ResponseMetadata"]["HTTPStatusCode"],
        )
    seen = []
    try:
        response = await c.invoke_agent(
            agentId="stream-error", agentAliasId="ALIAS1", sessionId="session-0005", inputText="Break midway"
        )
        async for event in response["completion"]:
            seen.append(event["chunk"]["bytes"].decode())
    except Exception as exc:
        show("agent_stream_error", seen, type(exc).__name__, exc.response["Error"]["Code"])


async def retrieve(c):
    response = await c.retrieve(
        knowledgeBaseId=KB,
        retrievalQuery={"text": "capital of France"},
        retrievalConfiguration={
            "vectorSearchConfiguration": {
                "numberOfResults": 2,
                "filter": {"equals": {"key": "country", "value": "France"}},
            }
        },
    )
    show("retrieve", [(r["location"]["s3Location"]["uri"], r["score"]) for r in response["retrievalResults"]])


async def retrieve_error(c):
    try:
        await c.retrieve(knowledgeBaseId="KB-error-429", retrievalQuery={"text": "anything"})
    except Exception as exc:
        show("retrieve_error", exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])


def rag_configuration():
    return {
        "type": "KNOWLEDGE_BASE",
        "knowledgeBaseConfiguration": {
            "knowledgeBaseId": KB,
            "modelArn": MODEL_ARN,
            "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
            "generationConfiguration": {
                "inferenceConfig": {"textInferenceConfig": {"maxTokens": 300, "temperature": 0.2}}
            },
        },
    }


async def retrieve_and_generate(c):
    response = await c.retrieve_and_generate(
        input={"text": "What is the capital of France?"}, retrieveAndGenerateConfiguration=rag_configuration()
    )
    show("rag", response["output"]["text"], response["sessionId"], len(response["citations"]))


async def retrieve_and_generate_stream(c):
    response = await c.retrieve_and_generate_stream(
        input={"text": "Stream the capital of France"}, retrieveAndGenerateConfiguration=rag_configuration()
    )
    kinds = [next(iter(event)) async for event in response["stream"]]
    show("rag_stream", response["sessionId"], kinds)


async def other_calls(c):
    # Not recorded: another operation of the same client.
    show("other", c.meta.service_model.service_name, c.can_paginate("retrieve"))


async def main(names):
    async with get_session().create_client("bedrock-agent-runtime") as c:
        for name in names:
            await globals()[name](c)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
