"""An ordinary LangChain / LangGraph application, run unmodified by the end-to-end tests.

It reaches OpenAI through ``langchain-openai`` (configured by OPENAI_BASE_URL / OPENAI_API_KEY),
uses LangChain's own fake chat model for one scenario, passes no callbacks anywhere, and prints
what it saw. The tests run it with and without ``posthog-instrument`` and compare the output.

Every run's user text starts with a label ("[agent] ...") so the tests can find its trace.
"""

import asyncio
import sys
import threading
import warnings

import openai
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from opentelemetry import trace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # create_react_agent moved to `langchain.agents` in LangGraph 1.0
    from langgraph.prebuilt import ToolNode, create_react_agent


# One event loop for the whole app: langchain-openai shares one async HTTP client per endpoint,
# which must not outlive the loop it was used on (asyncio.run per scenario would close it).
LOOP = asyncio.new_event_loop()


def run_async(coroutine):
    return LOOP.run_until_complete(coroutine)


def show(*values):
    print(*values, flush=True)


@tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny in {city}"


def model():
    return ChatOpenAI(model="gpt-4o-mini", max_retries=0)


def agent_run(label, results=None):
    agent = create_react_agent(model(), [get_weather])
    result = agent.invoke({"messages": [("user", f"[{label}] What is the weather in Paris?")]})
    messages = result["messages"]
    line = (label, [type(m).__name__ for m in messages], messages[-1].content)
    if results is None:
        show(*line)
    else:
        results[label] = line


async def agent_arun(agent, label):
    result = await agent.ainvoke({"messages": [("user", f"[{label}] What is the weather in Paris?")]})
    return result["messages"]


def lcel_stream():
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "[{label}] {question}")])
    chain = prompt | model() | StrOutputParser()
    pieces = list(chain.stream({"label": "lcel-stream", "question": "Say hello chunks=3"}))
    show("lcel-stream", len(pieces) >= 3, "".join(pieces))


async def lcel_async():
    prompt = ChatPromptTemplate.from_messages([("user", "[{label}] {question}")])
    chain = prompt | model() | StrOutputParser()
    text = await chain.ainvoke({"label": "async", "question": "Say hello reply=async-hello"})
    pieces = [p async for p in chain.astream({"label": "astream", "question": "Say hi chunks=2"})]
    show("async", text, "".join(pieces))


class ShelfRetriever(BaseRetriever):
    """A tiny retriever over an in-memory shelf of documents."""

    shelf: list

    def _get_relevant_documents(self, query, *, run_manager):
        words = set(query.lower().split())
        return [d for d in self.shelf if words & set(d.page_content.lower().split())]


def retrieval():
    retriever = ShelfRetriever(
        shelf=[
            Document(page_content="Paris is the capital of France", metadata={"source": "atlas"}),
            Document(page_content="Berlin is the capital of Germany", metadata={"source": "atlas"}),
        ]
    )
    prompt = ChatPromptTemplate.from_messages([("user", "Context: {context}\n[retrieval] {question}")])

    def join(docs):
        return " / ".join(d.page_content for d in docs)

    chain = (
        {"context": retriever | RunnableLambda(join), "question": RunnablePassthrough()}
        | prompt
        | model()
        | StrOutputParser()
    )
    show("retrieval", chain.invoke("paris facts"))


def model_streams():
    """A chat model streamed directly (a run of its own, no chain around it), sync and async."""
    pieces = [c.content for c in model().stream("[model-stream] Say hello chunks=2")]

    async def astream():
        return [c.content async for c in model().astream("[model-astream] Say hi chunks=2")]

    show("model-stream", "".join(pieces), "".join(run_async(astream())))


@tool
def flaky_lookup(city: str) -> str:
    """Look a city up in a service that is down."""
    raise RuntimeError(f"lookup service down for {city}")


def tool_error():
    agent = create_react_agent(model(), ToolNode([flaky_lookup], handle_tool_errors=True))
    result = agent.invoke({"messages": [("user", "[tool-error] Look up Paris")]})
    messages = result["messages"]
    show("tool-error", [type(m).__name__ for m in messages], messages[2].status, messages[-1].content)


