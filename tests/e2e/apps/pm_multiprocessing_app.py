"""Child processes made by ``multiprocessing`` with the start method named on the command line.

Three children each make one OpenAI call: a ``Process`` that returns normally, a ``Process``
that ends through ``os._exit(0)`` right after its call, and a ``Pool`` worker, which the pool's
``with`` block terminates (SIGTERM) when it ends. Prompts are ``"<method> <kind>"``. The parent
makes two calls first, so that a fork child starts with the parent's spans still queued.
"""

import multiprocessing
import os
import sys

import openai


def ask(prompt):
    response = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return response.choices[0].message.content


def returns(method):
    ask(f"{method} process")


def exits_hard(method):
    ask(f"{method} os._exit")
    os._exit(0)


def main(method):
    context = multiprocessing.get_context(method)
    ask(f"{method} parent 1")
    ask(f"{method} parent 2")
    for target in (returns, exits_hard):
        child = context.Process(target=target, args=(method,))
        child.start()
        child.join(60)
        print(f"{target.__name__} exitcode={child.exitcode}", flush=True)
    with context.Pool(1) as pool:
        print("pool", pool.map(ask, [f"{method} pool"]), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
