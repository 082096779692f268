"""An ordinary Haystack application, run unmodified by the end-to-end tests.

Its generators and embedders use OpenAI at OPENAI_BASE_URL (``OpenAIChatGenerator`` and
``OpenAITextEmbedder`` read it through the openai SDK). Each question starts with a label
("[rag] ...") so the tests can find its trace; the loopback server calls the first tool offered
while the user spoke last, then answers with text. It prints what it got; the tests compare the
output with and without ``posthog-instrument``.
"""

import asyncio
import contextlib
import os
import threading

import haystack.tracing
from haystack import Document, Pipeline, SuperComponent
from haystack.components.agents import Agent
from haystack.components.builders import ChatPromptBuilder
from haystack.components.embedders import OpenAITextEmbedder
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.tools import Tool

try:  # Haystack 2.x has a separate AsyncPipeline; 3.x runs any Pipeline asynchronously
    from haystack import AsyncPipeline
except ImportError:
    AsyncPipeline = Pipeline
try:  # and a text generator (3.x has chat generators only)
    from haystack.components.builders import PromptBuilder
    from haystack.components.generators import OpenAIGenerator
except ImportError:
    OpenAIGenerator = None

DOCUMENTS = [
    Document(id="doc-paris", content="Jean lives in Paris.", meta={"city": "Paris"}),
    Document(id="doc-berlin", content="Mark lives in Berlin.", meta={"city": "Berlin"}),
    Document(id="doc-rome", content="Giorgio lives in Rome.", meta={"city": "Rome"}),
]
TEMPLATE = [
    ChatMessage.from_user(
        "Answer from these documents.\n{% for doc in documents %}{{ doc.content }}\n{% endfor %}Question: {{ question }}"
    )
]


def show(*values):
    print(*values, flush=True)


def bm25_store():
    store = InMemoryDocumentStore()
    store.write_documents(DOCUMENTS)
    return store


def embedded_store():
    # Vectors of the stand-in's length (8), written directly: no embedding call outside a run.
    store = InMemoryDocumentStore(embedding_similarity_function="cosine")
    store.write_documents(
        [
            Document(id=d.id, content=d.content, meta=d.meta, embedding=[float(i + 1)] * 4 + [0.5] * 4)
            for i, d in enumerate(DOCUMENTS)
        ]
    )
    return store


def rag_pipeline(kind=Pipeline, streaming_callback=None):
    pipeline = kind(metadata={"name": "rag"})
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=bm25_store(), top_k=2))
    pipeline.add_component("prompt_builder", ChatPromptBuilder(template=TEMPLATE, required_variables="*"))
    pipeline.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini", streaming_callback=streaming_callback))
    pipeline.connect("retriever", "prompt_builder.documents")
    pipeline.connect("prompt_builder.prompt", "llm.messages")
    return pipeline


def rag_inputs(label):
    question = f"[{label}] Who lives in Paris?"
    return {"retriever": {"query": question}, "prompt_builder": {"question": question}}


def reply_of(result):
    return result["llm"]["replies"][0].text


# Haystack's own tracing is as the app would have it without posthog-instrument.
show("haystack tracing", haystack.tracing.is_tracing_enabled(), os.environ.get("HAYSTACK_AUTO_TRACE_ENABLED"))

# A RAG pipeline: BM25 retriever, prompt builder, chat generator.
rag = rag_pipeline()
show("rag", reply_of(rag.run(rag_inputs("rag"))))


# The app's own Haystack tracer still sees every span.
class QuietSpan(haystack.tracing.Span):
    def set_tag(self, key, value):
        pass


class OperationsTracer(haystack.tracing.Tracer):
    def __init__(self):
        self.operations = []

    @contextlib.contextmanager
    def trace(self, operation_name, tags=None, parent_span=None):
        self.operations.append(operation_name)
        yield QuietSpan()

    def current_span(self):
        return None


own_tracer = OperationsTracer()
haystack.tracing.enable_tracing(own_tracer)
show("own-tracer", reply_of(rag.run(rag_inputs("own-tracer"))), own_tracer.operations)
haystack.tracing.disable_tracing()

# The same, the generator streaming its reply to a callback.
chunks = []
streamed = rag_pipeline(streaming_callback=lambda chunk: chunks.append(chunk.content))
show("stream", reply_of(streamed.run(rag_inputs("stream"))), len(chunks) > 1)

