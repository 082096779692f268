"""gunicorn settings for the process-model tests: each worker makes one LLM call once it is up."""


def post_worker_init(worker):
    from pm_wsgi_app import startup

    startup()
