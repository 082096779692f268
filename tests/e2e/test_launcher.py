"""End to end: the ``posthog-instrument`` launcher.

The launcher must be invisible to the program it runs (same pid, stdin, arguments, exit
code, PYTHONPATH and sitecustomize) while every Python process it starts, however it is
started, sends its LLM calls to PostHog. Each test runs the real console script as a
subprocess against the loopback OpenAI and PostHog stand-ins.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import posthog_autoinstrument
from tests.conftest import APPS, LAUNCHER, clean_env, run
from tests.e2e.traces import posthog_input, message_text

SYSTEM_PYTHON = "/root/.pyenv/versions/3.11.7/bin/python3"
APP = str(APPS / "llm_app.py")
REPLY = "'Hello from fake OpenAI'"


def app_env(fake_openai, posthog, **overrides: str) -> dict:
    env = clean_env(
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_API_KEY="sk-test-secret-key",
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST=posthog.host,
        POSTHOG_EXPORT_INTERVAL="0.05",
    )
    env.update(overrides)
    return env


def prompts(posthog) -> list:
    """The user prompt of every span PostHog accepted, sorted."""
    assert posthog.rejections == []
    return sorted(message_text(posthog_input(s)[0]) for s in posthog.spans)


def make_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


# ---------------------------------------------------------------------------
# The process is the app's own: pid, stdin, arguments, exit code
# ---------------------------------------------------------------------------


def test_app_keeps_its_pid_stdin_arguments_and_exit_code(fake_openai, posthog):
    proc = subprocess.Popen(
        [LAUNCHER, "python", APP, "--pid", "--stdin", "--show-patch", "--tag", "pid test", "--exit", "3"],
        env=app_env(fake_openai, posthog),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate("first line\nsecond line\n", timeout=60)
    assert proc.returncode == 3, stderr
    assert stdout.splitlines() == [
        f"pid={proc.pid}",  # exec, not a child process: signals and waits reach the app itself
        "stdin='first line\\nsecond line\\n'",
        "create=FunctionWrapper",  # instrumented
        f"pid test: calls=1 reply={REPLY} tokens=18",
        "done",
    ]
    assert stderr == ""
    assert prompts(posthog) == ["hello from pid test"]


@pytest.mark.parametrize("separator", [[], ["--"]], ids=["plain", "double dash"])
def test_options_after_the_command_belong_to_the_app(fake_openai, posthog, separator):
    code = "import sys; print(sys.argv[1:])"
    command = [LAUNCHER, *separator, "python", "-c", code, "--version", "--dry-run", "-h"]
    result = run(command, app_env(fake_openai, posthog))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['--version', '--dry-run', '-h']\n"
    assert result.stderr == ""


# ---------------------------------------------------------------------------
# Every way of starting a Python program is instrumented
# ---------------------------------------------------------------------------


def _start_forms(tmp_path: Path, form: str, env: dict):
    """Return (command, cwd) that starts llm_app in the given way; prepares files in tmp_path."""
    shebang = f"#!{sys.executable}\n"
    if form == "python -m":
        return [LAUNCHER, "python", "-m", "llm_app"], str(APPS)
    if form == "console script":
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        make_executable(bin_dir / "llm-tool", shebang + "import sys\nfrom llm_app import main\nsys.exit(main())\n")
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        env["PYTHONPATH"] = str(APPS)
        return [LAUNCHER, "llm-tool"], str(tmp_path)
    script = make_executable(tmp_path / "tool.py", shebang + Path(APP).read_text())
    if form == "./script.py":
        return [LAUNCHER, f"./{script.name}"], str(tmp_path)
    if form == "script.py in cwd":
        return [LAUNCHER, script.name], str(tmp_path)
    raise AssertionError(form)


@pytest.mark.parametrize("form", ["python -m", "console script", "./script.py", "script.py in cwd"])
def test_every_way_of_starting_python_is_instrumented(fake_openai, posthog, tmp_path, form):
    env = app_env(fake_openai, posthog)
    command, cwd = _start_forms(tmp_path, form, env)
    result = run([*command, "--tag", form, "--exit", "5"], env, cwd=cwd)
    assert result.returncode == 5, result.stderr
    assert result.stdout == f"{form}: calls=1 reply={REPLY} tokens=18\ndone\n"
    assert result.stderr == ""
    assert prompts(posthog) == [f"hello from {form}"]
    assert len(fake_openai.requests) == 1


def test_child_python_process_is_instrumented_too(fake_openai, posthog):
    result = run([LAUNCHER, "python", APP, "--tag", "parent", "--child"], app_env(fake_openai, posthog))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"parent: calls=1 reply={REPLY} tokens=18\n"
        f'child said "child: calls=1 reply={REPLY} tokens=18\\ndone" and exited 0\n'
        "done\n"
    )
    assert result.stderr == ""
    assert prompts(posthog) == ["hello from child", "hello from parent"]


def test_command_line_flags_configure_the_export(fake_openai, posthog):
    env = clean_env(OPENAI_BASE_URL=fake_openai.base_url, OPENAI_API_KEY="sk-test", POSTHOG_EXPORT_INTERVAL="0.05")
    command = [
        LAUNCHER,
        "--api-key",
        "phc_from_flag",
        "--host",
        posthog.host,
        "--distinct-id",
        "user-7",
        "--privacy-mode",
        "python",
        APP,
    ]
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (request,) = posthog.requests
    assert request["headers"]["authorization"] == "Bearer phc_from_flag"
    (span,) = posthog.spans
    attrs = span["attributes"]
    assert attrs["posthog.distinct_id"] == "user-7"
    assert "$process_person_profile" not in attrs
    assert not {"$ai_input", "$ai_output_choices", "gen_ai.input.messages", "gen_ai.output.messages"} & set(
        attrs
    )  # privacy mode
    assert attrs["gen_ai.usage.input_tokens"] == 11


# ---------------------------------------------------------------------------
# The user's environment is kept
# ---------------------------------------------------------------------------


def test_user_pythonpath_and_sitecustomize_are_kept(fake_openai, posthog, tmp_path):
    site_dir, lib_dir = tmp_path / "site", tmp_path / "lib"
    site_dir.mkdir()
    lib_dir.mkdir()
    log = tmp_path / "sitecustomize.log"
    (site_dir / "sitecustomize.py").write_text(
        "import os\n"
        "MARK = 'user sitecustomize'\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n"
    )
    (lib_dir / "userlib.py").write_text("VALUE = 'from the user PYTHONPATH'\n")
    env = app_env(fake_openai, posthog, PYTHONPATH=os.pathsep.join([str(site_dir), str(lib_dir)]))

    result = run([LAUNCHER, "python", str(APPS / "pythonpath_app.py")], env)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["sitecustomize"] == "user sitecustomize"
    assert lines["userlib"] == "from the user PYTHONPATH"
    assert lines["reply"] == "Hello from fake OpenAI"
    # The user's entries follow ours, in their order, for this process and its children.
    pythonpath = eval(lines["pythonpath"])  # noqa: S307 - our own app's repr of a list of str
    assert pythonpath[1:] == [str(site_dir), str(lib_dir)]
    sys_path = eval(lines["sys.path"])  # noqa: S307
    assert sys_path.index(str(site_dir)) < sys_path.index(str(lib_dir))
    # The user's sitecustomize ran in the app's process (its module is the one the app sees).
    assert lines["pid"] in log.read_text().splitlines()
    assert prompts(posthog) == ["hello from pythonpath_app"]


def test_empty_pythonpath_entry_still_means_the_current_directory(tmp_path):
    """``export PYTHONPATH=$PYTHONPATH:/lib`` with PYTHONPATH unset gives ``:/lib``: cwd is importable."""
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    (work / "localmod.py").write_text("VALUE = 'imported from cwd'\n")
    make_executable(bin_dir / "local-tool", f"#!{sys.executable}\nimport localmod\nprint(localmod.VALUE)\n")
    env = clean_env(
        POSTHOG_API_KEY="phc_test_project_token",
        POSTHOG_HOST="http://127.0.0.1:9",
        PYTHONPATH=f"{os.pathsep}{tmp_path / 'lib'}",
    )
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"

    plain = run(["local-tool"], env, cwd=str(work))
    assert (plain.returncode, plain.stdout) == (0, "imported from cwd\n"), plain.stderr
    instrumented = run([LAUNCHER, "local-tool"], env, cwd=str(work))
    assert (instrumented.returncode, instrumented.stdout) == (0, "imported from cwd\n"), instrumented.stderr


def test_python_without_the_package_warns_once_and_runs_normally(fake_openai, posthog):
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} not available")
    probe = run([SYSTEM_PYTHON, "-c", "import posthog_autoinstrument"], clean_env())
    assert probe.returncode != 0, "the system python must not have posthog_autoinstrument for this test"
    env = app_env(fake_openai, posthog)
    command = [APP, "--calls", "0", "--pid", "--stdin", "--exit", "4"]

    plain = run([SYSTEM_PYTHON, *command], env)
    instrumented = run([LAUNCHER, SYSTEM_PYTHON, *command], env)

    assert plain.returncode == instrumented.returncode == 4
    assert plain.stderr == ""
    strip_pid = lambda out: [line for line in out.splitlines() if not line.startswith("pid=")]  # noqa: E731
    assert strip_pid(instrumented.stdout) == strip_pid(plain.stdout) == ["stdin=''", "done"]
    (warning,) = instrumented.stderr.splitlines()
    assert warning.startswith("posthog-instrument: ")
    assert SYSTEM_PYTHON in warning
    assert "uninstrumented" in warning
    assert posthog.requests == []


# ---------------------------------------------------------------------------
# The launcher's own interface
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["no-such-program-4f2a", "./no-such-script.py"])
def test_unknown_command_exits_127_with_one_clear_line(tmp_path, command):
    result = run([LAUNCHER, command, "--flag"], clean_env(POSTHOG_API_KEY="phc_x"), cwd=str(tmp_path))
    assert result.returncode == 127
    assert result.stdout == ""
    assert result.stderr == f"posthog-instrument: {command}: command not found\n"


def test_non_executable_script_exits_126_like_a_shell(tmp_path):
    (tmp_path / "script.py").write_text(f"#!{sys.executable}\nprint('hi')\n")
    result = run([LAUNCHER, "./script.py"], clean_env(POSTHOG_API_KEY="phc_x"), cwd=str(tmp_path))
    assert result.returncode == 126
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("posthog-instrument: ./script.py: ")
    assert "permission denied" in line.lower() or "not executable" in line.lower()


def test_help_and_version():
    env = clean_env()
    help_run = run([LAUNCHER, "--help"], env)
    assert help_run.returncode == 0
    assert help_run.stdout.startswith("usage: posthog-instrument ")
    for option in ("--api-key", "--host", "--distinct-id", "--privacy-mode", "--dry-run", "--debug", "--version"):
        assert option in help_run.stdout
    assert help_run.stderr == ""

    version_run = run([LAUNCHER, "--version"], env)
    assert version_run.returncode == 0
    assert version_run.stdout == f"posthog-instrument {posthog_autoinstrument.__version__}\n"

    no_command = run([LAUNCHER], env)
    assert no_command.returncode == 2
    assert no_command.stdout == ""
    assert "usage: posthog-instrument" in no_command.stderr


def test_the_usual_launch_imports_neither_argparse_nor_the_api():
    # `posthog-instrument COMMAND ...` runs before every program it starts: argparse, shutil (with
    # re and enum) and the optional API's module were 34 ms of our 141 ms start-up.
    code = (
        "import sys; before = set(sys.modules); from posthog_autoinstrument import cli; "
        "print(sorted(m for m in ('argparse', 'shutil', 're', 'posthog_autoinstrument.identity') "
        "if m in sys.modules and m not in before))"
    )
    result = run([sys.executable, "-c", code], clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
    # ...while the API is still there when the app asks for it.
    api = run([sys.executable, "-c", "import posthog_autoinstrument as p; print(p.context.__name__)"], clean_env())
    assert api.stdout == "context\n", api.stderr
