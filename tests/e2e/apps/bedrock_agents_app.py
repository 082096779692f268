"""An ordinary boto3 app using Agents for Amazon Bedrock, run unmodified by the end-to-end tests.

Configured only through the variables boto3 reads (AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME,
AWS_ACCESS_KEY_ID, ...); runs the scenarios named on the command line in order and prints what
it saw.
"""

import sys
import threading

import boto3

KB = "KB12345678"
MODEL_ARN = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"


def client():
    return boto3.client("bedrock-agent-runtime")


def show(*values):
    print(*values, flush=True)


def read_agent(response):
    text, kinds = "", []
    for event in response["completion"]:
        kind = next(iter(event))
        kinds.append(kind)
        if kind == "chunk":
            text += event["chunk"]["bytes"].decode()
    return text, kinds


def invoke_agent(agent_id="AGENT123", session="session-0001", trace=True, question="What is the weather in Paris?"):
    response = client().invoke_agent(
        agentId=agent_id, agentAliasId="ALIAS1", sessionId=session, inputText=question, enableTrace=trace
    )
    return response, *read_agent(response)


def agent():
    response, text, kinds = invoke_agent()
    show("agent", response["completion"].__class__.__name__, response["sessionId"], repr(text), kinds.count("trace"))


def agent_without_trace():
    _, text, kinds = invoke_agent(session="session-0002", trace=False, question="Weather without trace?")
    show("agent_without_trace", repr(text), kinds)


def inline_agent():
    response = client().invoke_inline_agent(
        sessionId="session-0006",
        agentName="Planner",
        foundationModel="anthropic.claude-3-5-haiku-20241022-v1:0",
        instruction="You plan trips and answer weather questions.",
        inputText="Plan a day in Paris",
        enableTrace=True,
    )
    text, kinds = read_agent(response)
    show("inline_agent", repr(text), kinds.count("trace"))


def agent_return_control():
    response = client().invoke_agent(
        agentId="return-control", agentAliasId="ALIAS1", sessionId="session-0007", inputText="Weather, your tools"
    )
    for event in response["completion"]:
        control = event["returnControl"]
        function = control["invocationInputs"][0]["functionInvocationInput"]
        show("agent_return_control", control["invocationId"], function["function"], function["parameters"][0]["value"])


def collaborators():
    _, text, kinds = invoke_agent(agent_id="supervisor", session="session-0003", question="Ask the forecaster")
    show("collaborators", repr(text), kinds.count("trace"))


def concurrent():
    results = {}

    def run(n):
        results[n] = invoke_agent(session=f"session-100{n}", question=f"Concurrent question {n}")[1]

    threads = [threading.Thread(target=run, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    show("concurrent", sorted(results.items()))


def agent_errors():
    try:
        invoke_agent(agent_id="error-404", session="session-0004")
    except Exception as exc:
        show(
            "agent_error",
            type(exc).__name__,
            exc.response["Error"]["Code"],
            exc.response["ResponseMetadata"]["HTTPStatusCode"],
        )
    seen = []
    try:
        response = client().invoke_agent(
            agentId="stream-error", agentAliasId="ALIAS1", sessionId="session-0005", inputText="Break midway"
        )
        for event in response["completion"]:
            seen.append(event["chunk"]["bytes"].decode())
    except Exception as exc:
        show("agent_stream_error", seen, type(exc).__name__, exc.response["Error"]["Code"])


def retrieve():
    response = client().retrieve(
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


def retrieve_error():
    try:
        client().retrieve(knowledgeBaseId="KB-error-429", retrievalQuery={"text": "anything"})
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


def retrieve_and_generate():
    response = client().retrieve_and_generate(
        input={"text": "What is the capital of France?"}, retrieveAndGenerateConfiguration=rag_configuration()
    )
    show("rag", response["output"]["text"], response["sessionId"], len(response["citations"]))


def retrieve_and_generate_stream():
    response = client().retrieve_and_generate_stream(
        input={"text": "Stream the capital of France"}, retrieveAndGenerateConfiguration=rag_configuration()
    )
    kinds = [next(iter(event)) for event in response["stream"]]
    show("rag_stream", response["sessionId"], kinds)


def other_calls():
    # Not recorded: another operation of the same client.
    c = client()
    show("other", c.meta.service_model.service_name, c.can_paginate("retrieve"))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        globals()[name]()
