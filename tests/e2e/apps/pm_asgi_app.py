"""A FastAPI app (for uvicorn, and gunicorn with uvicorn workers) whose route makes an OpenAI call.

``GET /chat?tag=T`` asks the model with the prompt ``"T pid=<worker pid>"`` through the async
client and answers ``{"pid": ..., "reply": ...}``; ``GET /pid`` answers the serving process's
pid without an LLM call (to notice a reload). Each worker makes one call with the prompt
``"startup pid=<pid>"`` when it starts (in the lifespan), as apps that warm up a model do.
"""

import contextlib
import os

import openai
from fastapi import FastAPI

client = openai.AsyncOpenAI(max_retries=0)


async def ask(tag):
    response = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"{tag} pid={os.getpid()}"}]
    )
    return response.choices[0].message.content


@contextlib.asynccontextmanager
async def lifespan(app):
    await ask("startup")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/pid")
async def pid():
    return {"pid": os.getpid()}


@app.get("/chat")
async def chat(tag: str = "none"):
    return {"pid": os.getpid(), "reply": await ask(tag)}
