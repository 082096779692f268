"""Agents for Amazon Bedrock's formats (formats/bedrock_agents.py) on saved payloads, shaped as
boto3 parses them: knowledge-base queries and results, RetrieveAndGenerate requests and
citations, InvokeAgent's chunk, returnControl and trace events."""

from __future__ import annotations

import json

from posthog_autoinstrument.formats import bedrock_agents as agents

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
FILTER = {
    "andAll": [{"equals": {"key": "country", "value": "France"}}, {"greaterThan": {"key": "year", "value": 2000}}]
}


def trace_event(trace: dict, collaborator: str | None = None) -> dict:
    chain = [{"agentAliasArn": "arn:aws:bedrock:us-east-1:1:agent-alias/A/B"}]
    part = {"agentId": "A", "agentAliasId": "B", "sessionId": "s-1", "callerChain": chain, "trace": trace}
    if collaborator:
        part["collaboratorName"] = collaborator
        part["callerChain"] = chain + [{"agentAliasArn": "arn:aws:bedrock:us-east-1:1:agent-alias/C/D"}]
    return {"trace": part}


# -- knowledge-base queries and results ------------------------------------------------------


def test_a_retrieve_query_with_its_top_k_filter_and_search_type():
    query = agents.retrieve_query(
        {
            "knowledgeBaseId": "KB12345678",
            "retrievalQuery": {"text": "capital of France"},
            "retrievalConfiguration": {
                "vectorSearchConfiguration": {"numberOfResults": 4, "filter": FILTER, "overrideSearchType": "HYBRID"}
            },
        }
    )
    assert (query.knowledge_base_id, query.text, query.top_k) == ("KB12345678", "capital of France", 4)
    assert query.details == {"filter": FILTER, "search_type": "HYBRID"}


def test_an_image_query_keeps_its_format_never_its_bytes():
    query = agents.retrieve_query(
        {
            "knowledgeBaseId": "KB12345678",
            "retrievalQuery": {"type": "IMAGE", "image": {"format": "png", "inlineContent": b"\x89PNG..."}},
            "retrievalConfiguration": {"managedSearchConfiguration": {"numberOfResults": 2}},
        }
    )
    assert query.text is None and query.top_k == 2
    assert query.details == {"query_image": {"format": "png"}}


def test_results_of_every_location_and_content_kind():
    results = [
        {
            "content": {"text": "Paris is the capital of France.", "type": "TEXT"},
            "location": {"type": "S3", "s3Location": {"uri": "s3://docs/paris.txt"}},
            "metadata": {"x-amz-bedrock-kb-chunk-id": "c1"},
            "score": 0.91,
        },
        {
            "content": {"type": "ROW", "row": [{"columnName": "city", "columnValue": "Rome", "type": "STRING"}]},
            "location": {"type": "SQL", "sqlLocation": {"query": "SELECT city FROM capitals"}},
        },
        {
            "content": {"type": "IMAGE", "byteContent": "data:image/png;base64,iVBORw0KGgo="},
            "location": {"type": "WEB", "webLocation": {"url": "https://example.com/map"}},
            "documentId": "doc-7",
            "score": 0.4,
        },
        {
            "content": {"audio": {"s3Uri": "s3://a/b.mp3", "transcription": "Hello"}},
            "location": {"type": "CUSTOM", "customDocumentLocation": {"id": "custom-1"}},
        },
    ]
    found = agents.references(results)
    assert [(r.doc_id, r.location, r.score, r.text) for r in found] == [
        (None, "s3://docs/paris.txt", 0.91, "Paris is the capital of France."),
        (None, "SELECT city FROM capitals", None, "city: Rome"),
        ("doc-7", "https://example.com/map", 0.4, None),  # an image's bytes are not text
        (None, "custom-1", None, "Hello"),
    ]
    assert found[0].metadata == {"x-amz-bedrock-kb-chunk-id": "c1"}


def test_citations_name_each_reference_once():
    reference = {"content": {"text": "Paris."}, "location": {"type": "S3", "s3Location": {"uri": "s3://docs/p.txt"}}}
    other = {"content": {"text": "Rome."}, "location": {"type": "S3", "s3Location": {"uri": "s3://docs/r.txt"}}}
    citations = [
        {"generatedResponsePart": {"textResponsePart": {"text": "a"}}, "retrievedReferences": [reference]},
        {"generatedResponsePart": {"textResponsePart": {"text": "b"}}, "retrievedReferences": [reference, other]},
    ]
    assert [r.location for r in agents.citation_references(citations)] == ["s3://docs/p.txt", "s3://docs/r.txt"]