# A pipeline wrapped as one component of another.
wrapped = SuperComponent(
    pipeline=rag_pipeline(),
    input_mapping={"question": ["retriever.query", "prompt_builder.question"]},
    output_mapping={"llm.replies": "replies"},
)
outer = Pipeline(metadata={"name": "outer"})
outer.add_component("wrapped_rag", wrapped)
show("super", outer.run({"wrapped_rag": {"question": "[super] Who lives in Paris?"}})["wrapped_rag"]["replies"][0].text)

# A text generator (2.x).
if OpenAIGenerator is not None:
    generating = Pipeline(metadata={"name": "generator"})
    generating.add_component("prompt_builder", PromptBuilder(template="{{ question }}"))
    generating.add_component("llm", OpenAIGenerator(model="gpt-4o-mini"))
    generating.connect("prompt_builder.prompt", "llm.prompt")
    show("generator", generating.run({"prompt_builder": {"question": "[generator] Hi"}})["llm"]["replies"])

# A model call that fails: the app gets Haystack's error as without us.
broken = Pipeline(metadata={"name": "broken"})
broken.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user("{{ question }}")]))
broken.add_component("llm", OpenAIChatGenerator(model="error-400"))  # the stand-in answers 400
broken.connect("prompt_builder.prompt", "llm.messages")
try:
    broken.run({"prompt_builder": {"question": "[error] Who lives in Paris?"}})
except Exception as error:
    show("error", type(error).__name__, type(error.__cause__).__name__)

# An embedding pipeline: the query embedded by OpenAI, then an embedding retriever.
embedding = Pipeline()
embedding.add_component("embedder", OpenAITextEmbedder(model="text-embedding-3-small"))
embedding.add_component("retriever", InMemoryEmbeddingRetriever(document_store=embedded_store(), top_k=2))
embedding.connect("embedder.embedding", "retriever.query_embedding")
found = embedding.run({"embedder": {"text": "[embedding] Who lives in Paris?"}})
show("embedding", [d.id for d in found["retriever"]["documents"]])


# An agent with a tool.
def get_weather(city: str) -> str:
    return f"Sunny in {city}"


weather_tool = Tool(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    function=get_weather,
)
agent = Agent(chat_generator=OpenAIChatGenerator(model="gpt-4o-mini"), tools=[weather_tool])
answer = agent.run(messages=[ChatMessage.from_user("[agent] What is the weather in Paris?")])
show("agent", answer["last_message"].text, [m.role.value for m in answer["messages"]])


# A tool that fails: the agent hands the error to the model and goes on.
def broken_lookup(city: str) -> str:
    raise RuntimeError(f"no data for {city}")


broken_tool = Tool(
    name="broken_lookup",
    description="A lookup that always fails.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    function=broken_lookup,
)
failing_agent = Agent(chat_generator=OpenAIChatGenerator(model="gpt-4o-mini"), tools=[broken_tool])
failed = failing_agent.run(messages=[ChatMessage.from_user("[failing] What is the weather in Paris?")])
show("failing", failed["last_message"].text)

# The same agent as a pipeline component.
agent_pipeline = Pipeline(metadata={"name": "agent pipeline"})
agent_pipeline.add_component("weather_agent", agent)
result = agent_pipeline.run({"weather_agent": {"messages": [ChatMessage.from_user("[agent-pipe] Weather in Paris?")]}})
show("agent-pipe", result["weather_agent"]["last_message"].text)


# Two runs of one pipeline at once, in threads.
def threaded(label, results):
    results[label] = reply_of(rag.run(rag_inputs(label)))


results: dict = {}
threads = [threading.Thread(target=threaded, args=(label, results)) for label in ("thread-a", "thread-b")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
show("threads", sorted(results.items()))


# Two asynchronous runs at once, and an agent's asynchronous run.
async def main():
    pipeline = rag_pipeline(AsyncPipeline)
    replies = await asyncio.gather(*(pipeline.run_async(rag_inputs(label)) for label in ("async-a", "async-b")))
    show("async", [reply_of(r) for r in replies])
    answer = await agent.run_async(messages=[ChatMessage.from_user("[agent-async] What is the weather in Paris?")])
    show("agent-async", answer["last_message"].text)
    if hasattr(pipeline, "stream"):  # 3.x: a handle that streams the generator's chunks
        handle = pipeline.stream(rag_inputs("pipeline-stream"))
        pieces = [chunk.content async for chunk in handle]
        show("pipeline-stream", "".join(pieces) == reply_of(handle.result))


asyncio.run(main())
show("done")
