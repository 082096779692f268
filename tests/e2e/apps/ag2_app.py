"""An ordinary AG2 application, run unmodified by the end-to-end tests.

It reads the model server's address from ``AG2_APP_BASE_URL`` and the key from
``OPENAI_API_KEY``, runs every scenario and prints what it got. The tests run it with and
without ``posthog-instrument`` and compare: the output must be identical.

Every first message starts with a label ("[tool] ...") so the tests can find its spans. The
fake server answers a request that offers tools, where the user spoke last, with a call of the
first tool; otherwise with the text of the last user message's ``reply="..."`` directive, or
its default.
"""

import asyncio
import os
import threading

from autogen import AssistantAgent, ConversableAgent, GroupChat, GroupChatManager, LLMConfig, UserProxyAgent
from autogen import register_function

BASE_URL = os.environ["AG2_APP_BASE_URL"]


def llm_config(model="gpt-4o-mini"):
    return LLMConfig(
        {
            "api_type": "openai",
            "model": model,
            "base_url": BASE_URL,
            "api_key": os.environ["OPENAI_API_KEY"],
            "price": [0.00015, 0.0006],
        },
        cache_seed=None,
    )


def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


def show(*values):
    print(*values, flush=True)


def pair(name="Weather"):
    assistant = AssistantAgent(name, llm_config=llm_config(), system_message="You report the weather.")
    user = UserProxyAgent("user", human_input_mode="NEVER", code_execution_config=False)
    register_function(get_weather, caller=assistant, executor=user, description="Weather for a city.")
    return user, assistant


def tool_chat():
    user, assistant = pair()
    result = user.initiate_chat(assistant, message="[tool] What is the weather in Paris?", max_turns=2, silent=True)
    show("tool", [m.get("role") for m in result.chat_history], result.summary)


async def async_chat():
    user = ConversableAgent("asker", llm_config=False, human_input_mode="NEVER")
    poet = ConversableAgent("Poet", llm_config=llm_config(), human_input_mode="NEVER")
    result = await user.a_initiate_chat(poet, message='[async] A poem. reply="Roses are red"', max_turns=1, silent=True)
    show("async", result.summary)


def group_chat():
    writer = ConversableAgent("Writer", llm_config=llm_config(), human_input_mode="NEVER", description="Writes text.")
    reviewer = ConversableAgent(
        "Reviewer", llm_config=llm_config(), human_input_mode="NEVER", description="Reviews text."
    )
    user = ConversableAgent("boss", llm_config=False, human_input_mode="NEVER")
    chat = GroupChat([writer, reviewer], messages=[], max_round=3, speaker_selection_method="round_robin")
    manager = GroupChatManager(chat, llm_config=llm_config(), name="Manager")
    result = user.initiate_chat(manager, message='[group] Write a haiku. reply="A haiku"', max_turns=1, silent=True)
    show("group", [m.get("name") for m in result.chat_history], result.summary)


def concurrent():
    answers = {}

    def run(label):
        user, assistant = pair(f"Weather{label[-1].upper()}")
        result = user.initiate_chat(
            assistant, message=f"[{label}] What is the weather in Paris?", max_turns=2, silent=True
        )
        answers[label] = result.summary

    threads = [threading.Thread(target=run, args=(label,)) for label in ("thread-a", "thread-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    show("threads", answers["thread-a"], answers["thread-b"])


def failing():
    user = ConversableAgent("asker", llm_config=False, human_input_mode="NEVER")
    broken = ConversableAgent("Broken", llm_config=llm_config("error-400"), human_input_mode="NEVER")
    try:
        user.initiate_chat(broken, message="[error] Hello", max_turns=1, silent=True)
    except Exception as exc:
        show("error", type(exc).__name__)


if __name__ == "__main__":
    tool_chat()
    asyncio.run(async_chat())
    group_chat()
    concurrent()
    failing()
