"""An ordinary MCP server (the SDK's ``MCPServer``, formerly ``FastMCP``), run unmodified by the
end-to-end tests over stdio or streamable HTTP.

``python mcp_server_app.py stdio OPENAI_BASE_URL`` or ``... http PORT OPENAI_BASE_URL``. One of
its tools asks a model (the openai SDK against the given base URL), so a model call made inside
a tool shows where it lands in the caller's trace.
"""

import sys

from openai import OpenAI

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

transport = sys.argv[1]
server = MCPServer("weather")
model = OpenAI(base_url=sys.argv[-1], api_key="sk-test-secret-key")


@server.tool()
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@server.tool()
def broken_tool(reason: str) -> str:
    """A tool that fails."""
    raise ToolError(f"cannot do that: {reason}")


@server.tool()
def ask_model(question: str) -> str:
    """Asks a model."""
    answer = model.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return answer.choices[0].message.content


@server.resource("greeting://{name}")
def greeting(name: str) -> str:
    """A greeting."""
    return f"Hello, {name}!"


@server.prompt()
def review(code: str) -> str:
    """Asks for a code review."""
    return f"Please review this code: {code}"


if transport == "stdio":
    server.run("stdio")
else:
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