def test_retrieve_and_generate_over_a_knowledge_base():
    described = agents.retrieve_and_generate(
        {
            "input": {"text": "What is the capital of France?"},
            "retrieveAndGenerateConfiguration": {
                "type": "KNOWLEDGE_BASE",
                "knowledgeBaseConfiguration": {
                    "knowledgeBaseId": "KB12345678",
                    "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/" + MODEL,
                    "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
                    "generationConfiguration": {
                        "inferenceConfig": {
                            "textInferenceConfig": {
                                "maxTokens": 300,
                                "temperature": 0.2,
                                "topP": 0.9,
                                "stopSequences": ["x"],
                            }
                        }
                    },
                },
            },
        }
    )
    assert described.source == "knowledge_base" and described.model.endswith(MODEL)
    assert (described.query.knowledge_base_id, described.query.text, described.query.top_k) == (
        "KB12345678",
        "What is the capital of France?",
        3,
    )
    request = described.request
    assert (request.max_tokens, request.temperature, request.top_p, request.stop_sequences) == (300, 0.2, 0.9, ["x"])


def test_retrieve_and_generate_over_external_sources_names_them_without_their_bytes():
    described = agents.retrieve_and_generate(
        {
            "input": {"text": "Summarise"},
            "retrieveAndGenerateConfiguration": {
                "type": "EXTERNAL_SOURCES",
                "externalSourcesConfiguration": {
                    "modelArn": MODEL,
                    "sources": [
                        {"sourceType": "S3", "s3Location": {"uri": "s3://docs/report.pdf"}},
                        {
                            "sourceType": "BYTE_CONTENT",
                            "byteContent": {"identifier": "notes.txt", "contentType": "text/plain", "data": b"secret"},
                        },
                    ],
                },
            },
        }
    )
    assert described.source == "external_sources" and described.query.knowledge_base_id is None
    assert described.sources == ["s3://docs/report.pdf", "notes.txt"]


# -- InvokeAgent's events --------------------------------------------------------------------


def test_chunks_and_returned_control():
    assert agents.decode_chunk({"chunk": {"bytes": "It is sunny".encode()}}) == "It is sunny"
    assert agents.decode_chunk({"trace": {}}) is None
    handed_back = {
        "returnControl": {
            "invocationId": "inv-1",
            "invocationInputs": [
                {
                    "functionInvocationInput": {
                        "actionGroup": "weather",
                        "function": "get_weather",
                        "parameters": [{"name": "city", "type": "string", "value": "Paris"}],
                    }
                },
                {
                    "apiInvocationInput": {
                        "actionGroup": "web",
                        "httpMethod": "GET",
                        "apiPath": "/forecast",
                        "parameters": [],
                    }
                },
            ],
        }
    }
    assert agents.return_control(handed_back) == [
        {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}, "id": "inv-1"},
        {"type": "tool_call", "name": "GET /forecast", "arguments": {}, "id": "inv-1"},
    ]
    assert agents.return_control({"chunk": {}}) is None


def test_a_model_invocation_input_is_the_prompt_and_settings():
    prompt = {
        "system": "You are a weather agent.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me check."}]},
        ],
    }
    (item,) = agents.trace_events(
        trace_event(
            {
                "orchestrationTrace": {
                    "modelInvocationInput": {
                        "traceId": "t-0",
                        "type": "ORCHESTRATION",
                        "foundationModel": MODEL,
                        "text": json.dumps(prompt),
                        "inferenceConfiguration": {
                            "maximumLength": 2048,
                            "temperature": 0.0,
                            "topK": 250,
                            "stopSequences": ["</invoke>"],
                        },
                    }
                }
            }
        )
    )
    assert (item.kind, item.trace_id, item.stage, item.collaborator) == (
        agents.MODEL_INPUT,
        "t-0",
        "orchestration",
        None,
    )
    request = item.request
    assert (request.model, request.max_tokens, request.temperature, request.top_k) == (MODEL, 2048, 0.0, 250)
    assert item.system == [{"type": "text", "content": "You are a weather agent."}]
    assert [(msg["role"], msg["parts"]) for msg in item.messages] == [
        ("user", [{"type": "text", "content": "Weather in Paris?"}]),
        ("assistant", [{"type": "text", "content": "Let me check."}]),
    ]


def test_a_plain_text_prompt_is_one_user_message():
    (item,) = agents.trace_events(
        trace_event({"preProcessingTrace": {"modelInvocationInput": {"traceId": "t-p", "text": "Classify: hi"}}})
    )
    assert item.stage == "pre_processing" and item.system == []
    assert item.messages == [{"role": "user", "parts": [{"type": "text", "content": "Classify: hi"}]}]


