"""The Lambda runtime client hook against runtime clients shaped unlike awslambdaric's."""

import types

from posthog_autoinstrument.instrumentation import aws_lambda


def _module(**classes):
    module = types.ModuleType("awslambdaric.lambda_runtime_client")
    module.__dict__.update(classes)
    return module


def test_a_runtime_client_without_the_methods_we_hook_gets_one_line_and_no_change(capsys):
    class LambdaRuntimeClient:  # a release that renamed what posts responses
        def send_response(self, invoke_id, data):
            return ("sent", invoke_id, data)

    aws_lambda.hook_runtime_client(_module(LambdaRuntimeClient=LambdaRuntimeClient))

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("posthog-instrument: this Lambda runtime client (awslambdaric")
    assert "not delivered after each invocation" in lines[0]
    assert LambdaRuntimeClient().send_response("id", b"{}") == ("sent", "id", b"{}")


def test_an_older_client_class_is_hooked_without_a_word(capsys, monkeypatch):
    flushed = []
    monkeypatch.setattr(aws_lambda, "deliver_pending", lambda: flushed.append(True))

    class LambdaRuntimeClient:  # before awslambdaric 3: no base class
        def post_invocation_result(self, invoke_id, result_data, content_type="application/json"):
            return ("result", invoke_id, flushed[:])

        def post_invocation_error(self, invoke_id, error_response_data, xray_fault):
            return ("error", invoke_id, flushed[:])

    aws_lambda.hook_runtime_client(_module(LambdaRuntimeClient=LambdaRuntimeClient))

    client = LambdaRuntimeClient()
    assert client.post_invocation_result("a", b"{}") == ("result", "a", [True])
    assert client.post_invocation_error("b", "{}", "") == ("error", "b", [True, True])
    assert capsys.readouterr().err == ""


def test_a_flush_that_fails_never_stops_the_response(monkeypatch):
    class Broken:
        flush_timeout = 1.0

        def has_pending(self):
            raise RuntimeError("broken")

    monkeypatch.setattr(aws_lambda.lifecycle, "current_processor", lambda: Broken())
    aws_lambda.deliver_pending()  # no exception
