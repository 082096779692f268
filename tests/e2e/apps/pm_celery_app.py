"""A Celery app using the filesystem broker and result backend: no broker service needed.

``PM_CELERY_DIR`` names the directory shared by the producer and the worker. Run the worker
with ``celery -A pm_celery_app worker --pool=prefork``; send tasks with
``python pm_celery_app.py send TAG [TAG ...]``, which prints each task's result. Each prefork
child makes one call, ``"startup pid=<pid>"``, when it starts (``worker_process_init``).
"""

import os
import sys

import openai
from celery import Celery
from celery.signals import worker_process_init

BASE = os.environ["PM_CELERY_DIR"]
for name in ("queue", "processed", "results"):
    os.makedirs(os.path.join(BASE, name), exist_ok=True)

app = Celery("pm_celery_app", broker="filesystem://", backend=f"file://{BASE}/results")
app.conf.update(
    broker_transport_options={
        "data_folder_in": os.path.join(BASE, "queue"),
        "data_folder_out": os.path.join(BASE, "queue"),
        "processed_folder": os.path.join(BASE, "processed"),
        "store_processed": False,
        "polling_interval": 0.1,
    },
    broker_connection_retry_on_startup=True,
    worker_proc_alive_timeout=60,  # a busy test machine starts children slowly
    worker_hijack_root_logger=False,
    result_serializer="json",
    task_serializer="json",
)


def chat(tag):
    response = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"{tag} pid={os.getpid()}"}]
    )
    return response.choices[0].message.content


@worker_process_init.connect
def startup(**kwargs):
    chat("startup")


@app.task(name="pm_celery_app.ask")
def ask(tag):
    return {"pid": os.getpid(), "reply": chat(tag)}


def publish_atomically(tag):
    """kombu's filesystem transport writes a message in place, so a polling worker can read it
    half written and crash; write it to a staging folder and rename it into the queue."""
    result = ask.delay(tag)
    for name in os.listdir(STAGING):
        os.rename(os.path.join(STAGING, name), os.path.join(BASE, "queue", name))
    return result


if __name__ == "__main__" and sys.argv[1:2] == ["send"]:
    STAGING = os.path.join(BASE, "staging")
    os.makedirs(STAGING, exist_ok=True)
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "data_folder_out": STAGING}
    results = [publish_atomically(tag) for tag in sys.argv[2:]]
    for result in results:
        print(result.get(timeout=60)["reply"], flush=True)
