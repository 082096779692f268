"""An ordinary Flask app that calls OpenAI while serving requests (Werkzeug's server)."""

import sys

from flask import Flask, Response, request, stream_with_context

import web_llm

app = Flask(__name__)


@app.get("/chat")
def chat():
    return {"reply": web_llm.chat(request.args.to_dict())}


@app.get("/stream")
def stream():
    params = request.args.to_dict()

    def body():
        yield "thinking...\n"
        yield web_llm.chat(params)  # the model is called while the response streams

    return Response(stream_with_context(body()), mimetype="text/plain")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True, use_reloader=False)
