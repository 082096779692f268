"""An ordinary LlamaIndex application, run unmodified by the end-to-end tests.

A vector index over three tiny in-memory documents, embedded with ``OpenAIEmbedding`` and
queried with the ``OpenAI`` LLM, both reaching the endpoint in OPENAI_BASE_URL / OPENAI_API_KEY
(read by the openai SDK). Runs the scenario group named on the command line and prints what it
saw; the tests run it with and without ``posthog-instrument`` and compare the output.

Nothing is downloaded: LlamaIndex's default tokenizer (tiktoken's cl100k_base) and its nltk
data ship inside llama-index-core; the app still sets ``Settings.tokenizer`` to a plain
whitespace tokenizer, as a user who wants no tiktoken at all would, so that no encoding is ever
looked up. Every query starts with a label ("[sync] ...") so the tests can find its spans.
"""

import asyncio
import sys
import threading

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI


def whitespace_tokens(text):
    return text.split()


Settings.tokenizer = whitespace_tokens

DOCUMENTS = [
    Document(text="Paris is the capital of France.", doc_id="doc-paris"),
    Document(text="Berlin is the capital of Germany.", doc_id="doc-berlin"),
    Document(text="Madrid is the capital of Spain.", doc_id="doc-madrid"),
]


def show(*values):
    print(*values, flush=True)


def build_index():
    embed = OpenAIEmbedding(model="text-embedding-3-small")
    index = VectorStoreIndex.from_documents(DOCUMENTS, embed_model=embed)
    return index, OpenAI(model="gpt-4o-mini", temperature=0.1)


def sync_query(index, llm):
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    response = engine.query("[sync] What is the capital of France?")
    show("sync:", response.response, len(response.source_nodes))


def stream_query(index, llm):
    engine = index.as_query_engine(llm=llm, similarity_top_k=2, streaming=True)
    response = engine.query("[stream] What is the capital of France? chunks=3")
    show("stream:", "".join(response.response_gen), len(response.source_nodes))


async def async_query(index, llm):
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)
    response = await engine.aquery("[async] What is the capital of France?")
    show("async:", response.response, len(response.source_nodes))


def mock_query(index):
    engine = index.as_query_engine(llm=MockLLM(max_tokens=5), similarity_top_k=1)
    response = engine.query("[mock] What is the capital of Spain?")
    show("mock:", len(str(response.response).split()), len(response.source_nodes))


def direct_llm(llm):
    r = llm.chat([ChatMessage(role="user", content="[direct] Say hello")])
    show("direct:", r.message.content)


async def direct_astream(llm):
    stream = await llm.astream_chat([ChatMessage(role="user", content="[astream] Say hello chunks=2")])
    last = None
    async for last in stream:
        pass
    show("astream:", last.message.content)


async def concurrent_queries(index, llm):
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    first, second = await asyncio.gather(
        engine.aquery("[gather-1] Capital of France? reply=Paris"),
        engine.aquery("[gather-2] Capital of Spain? reply=Madrid"),
    )
    show("gather:", first.response, second.response)


def threaded_queries(index, llm):
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)
    answers = {}

    def ask(label, reply):
        answers[label] = engine.query(f"[{label}] Capital? reply={reply}").response

    threads = [
        threading.Thread(target=ask, args=("thread-1", "Paris")),
        threading.Thread(target=ask, args=("thread-2", "Madrid")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    show("threads:", answers["thread-1"], answers["thread-2"])


def main(group):
    index, llm = build_index()
    if group in ("all", "queries"):
        sync_query(index, llm)
        stream_query(index, llm)
        asyncio.run(async_query(index, llm))
        direct_llm(llm)
        asyncio.run(direct_astream(llm))
    if group in ("all", "mock_and_concurrent"):
        mock_query(index)
        asyncio.run(concurrent_queries(index, llm))
        threaded_queries(index, llm)
    if group == "sync":
        sync_query(index, llm)
    if group not in ("all", "queries", "mock_and_concurrent", "sync"):
        raise SystemExit(f"unknown group {group!r}")


if __name__ == "__main__":
    main(sys.argv[1])
