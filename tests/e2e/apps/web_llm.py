"""What the web apps' views do: one OpenAI chat completion, described by the request's query.

``case`` goes into the prompt (so a test can find the call's span); ``user`` becomes OpenAI's
``user``; ``sdk`` / ``sdk_session`` wrap the call in PostHog's own SDK context; ``ctx`` /
``ctx_session`` wrap it in ``posthog_autoinstrument.context``. Everything else about who the
call belongs to comes from the request's headers, which the views never read.
"""

import contextlib

import openai

MODEL = "gpt-4o-mini"
_clients = {}


def _client(kind):
    if kind not in _clients:
        _clients[kind] = (openai.AsyncOpenAI if kind == "async" else openai.OpenAI)(max_retries=0)
    return _clients[kind]


def _first(params, name):
    value = params.get(name)
    return value[0] if isinstance(value, list) else value


def _request(params):
    kwargs = dict(model=MODEL, messages=[{"role": "user", "content": f"case={_first(params, 'case')}"}])
    if _first(params, "user"):
        kwargs["user"] = _first(params, "user")
    return kwargs


@contextlib.contextmanager
def _identity(params):
    with contextlib.ExitStack() as stack:
        if _first(params, "sdk"):
            import posthog

            stack.enter_context(posthog.new_context(fresh=True, capture_exceptions=False))
            posthog.identify_context(_first(params, "sdk"))
            if _first(params, "sdk_session"):
                posthog.set_context_session(_first(params, "sdk_session"))
        if _first(params, "ctx"):
            import posthog_autoinstrument

            stack.enter_context(
                posthog_autoinstrument.context(
                    distinct_id=_first(params, "ctx"), session_id=_first(params, "ctx_session")
                )
            )
        yield


def chat(params):
    with _identity(params):
        return _client("sync").chat.completions.create(**_request(params)).choices[0].message.content


async def achat(params):
    with _identity(params):
        response = await _client("async").chat.completions.create(**_request(params))
        return response.choices[0].message.content
