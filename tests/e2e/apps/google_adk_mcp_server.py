"""An ordinary MCP server (the SDK's ``MCPServer``) over stdio, which the Google ADK app's
``McpToolset`` starts and calls, run unmodified by the end-to-end tests."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("clock")


@server.tool()
def city_time(city: str) -> str:
    """The local time in a city."""
    return f"Noon in {city}"


server.run("stdio")
