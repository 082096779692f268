"""An application that depends on its own PYTHONPATH: it imports ``userlib`` (found only
through PYTHONPATH) and reports what its own ``sitecustomize`` did, then calls OpenAI."""

import os
import sys

import sitecustomize
import userlib

print(f"sitecustomize={getattr(sitecustomize, 'MARK', None)}", flush=True)
print(f"userlib={userlib.VALUE}", flush=True)
print(f"pid={os.getpid()}", flush=True)
print(f"pythonpath={os.environ.get('PYTHONPATH', '').split(os.pathsep)}", flush=True)
print(f"sys.path={[p for p in sys.path if p]}", flush=True)

import openai  # noqa: E402

response = openai.OpenAI(max_retries=0).chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "hello from pythonpath_app"}]
)
print(f"reply={response.choices[0].message.content}", flush=True)
