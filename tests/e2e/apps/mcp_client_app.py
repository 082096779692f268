"""An ordinary MCP client app, run unmodified by the end-to-end tests.

``python mcp_client_app.py stdio COMMAND ARGS...`` starts the server with that command (in the
SDK's default environment: no variable of ours reaches it but what the command says), or
``python mcp_client_app.py http URL`` connects to a running one. It lists the tools, calls one
that answers (also twice at once), one that fails, and one that asks a model, reads a resource and gets a prompt (with the person in W3C baggage),
and prints what it received: the tests compare the output with and without ``posthog-instrument``.
"""

import asyncio
import sys

from opentelemetry import baggage, context

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def show(*values):
    print(*values, flush=True)


async def scenarios(session: ClientSession) -> None:
    await session.initialize()
    listing = await session.list_tools()
    show("tools:", sorted(tool.name for tool in listing.tools))
    weather = await session.call_tool("get_weather", {"city": "Paris"})
    show("get_weather:", weather.is_error, [block.text for block in weather.content])
    # Two calls at once on one session: each is its own trace on both sides.
    rome, oslo = await asyncio.gather(
        session.call_tool("get_weather", {"city": "Rome"}), session.call_tool("get_weather", {"city": "Oslo"})
    )
    show("at once:", [block.text for block in rome.content + oslo.content])
    broken = await session.call_tool("broken_tool", {"reason": "no network"})
    show("broken_tool:", broken.is_error, [block.text for block in broken.content])
    answer = await session.call_tool("ask_model", {"question": "Say hello"})
    show("ask_model:", answer.is_error, [block.text for block in answer.content])
    resource = await session.read_resource("greeting://ada")
    show("resource:", [content.text for content in resource.contents])
    # The person, in W3C baggage: the request carries it to the server.
    with_person = context.attach(baggage.set_baggage("posthog.distinct_id", "ada"))
    prompt = await session.get_prompt("review", {"code": "x = 1"})
    context.detach(with_person)
    show("prompt:", [(message.role, message.content.text) for message in prompt.messages])


async def main() -> None:
    if sys.argv[1] == "stdio":
        parameters = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:])
        transport = stdio_client(parameters)
    else:
        transport = streamable_http_client(sys.argv[2])
    async with transport as (read, write):
        async with ClientSession(read, write) as session:
            await scenarios(session)


asyncio.run(main())
