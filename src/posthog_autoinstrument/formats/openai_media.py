"""OpenAI's audio and image endpoints: transcriptions and translations (audio in, text out),
speech (text in, audio out), image generation and edits (text and images in, images out).

Audio and image bytes never become part of a recorded call: files are noted by name, generated
audio by its format, generated images by URL (when the API returns one) or by a note. Usage comes
as the API reports it: tokens (with their audio or image share, which PostHog prices at its own
rate) or, for the duration-billed audio models, the seconds of audio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from ..genai import messages as m
from ..genai import semconv
from ..genai.call_types import Usage
from .fields import arg, get, integer, number


def file_name(file: Any) -> Optional[str]:
    """The name of an uploaded file as the SDK takes it: a ``(name, content, ...)`` tuple, a path,
    or an open file; None for bare bytes."""
    if isinstance(file, tuple) and file:
        file = file[0]
    if isinstance(file, (str, os.PathLike)):
        return os.path.basename(os.fspath(file))
    name = getattr(file, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else None


def file_note(modality: str, file: Any) -> dict:
    """A text part standing for an uploaded file (``[audio: speech.mp3]``), never its bytes."""
    name = file_name(file)
    return m.text(f"[{modality}: {name}]" if name else f"[{modality}]")


# -- transcriptions and translations ----------------------------------------------------------


def audio_input(file: Any, prompt: Any) -> list:
    """The request as one user message: the audio file's note, then the ``prompt`` if any."""
    parts = [file_note("audio", file)]
    if isinstance(prompt, str) and prompt:
        parts.append(m.text(prompt))
    return [m.message("user", parts)]


@dataclass
class AudioResult:
    """What a transcription or translation returned: its text and usage, and the extra
    attributes (audio tokens, seconds of audio) under semconv keys."""

    text: Optional[str] = None
    usage: Optional[Usage] = None
    attributes: dict = field(default_factory=dict)


def audio_result(result: Any) -> AudioResult:
    """A ``Transcription``/``Translation`` (plain or verbose), or the text the SDK returns for the
    ``text``/``srt``/``vtt`` response formats."""
    if isinstance(result, str):
        return AudioResult(text=result)
    found = AudioResult(text=get(result, "text"))
    add_audio_usage(found, get(result, "usage"))
    duration = number(get(result, "duration"))  # verbose_json: the audio's length
    if duration is not None:
        found.attributes.setdefault(semconv.OPENAI_AUDIO_DURATION_SECONDS, float(duration))
    return found


def add_audio_usage(found: AudioResult, usage: Any) -> None:
    """``usage`` of type ``tokens`` (the gpt-4o transcribe models) or ``duration`` (whisper-1)."""
    if usage is None:
        return
    kind = get(usage, "type")
    if kind == "duration":
        seconds = number(get(usage, "seconds"))
        if seconds is not None:
            found.attributes[semconv.OPENAI_AUDIO_DURATION_SECONDS] = float(seconds)
        return
    found.usage = Usage(
        input_tokens=integer(get(usage, "input_tokens")), output_tokens=integer(get(usage, "output_tokens"))
    )
    details = get(usage, "input_token_details")
    audio_tokens = integer(get(details, "audio_tokens")) if details is not None else None
    if audio_tokens:
        found.attributes[semconv.USAGE_AUDIO_INPUT_TOKENS] = audio_tokens


def transcription_parameters(kwargs: dict) -> dict:
    """The request's language and response format, under semconv keys."""
    return {
        semconv.OPENAI_REQUEST_AUDIO_LANGUAGE: arg(kwargs, "language"),
        semconv.OPENAI_REQUEST_RESPONSE_FORMAT: arg(kwargs, "response_format"),
    }


# -- speech ----------------------------------------------------------------------------------