def chain_error():
    def explode(_):
        raise ValueError("no such order")

    chain = ChatPromptTemplate.from_messages([("user", "[{label}] hi")]) | RunnableLambda(explode)
    try:
        chain.invoke({"label": "chain-error"})
    except ValueError as exc:
        show("chain-error", type(exc).__name__, exc)


def fake_model():
    reply = AIMessage(content="Fake hello", usage_metadata={"input_tokens": 5, "output_tokens": 3, "total_tokens": 8})
    fake = GenericFakeChatModel(messages=iter([reply]))
    chain = ChatPromptTemplate.from_messages([("user", "[{label}] hi")]) | fake
    show("fake", chain.invoke({"label": "fake"}).content)


def graph_with_direct_openai():
    """A hand-written graph whose node calls the OpenAI SDK itself, not through LangChain."""
    client = openai.OpenAI(max_retries=0)

    def answer(state: MessagesState):
        question = state["messages"][-1].content
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        return {"messages": [("assistant", reply.choices[0].message.content)]}

    async_client = openai.AsyncOpenAI(max_retries=0)

    async def answer_async(state: MessagesState):
        question = state["messages"][-1].content
        reply = await async_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        return {"messages": [("assistant", reply.choices[0].message.content)]}

    graphs = []
    for node in (answer, answer_async):
        builder = StateGraph(MessagesState)
        builder.add_node("answer", node)
        builder.add_edge(START, "answer")
        builder.add_edge("answer", END)
        graphs.append(builder.compile())
    result = graphs[0].invoke({"messages": [("user", "[direct-node] Say hello")]})
    show("direct-node", result["messages"][-1].content)
    result = run_async(graphs[1].ainvoke({"messages": [("user", "[direct-node-async] Say hello")]}))
    show("direct-node-async", result["messages"][-1].content)


def nested_agent():
    """An agent whose tool asks another agent (a sub-agent as a tool)."""
    expert = create_react_agent(model(), [get_weather], name="weather_expert")

    @tool
    def ask_weather_expert(city: str) -> str:
        """Ask the weather expert about a city."""
        answer = expert.invoke({"messages": [("user", f"[nested-inner] What is the weather in {city}?")]})
        return answer["messages"][-1].content

    boss = create_react_agent(model(), [ask_weather_expert], name="planner")
    result = boss.invoke({"messages": [("user", "[nested-agent] Plan a picnic in Paris")]})
    show("nested-agent", [type(m).__name__ for m in result["messages"]], result["messages"][-1].content)


def concurrent():
    agent = create_react_agent(model(), [get_weather])

    async def both():
        return await asyncio.gather(agent_arun(agent, "concurrent-a"), agent_arun(agent, "concurrent-b"))

    first, second = run_async(both())
    show("concurrent", first[-1].content, second[-1].content, len(first), len(second))
    results = {}
    threads = [threading.Thread(target=agent_run, args=(f"thread-{n}", results)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for label in sorted(results):
        show(*results[label])


def inside_app_span():
    tracer = trace.get_tracer("shop.jobs")
    with tracer.start_as_current_span("nightly-job") as span:
        agent_run("app-span")
        context = span.get_span_context()
        if context.is_valid:  # only under instrumentation (stderr: stdout is compared)
            print(f"app span {context.trace_id:032x} {context.span_id:016x}", file=sys.stderr, flush=True)


SCENARIOS = {
    "agent": lambda: agent_run("agent"),
    "lcel-stream": lcel_stream,
    "async": lambda: run_async(lcel_async()),
    "retrieval": retrieval,
    "model-stream": model_streams,
    "fake": fake_model,
    "tool-error": tool_error,
    "chain-error": chain_error,
    "direct-node": graph_with_direct_openai,
    "nested-agent": nested_agent,
    "concurrent": concurrent,
    "app-span": inside_app_span,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or SCENARIOS:
        SCENARIOS[name]()
