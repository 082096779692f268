"""An ordinary FastAPI app that calls OpenAI while serving requests (run under uvicorn)."""

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse

import web_llm

app = FastAPI()


@app.get("/chat")
async def chat(request: Request):
    return {"reply": await web_llm.achat(dict(request.query_params))}


@app.get("/chat_sync")
def chat_sync(request: Request):  # a sync endpoint: FastAPI runs it in a worker thread
    return {"reply": web_llm.chat(dict(request.query_params))}


@app.get("/stream")
async def stream(request: Request):
    params = dict(request.query_params)

    async def body():
        yield "thinking...\n"
        yield await web_llm.achat(params)  # the model is called while the response streams

    return StreamingResponse(body(), media_type="text/plain")


@app.get("/background")
async def background(request: Request, tasks: BackgroundTasks):
    tasks.add_task(web_llm.achat, dict(request.query_params))  # runs after the response is sent
    return {"scheduled": True}
