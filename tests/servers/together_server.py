"""A loopback stand-in for Together AI's API (``TOGETHER_BASE_URL``): ``/v1/...`` paths, ``eos`` as
the natural finish reason, usage on the last stream chunk without being asked, and embeddings
without usage, as Together sends them. See ``_compat_chat``."""

from ._compat_chat import FakeCompatChat, Flavor


class FakeTogether(FakeCompatChat):
    flavor = Flavor(
        name="Together", chat_path="/v1/chat/completions", embeddings_path="/v1/embeddings", stop_reason="eos"
    )
