"""An ordinary OpenAI Agents SDK app whose agent uses an MCP server's tools, run unmodified by
the end-to-end tests: ``python mcp_agents_app.py COMMAND ARGS...`` starts the server with that
command (over stdio). The model (the loopback OpenAI stand-in) calls the server's first tool.

Like the other Agents SDK app, it sends the SDK's own traces to ``$OPENAI_BASE_URL/traces/ingest``.
"""

import asyncio
import os
import sys

from agents import Agent, RunConfig, Runner, set_trace_processors
from agents.mcp import MCPServerStdio
from agents.tracing.processors import BackendSpanExporter, BatchTraceProcessor


async def main() -> None:
    async with MCPServerStdio(params={"command": sys.argv[1], "args": sys.argv[2:]}, name="weather") as server:
        agent = Agent(name="Weather", instructions="Answer briefly.", model="gpt-4o-mini", mcp_servers=[server])
        result = await Runner.run(agent, "What is the weather in Paris?", run_config=RunConfig(workflow_name="mcp"))
        print("final output:", result.final_output, flush=True)


if __name__ == "__main__":
    set_trace_processors(
        [
            BatchTraceProcessor(
                BackendSpanExporter(endpoint=os.environ["OPENAI_BASE_URL"].rstrip("/") + "/traces/ingest")
            )
        ]
    )
    asyncio.run(main())
