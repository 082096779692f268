"""The identity snapshot a call takes when it starts (``identity.capture``) skips its sources
while none can say anything: nothing in the process set a context() block, a web request's
identity or a feature flag, the posthog SDK is not imported, and the context is empty. Each
source must still be read as soon as it can say something."""

import contextvars
import sys
import types

import pytest
from opentelemetry import baggage
from opentelemetry.context import Context

from posthog_autoinstrument import identity


@pytest.fixture
def fresh_process(monkeypatch):
    """As in a process where no identity source was ever used."""
    monkeypatch.setattr(identity, "_ever_set", False)
    monkeypatch.delitem(sys.modules, "posthog.contexts", raising=False)


def in_own_context(function):
    return contextvars.copy_context().run(function)


def test_nothing_to_ask_gives_no_identity(fresh_process):
    assert identity.capture(Context()) is None
    assert identity.privacy_requested() is False


def test_a_context_block_is_read_once_entered(fresh_process):
    def run():
        with identity.context(distinct_id="user-1", privacy_mode=True):
            return identity.capture(Context()), identity.privacy_requested()

    snapshot, private = in_own_context(run)
    assert snapshot.distinct_id == "user-1" and private is True


def test_a_web_requests_identity_is_read(fresh_process):
    def run():
        tokens = identity.enter_request(identity.Identity("request-user", "tracing_headers", "session-1"))
        try:
            return identity.capture(Context())
        finally:
            identity.exit_request(tokens)

    snapshot = in_own_context(run)
    assert (snapshot.distinct_id, snapshot.session_id) == ("request-user", "session-1")


def test_a_recorded_feature_flag_turns_the_sources_on(fresh_process):
    in_own_context(lambda: identity.record_feature_flag("user-1", "new-ui", "test"))
    assert identity._ever_set is True


def test_baggage_in_a_non_empty_context_is_read(fresh_process):
    snapshot = identity.capture(baggage.set_baggage("posthog.distinct_id", "from-baggage"))
    assert snapshot.distinct_id == "from-baggage"


def test_the_posthog_sdk_is_asked_once_imported(fresh_process, monkeypatch):
    contexts = types.ModuleType("posthog.contexts")
    contexts.get_context_distinct_id = lambda: "sdk-user"
    contexts.get_context_session_id = lambda: None
    contexts.get_tags = lambda: {}
    monkeypatch.setitem(sys.modules, "posthog.contexts", contexts)
    assert identity.capture(Context()).distinct_id == "sdk-user"
