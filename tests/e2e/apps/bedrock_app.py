"""An ordinary boto3 Bedrock application, run unmodified by the end-to-end tests.

It is configured only through the variables boto3 itself reads (AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_MAX_ATTEMPTS), runs the scenarios
named on the command line in order, and prints what it saw.
"""

import gc
import json
import sys

import boto3

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Say hello"}]}]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather for a city",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                },
            }
        }
    ]
}


def client():
    return boto3.client("bedrock-runtime")


def show(*values):
    print(*values, flush=True)


def converse():
    r = client().converse(
        modelId=CLAUDE,
        system=[{"text": "You are terse."}],
        messages=[
            {"role": "user", "content": [{"text": "Say hello"}, {"image": {"format": "png", "source": {"bytes": PNG}}}]}
        ],
        inferenceConfig={"maxTokens": 50, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
        additionalModelRequestFields={"top_k": 40},
    )
    show("converse", r["output"]["message"]["content"][0]["text"], r["stopReason"], r["usage"]["totalTokens"])


def converse_tools():
    r = client().converse(
        modelId=CLAUDE, messages=[{"role": "user", "content": [{"text": "Weather in Paris?"}]}], toolConfig=TOOLS
    )
    use = r["output"]["message"]["content"][1]["toolUse"]
    show("converse_tools", r["stopReason"], use["name"], json.dumps(use["input"]))


def converse_tool_result():
    messages = [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"json": {"temp_c": 21}}]}}],
        },
    ]
    r = client().converse(modelId=CLAUDE, messages=messages, toolConfig=TOOLS)
    show("converse_tool_result", r["output"]["message"]["content"][0]["text"])


def converse_stream():
    r = client().converse_stream(modelId="us." + CLAUDE, messages=MESSAGES, inferenceConfig={"maxTokens": 64})
    stream = r["stream"]
    events = list(stream)
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
    usage = events[-1]["metadata"]["usage"]
    show(
        "converse_stream", stream.__class__.__name__, [next(iter(e)) for e in events], repr(text), usage["outputTokens"]
    )


def converse_stream_tools():
    r = client().converse_stream(
        modelId="amazon.nova-pro-v1:0", messages=[{"role": "user", "content": [{"text": "Weather?"}]}], toolConfig=TOOLS
    )
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in r["stream"]
        if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]
    )
    show("converse_stream_tools", arguments)


def stream_break():
    stream = client().converse_stream(modelId="us." + CLAUDE, messages=MESSAGES)["stream"]
    for n, _ in enumerate(stream):
        if n == 2:
            break
    del stream
    gc.collect()
    show("stream_break")


def stream_close():
    stream = client().converse_stream(modelId="meta.llama3-1-8b-instruct-v1:0", messages=MESSAGES)["stream"]
    first = next(iter(stream))
    stream.close()
    show("stream_close", first)


def stream_error():
    stream = client().converse_stream(modelId="stream-error", messages=MESSAGES)["stream"]
    seen = []
    try:
        for e in stream:
            seen.append(next(iter(e)))
    except Exception as exc:
        show("stream_error", seen, type(exc).__name__, exc.response["Error"]["Code"])


def error():
    try:
        client().converse(modelId="error-400", messages=MESSAGES)
    except Exception as exc:
        show(
            "error",
            type(exc).__name__,
            exc.response["Error"]["Code"],
            exc.response["ResponseMetadata"]["HTTPStatusCode"],
        )


INVOKE_BODIES = [
    (
        CLAUDE,
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 40,
            "temperature": 0.5,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Say hello"}],
        },
    ),
    (
        "us.amazon.nova-lite-v1:0",
        {
            "schemaVersion": "messages-v1",
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
            "inferenceConfig": {"maxTokens": 41, "temperature": 0.4, "topP": 0.8},
        },
    ),
    (
        "amazon.titan-text-express-v1",
        {"inputText": "Say hello", "textGenerationConfig": {"maxTokenCount": 42, "stopSequences": ["User:"]}},
    ),
    ("meta.llama3-8b-instruct-v1:0", {"prompt": "Say hello", "max_gen_len": 43, "temperature": 0.2, "top_p": 0.9}),
    ("mistral.mistral-7b-instruct-v0:2", {"prompt": "<s>[INST] Say hello [/INST]", "max_tokens": 44, "top_k": 50}),
    (
        "mistral.mistral-large-2407-v1:0",
        {
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
            "max_tokens": 45,
        },
    ),
    ("cohere.command-text-v14", {"prompt": "Say hello", "max_tokens": 46, "p": 0.7, "k": 10}),
    (
        "cohere.command-r-v1:0",
        {
            "message": "Say hello",
            "preamble": "Be brief.",
            "max_tokens": 47,
            "chat_history": [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hello!"}],
        },
    ),
]


def _reply_text(model_id, data):
    if "content" in data:
        return data["content"][0]["text"]
    if "output" in data:
        return data["output"]["message"]["content"][0]["text"]
    if "results" in data:
        return data["results"][0]["outputText"]
    if "generation" in data:
        return data["generation"]
    if "outputs" in data:
        return data["outputs"][0]["text"]
    if "choices" in data:
        return data["choices"][0]["message"]["content"]
    if "generations" in data:
        return data["generations"][0]["text"]
    return data.get("text")


def invoke_families():
    c = client()
    for model_id, body in INVOKE_BODIES:
        r = c.invoke_model(
            modelId=model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
        )
        data = json.loads(r["body"].read())
        show("invoke", model_id, r["contentType"], _reply_text(model_id, data))


def invoke_anthropic_tools():
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 40,
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
    }
    r = client().invoke_model(modelId=CLAUDE, body=json.dumps(body).encode())
    block = json.loads(r["body"].read())["content"][0]
    show("invoke_tools", block["name"], block["input"])


def invoke_streams():
    c = client()
    for model_id, body in INVOKE_BODIES:
        r = c.invoke_model_with_response_stream(modelId=model_id, body=json.dumps(body))
        chunks = [json.loads(e["chunk"]["bytes"]) for e in r["body"]]
        show("invoke_stream", model_id, len(chunks), sorted(chunks[-1].get("amazon-bedrock-invocationMetrics", {})))


def embeddings():
    c = client()
    r = c.invoke_model(
        modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "first text", "dimensions": 8})
    )
    show("titan_embed", len(json.loads(r["body"].read())["embedding"]))
    r = c.invoke_model(
        modelId="cohere.embed-english-v3",
        body=json.dumps({"texts": ["first text", "second text"], "input_type": "search_document"}),
    )
    show("cohere_embed", len(json.loads(r["body"].read())["embeddings"]))


def other_aws_calls():
    # Not Bedrock inference: must pass through untouched and unrecorded.
    c = boto3.client("bedrock-runtime")
    show("other", c.meta.service_model.service_name, c.can_paginate("converse"))


if __name__ == "__main__":
    for name in sys.argv[1:]:
        globals()[name]()
