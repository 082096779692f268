"""An ordinary OpenAI application using the endpoints besides chat: legacy completions, audio
(transcriptions, translations, speech) and images (generation, edits), run unmodified by the
end-to-end tests.

It reads OPENAI_BASE_URL and OPENAI_API_KEY like any OpenAI app, runs the scenarios named on the
command line in order, and prints what it saw.
"""

import asyncio
import sys

import openai

AUDIO = ("meeting.mp3", b"ID3\x04\x00FAKE-UPLOADED-AUDIO-BYTES", "audio/mpeg")
PHOTO = ("photo.png", b"\x89PNG\r\n\x1a\nFAKE-UPLOADED-IMAGE-BYTES", "image/png")


def client():
    return openai.OpenAI(max_retries=0)


def show(*values):
    print(*values, flush=True)


def completion():
    r = client().completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hello", max_tokens=20, temperature=0.2, stop=["\n"], user="user-42"
    )
    show("completion", type(r).__name__, repr(r.choices[0].text), r.choices[0].finish_reason, r.usage.total_tokens)


def completion_two_prompts():
    r = client().completions.create(model="gpt-3.5-turbo-instruct", prompt=["First", "Second"], max_tokens=5)
    show("completion_two_prompts", len(r.choices), [c.finish_reason for c in r.choices])


def completion_stream():
    chunks = list(client().completions.create(model="gpt-3.5-turbo-instruct", prompt="Stream hello", stream=True))
    show(
        "completion_stream",
        len(chunks),
        repr("".join(c.choices[0].text for c in chunks if c.choices)),
        sum(c.usage is not None for c in chunks),
    )


async def completion_async_stream():
    stream = await openai.AsyncOpenAI(max_retries=0).completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Async stream hello", stream=True
    )
    texts = [c.choices[0].text async for c in stream if c.choices]
    show("completion_async_stream", repr("".join(texts)))


def transcribe_tokens():
    r = client().audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, prompt="A meeting", language="en")
    show("transcribe_tokens", type(r).__name__, r.text, r.usage.type, r.usage.input_tokens)


def transcribe_duration():
    r = client().audio.transcriptions.create(model="whisper-1", file=AUDIO, response_format="verbose_json")
    show("transcribe_duration", type(r).__name__, r.text, r.duration, r.usage.seconds if r.usage else None)


def transcribe_text():
    r = client().audio.transcriptions.create(model="whisper-1", file=AUDIO, response_format="text")
    show("transcribe_text", type(r).__name__, repr(r))


def transcribe_stream():
    events = list(client().audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=AUDIO, stream=True))
    show("transcribe_stream", [e.type for e in events], events[-1].text)


async def translate_async():
    r = await openai.AsyncOpenAI(max_retries=0).audio.translations.create(model="whisper-1", file=AUDIO)
    show("translate_async", type(r).__name__, r.text)


def transcribe_error():
    try:
        client().audio.transcriptions.create(model="error-400", file=AUDIO)
    except openai.BadRequestError as exc:
        show("transcribe_error", type(exc).__name__, exc.status_code)


def speech():
    r = client().audio.speech.create(model="tts-1", voice="alloy", input="Hello there, listener", speed=1.1)
    show("speech", type(r).__name__, len(r.content))


def speech_streaming():
    with client().audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input="Streamed speech", response_format="wav", instructions="Cheerful"
    ) as response:
        show("speech_streaming", len(b"".join(response.iter_bytes())))


def image_url():
    r = client().images.generate(model="dall-e-3", prompt="A red fox", size="1024x1792", quality="hd", n=1)
    show("image_url", type(r).__name__, r.data[0].url.split("?")[0], r.data[0].revised_prompt)


def image_b64():
    r = client().images.generate(model="gpt-image-1", prompt="Two cats", n=2, size="1024x1024", quality="low")
    show("image_b64", len(r.data), len(r.data[0].b64_json), r.usage.output_tokens)


def image_edit():
    r = client().images.edit(model="gpt-image-1", image=[PHOTO, PHOTO], prompt="Add a hat")
    show("image_edit", len(r.data), r.usage.input_tokens_details.image_tokens)


def image_variation():
    r = client().images.create_variation(model="dall-e-2", image=PHOTO, n=2, size="256x256")
    show("image_variation", len(r.data))


async def image_async_stream():
    stream = await openai.AsyncOpenAI(max_retries=0).images.generate(
        model="gpt-image-1", prompt="A boat", stream=True, partial_images=1
    )
    show("image_async_stream", [event.type async for event in stream])


def raw_responses():
    raw = client().images.with_raw_response.generate(model="dall-e-2", prompt="Raw fox", n=1)
    text = client().audio.transcriptions.with_raw_response.create(model="whisper-1", file=AUDIO, response_format="text")
    show("raw_responses", raw.http_request.url.path, len(raw.parse().data), repr(text.parse()))


def image_error():
    try:
        client().images.generate(model="error-429", prompt="Anything")
    except openai.RateLimitError as exc:
        show("image_error", type(exc).__name__, exc.status_code)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        scenario = globals()[name]
        if asyncio.iscoroutinefunction(scenario):
            asyncio.run(scenario())
        else:
            scenario()
