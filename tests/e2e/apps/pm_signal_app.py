"""A long-running script stopped by a signal: makes its LLM calls, then waits to be stopped.

It makes one call (prints "warm"), waits for a line on stdin, makes a second call (prints
"ready ..."), then sleeps; so a test can make sure the second call is still waiting for export
when it sends the signal. ``--handler`` chooses how the app treats SIGTERM: ``default`` (leave it
alone, as most scripts do), ``exit7`` (its own handler prints and exits with status 7),
``ignore`` (SIG_IGN: SIGTERM does not stop it; it exits 0 when its stdin closes).
"""

import argparse
import signal
import sys
import time

import openai

parser = argparse.ArgumentParser()
parser.add_argument("--handler", choices=["default", "exit7", "ignore"], default="default")
options = parser.parse_args()

if options.handler == "exit7":

    def on_term(signum, frame):
        print(f"app handler got signal {signum}", flush=True)
        sys.exit(7)

    signal.signal(signal.SIGTERM, on_term)
elif options.handler == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

client = openai.OpenAI(max_retries=0)


def ask(prompt):
    return (
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        .choices[0]
        .message.content
    )


ask(f"signal {options.handler} warm")
print("warm", flush=True)
sys.stdin.readline()
print("ready", ask(f"signal {options.handler} pending"), flush=True)

if options.handler == "ignore":
    sys.stdin.read()  # returns when the test closes stdin
    print("stdin closed", flush=True)
else:
    for _ in range(600):
        time.sleep(0.1)
    print("not stopped", flush=True)
