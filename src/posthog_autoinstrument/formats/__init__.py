"""Wire formats: what providers send and return, translated into the core's terms.

Each module here knows one wire format and turns its requests, responses and streamed chunks
into the message parts of :mod:`..genai.messages`, the core's ``Usage`` and finish reasons:
``openai_chat`` (OpenAI's chat completions, which many providers and frameworks speak),
``openai_compatible`` (what Groq's and Together's SDKs add to it), ``openai_responses``
(OpenAI's Responses API), ``litellm`` (LiteLLM's variant of the chat format), ``anthropic``
(Anthropic's Messages, also inside Bedrock), ``bedrock`` (Converse and each model family's
InvokeModel bodies), ``gemini`` (google-genai) and ``generated_sdk`` (the models of
OpenAPI-generated SDKs). Nothing here patches a library or opens a span: the adapters in
``instrumentation/`` hook the libraries and hand what these translators return to the call they
record. ``fields`` and ``endpoints`` hold the small readers every translator and adapter shares.
"""
