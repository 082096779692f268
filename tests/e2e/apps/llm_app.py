"""An ordinary command-line program that calls OpenAI, run unmodified by the launcher,
configuration and delivery tests.

It can be run as a script, as ``python -m llm_app``, or through a console-script style
wrapper that calls ``main()``. Options choose what it does and shows; its output never
depends on whether it is instrumented (except with ``--show-patch`` and ``--pid``, which
exist to observe exactly that).
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _options(argv):
    parser = argparse.ArgumentParser(prog="llm_app")
    parser.add_argument("--calls", type=int, default=1, help="chat completions to make")
    parser.add_argument("--threads", type=int, default=1, help="make the calls from this many threads")
    parser.add_argument("--tag", default="main", help="put into the prompt, to tell processes apart")
    parser.add_argument("--exit", type=int, default=0, help="exit code")
    parser.add_argument("--pid", action="store_true", help="print os.getpid()")
    parser.add_argument("--stdin", action="store_true", help="echo what arrives on stdin")
    parser.add_argument("--show-patch", action="store_true", help="print the type of Completions.create")
    parser.add_argument("--child", action="store_true", help="run this program again as a child process")
    parser.add_argument("--timing", action="store_true", help="print how long the calls took, on stderr")
    parser.add_argument("--linger", type=float, default=0.0, help="seconds of other work after the calls")
    parser.add_argument("--finish-time", action="store_true", help="print the wall-clock time main() ends, on stderr")
    return parser.parse_args(argv)


def main(argv=None):
    options = _options(sys.argv[1:] if argv is None else argv)
    if options.pid:
        print(f"pid={os.getpid()}", flush=True)
    if options.stdin:
        print(f"stdin={sys.stdin.read()!r}", flush=True)
    if options.calls:
        import openai

        if options.show_patch:
            create = openai.resources.chat.completions.completions.Completions.__dict__["create"]
            print(f"create={type(create).__name__}", flush=True)
        client = openai.OpenAI(max_retries=0)

        def call(_):
            return client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"hello from {options.tag}"}]
            )

        started = time.perf_counter()
        if options.threads > 1:
            with ThreadPoolExecutor(options.threads) as pool:
                responses = list(pool.map(call, range(options.calls)))
        else:
            responses = [call(i) for i in range(options.calls)]
        elapsed = time.perf_counter() - started
        tokens = sum(r.usage.total_tokens for r in responses)
        reply = responses[-1].choices[0].message.content
        print(f"{options.tag}: calls={options.calls} reply={reply!r} tokens={tokens}", flush=True)
        if options.timing:
            print(f"calls took {elapsed:.4f} s", file=sys.stderr, flush=True)
    if options.child:
        child = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--tag", "child"], capture_output=True, text=True
        )
        print(f"child said {child.stdout.strip()!r} and exited {child.returncode}", flush=True)
        sys.stderr.write(child.stderr)
    time.sleep(options.linger)
    print("done", flush=True)
    if options.finish_time:
        print(f"finished at {time.time():.6f}", file=sys.stderr, flush=True)
    return options.exit


if __name__ == "__main__":
    sys.exit(main())