def test_a_model_invocation_output_is_read_as_the_models_body_with_bedrocks_usage():
    raw = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 900, "output_tokens": 40},
    }
    (item,) = agents.trace_events(
        trace_event(
            {
                "orchestrationTrace": {
                    "modelInvocationOutput": {
                        "traceId": "t-0",
                        "rawResponse": {"content": json.dumps(raw)},
                        "reasoningContent": {"reasoningText": {"text": "The user wants weather."}},
                        "metadata": {"usage": {"inputTokens": 1000, "outputTokens": 42}},
                    }
                }
            }
        )
    )
    result = item.result
    assert item.kind == agents.MODEL_OUTPUT
    assert (result.model, result.response_id, result.finish_reason) == (
        "claude-3-5-haiku-20241022",
        "msg_1",
        "tool_call",
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1000, 42)  # Bedrock's count first
    assert result.parts == [
        {"type": "reasoning", "content": "The user wants weather."},
        {"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}, "id": "toolu_1"},
    ]


def test_a_raw_response_that_is_not_json_is_its_text():
    (item,) = agents.trace_events(
        trace_event(
            {
                "postProcessingTrace": {
                    "modelInvocationOutput": {
                        "traceId": "t-post",
                        "rawResponse": {"content": "<final_response>Sunny</final_response>"},
                        "parsedResponse": {"text": "Sunny"},
                    }
                }
            }
        )
    )
    assert item.stage == "post_processing" and item.result.usage is None
    assert item.result.parts == [{"type": "text", "content": "<final_response>Sunny</final_response>"}]


def test_invocations_and_their_observations():
    def orchestration(body: dict, collaborator: str | None = None) -> list:
        return agents.trace_events(trace_event({"orchestrationTrace": body}, collaborator))

    (tool,) = orchestration(
        {
            "invocationInput": {
                "traceId": "t-1",
                "actionGroupInvocationInput": {
                    "actionGroupName": "bookings",
                    "apiPath": "/book",
                    "verb": "post",
                    "parameters": [{"name": "id", "value": "7"}],
                    "requestBody": {"content": {"application/json": {"properties": [{"name": "seats", "value": "2"}]}}},
                },
            }
        }
    )
    assert (tool.kind, tool.name, tool.value) == (agents.TOOL_INPUT, "post /book", {"id": "7", "seats": "2"})
    (code,) = orchestration({"invocationInput": {"traceId": "t-2", "codeInterpreterInvocationInput": {"code": "1+1"}}})
    assert (code.kind, code.name, code.value) == (agents.TOOL_INPUT, "code_interpreter", {"code": "1+1"})
    (lookup,) = orchestration(
        {"invocationInput": {"traceId": "t-3", "knowledgeBaseLookupInput": {"knowledgeBaseId": "KB1", "text": "Paris"}}}
    )
    assert (lookup.kind, lookup.name, lookup.value) == (agents.KNOWLEDGE_BASE_INPUT, "KB1", "Paris")
    (delegate,) = orchestration(
        {
            "invocationInput": {
                "traceId": "t-4",
                "agentCollaboratorInvocationInput": {"agentCollaboratorName": "Forecaster", "input": {"text": "Rain?"}},
            }
        }
    )
    assert (delegate.kind, delegate.name, delegate.value) == (agents.COLLABORATOR_INPUT, "Forecaster", "Rain?")

    (found,) = orchestration(
        {
            "observation": {
                "traceId": "t-3",
                "knowledgeBaseLookupOutput": {
                    "retrievedReferences": [
                        {"content": {"text": "Paris."}, "location": {"s3Location": {"uri": "s3://p"}}}
                    ]
                },
            }
        }
    )
    assert found.kind == agents.OBSERVATION and [r.location for r in found.value] == ["s3://p"]
    (ran,) = orchestration(
        {"observation": {"traceId": "t-2", "codeInterpreterInvocationOutput": {"executionError": "NameError"}}}
    )
    assert ran.value == "NameError"
    (final,) = orchestration({"observation": {"traceId": "t-5", "finalResponse": {"text": "Sunny."}}}, "Forecaster")
    assert (final.kind, final.value, final.collaborator) == (agents.FINAL_RESPONSE, "Sunny.", "Forecaster")


def test_failures_guardrails_and_other_events():
    failure, guardrail = agents.trace_events(
        trace_event(
            {
                "failureTrace": {"traceId": "t-9", "failureReason": "Lambda timed out", "failureCode": 500},
                "guardrailTrace": {"traceId": "t-9", "action": "INTERVENED"},
            }
        )
    )
    assert (failure.kind, failure.value) == (agents.FAILURE, "Lambda timed out")
    assert (guardrail.kind, guardrail.value) == (agents.GUARDRAIL, "INTERVENED")
    assert agents.trace_events({"chunk": {"bytes": b"x"}}) == []
    assert agents.trace_events({"trace": {"trace": {"orchestrationTrace": {"rationale": {"text": "why"}}}}}) == []
