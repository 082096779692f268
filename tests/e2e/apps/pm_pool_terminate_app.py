"""``multiprocessing`` pools ended by ``with Pool(...)`` (which calls ``terminate()``: SIGTERM to
each worker), with the start method named on the command line; and, with ``blocked``, a process
whose main thread is blocked in a lock when SIGTERM arrives.

Each pool worker makes a "startup" call in its initializer (exported at once: that starts its
export thread); every later call then stays queued until the worker is terminated:

- idle: the workers answer their tasks and wait for more (the main thread blocked on the pool's
  queue lock, which ``terminate()`` takes and never gives back) when the pool is terminated;
- busy: each worker is inside its task (sleeping, after its call) when the pool is terminated.

``blocked``: one call (exported at once), a line on stdin, a second call (queued); then it starts
a thread of its own (sleeping), prints the native ids of its main thread, of that thread and of
ours, and blocks its main thread in a lock acquire forever.
"""

import multiprocessing
import os
import sys
import threading
import time

import openai


def ask(prompt):
    response = openai.OpenAI(max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
    )
    return response.choices[0].message.content


def warm(method, ready):
    ask(f"{method} startup pid={os.getpid()}")
    ready.put(os.getpid())


def idle_task(tag):
    ask(f"{tag} pid={os.getpid()}")
    return tag


def busy_task(tag, started):
    ask(f"{tag} pid={os.getpid()}")
    started.put(tag)
    time.sleep(120)  # terminated in here


def pools(method):
    context = multiprocessing.get_context(method)
    with context.Manager() as manager:
        ready, started = manager.Queue(), manager.Queue()
        with context.Pool(2, initializer=warm, initargs=(method, ready)) as pool:
            [ready.get(timeout=120) for _ in range(2)]  # both workers are up
            print("idle", pool.map(idle_task, [f"{method} idle {n}" for n in range(4)], chunksize=1), flush=True)
        with context.Pool(2, initializer=warm, initargs=(method, ready)) as pool:
            tags = [f"{method} busy {n}" for n in range(2)]
            pool.starmap_async(busy_task, [(tag, started) for tag in tags], chunksize=1)
            print("busy", sorted(started.get(timeout=120) for _ in tags), flush=True)
    print("done", flush=True)


def blocked():
    ask("blocked warm")
    print("warm", flush=True)
    sys.stdin.readline()
    ask("blocked pending")
    ours = [thread.native_id for thread in threading.enumerate() if thread.name.startswith("posthog")]
    helper = threading.Thread(target=time.sleep, args=(600,), daemon=True)  # the app's own thread
    helper.start()
    print("threads", threading.main_thread().native_id, helper.native_id, *ours, flush=True)
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # never returns: only a signal ends the process


if __name__ == "__main__":
    if sys.argv[1] == "blocked":
        blocked()
    else:
        pools(sys.argv[1])