def speech_parameters(kwargs: dict) -> dict:
    """The voice, the audio format and the length of the text to speak (the unit ``tts-1`` is
    billed by), under semconv keys."""
    text = arg(kwargs, "input")
    voice = arg(kwargs, "voice")
    return {
        semconv.OPENAI_REQUEST_AUDIO_VOICE: voice if isinstance(voice, str) else get(voice, "id"),
        semconv.OPENAI_REQUEST_RESPONSE_FORMAT: arg(kwargs, "response_format"),
        semconv.OPENAI_REQUEST_SPEECH_INPUT_CHARACTERS: len(text) if isinstance(text, str) else None,
    }


def speech_input(text: Any, instructions: Any) -> tuple:
    """(messages, system instructions) of a speech request."""
    messages = [m.message("user", [m.text(text)])] if isinstance(text, str) else []
    system = [m.text(instructions)] if isinstance(instructions, str) and instructions else None
    return messages, system


def speech_output(response_format: Any) -> list:
    """The spoken audio, noted by its format (``mp3`` unless asked otherwise)."""
    return [m.output_message([m.text(f"[audio: {response_format or 'mp3'}]")], None)]


# -- images ----------------------------------------------------------------------------------


def image_parameters(kwargs: dict) -> dict:
    """Size, quality, style, background and output format of an image request, under semconv keys
    (the count ``n`` is the request's choice count)."""
    return {
        semconv.OPENAI_REQUEST_IMAGE_SIZE: arg(kwargs, "size"),
        semconv.OPENAI_REQUEST_IMAGE_QUALITY: arg(kwargs, "quality"),
        semconv.OPENAI_REQUEST_IMAGE_STYLE: arg(kwargs, "style"),
        semconv.OPENAI_REQUEST_IMAGE_BACKGROUND: arg(kwargs, "background"),
        semconv.OPENAI_REQUEST_RESPONSE_FORMAT: arg(kwargs, "output_format") or arg(kwargs, "response_format"),
    }


def image_input(prompt: Any, images: Any = None, mask: Any = None) -> list:
    """The request as one user message: the prompt, then a note for each image (and mask) sent."""
    parts = [m.text(prompt)] if isinstance(prompt, str) else []
    if images is not None:
        for image in images if isinstance(images, list) else [images]:
            parts.append(file_note("image", image))
    if mask is not None:
        parts.append(file_note("mask", mask))
    return [m.message("user", parts)] if parts else []


def image_output(response: Any) -> list:
    """One assistant message: each image by its URL, or a note where the API returned it inline
    (base64, which is never recorded), with the prompt the model revised it to, if any."""
    output_format = get(response, "output_format") or "png"
    size = get(response, "size")
    parts = []
    for item in get(response, "data") or ():
        url = get(item, "url")
        if isinstance(url, str) and url and not url.startswith("data:"):
            parts.append(m.uri("image", url))
        else:
            parts.append(m.text(f"[image: {output_format}{', ' + size if isinstance(size, str) else ''}]"))
        revised = get(item, "revised_prompt")
        if isinstance(revised, str) and revised:
            parts.append(m.text(revised))
    return [m.output_message(parts, None)] if parts else []


def image_usage(usage: Any) -> tuple:
    """(Usage, extra attributes) of an image response's token ``usage`` (the gpt-image models):
    the image share of input and output, which PostHog prices at its image rates. Image models
    output images only: without a breakdown every output token is an image token."""
    if usage is None:
        return None, {}
    output_tokens = integer(get(usage, "output_tokens"))
    input_details = get(usage, "input_tokens_details")
    output_details = get(usage, "output_tokens_details")
    image_out = integer(get(output_details, "image_tokens")) if output_details is not None else output_tokens
    extra = {
        semconv.USAGE_IMAGE_INPUT_TOKENS: integer(get(input_details, "image_tokens"))
        if input_details is not None
        else None,
        semconv.USAGE_IMAGE_OUTPUT_TOKENS: image_out,
    }
    return Usage(input_tokens=integer(get(usage, "input_tokens")), output_tokens=output_tokens), {
        key: value for key, value in extra.items() if value
    }
