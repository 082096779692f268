"""The way out of the process: the proxy and the CA bundle an export request uses.

Both come from the standard environment variables, read the way ``httpx.Client`` reads them,
so a machine already set up for Python's HTTP clients needs nothing of ours:

- proxy: ``HTTPS_PROXY`` or ``HTTP_PROXY`` (by the URL's scheme), else ``ALL_PROXY``, lower-case
  spellings first; ``NO_PROXY`` exempts hosts. These are ``urllib.request``'s rules, which httpx
  also reads the variables with.
- CA bundle, for ``https`` only: ``SSL_CERT_FILE``, else ``SSL_CERT_DIR`` (httpx's two), else
  ``REQUESTS_CA_BUNDLE`` (what machines set up for ``requests`` have), else certifi's bundle,
  httpx's default. A variable naming nothing that exists is skipped and reported.

``config.ca_bundle`` is cheap (it runs at start-up); ``route`` imports
``urllib.request`` and so runs only where the transport is made, on the export thread, or in
``doctor``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ..config import ca_bundle


@dataclass(frozen=True)
class Route:
    """How a request to ``url`` leaves the process."""

    url: str
    tls: bool
    proxy: Optional[str]  # the proxy URL, None for a direct connection
    proxy_variable: Optional[str]  # the variable that named the proxy
    bypassed: bool  # a proxy is set, but NO_PROXY covers the host
    ca_bundle: Optional[str]  # file or directory; None: certifi's bundle (or plain HTTP)
    ca_variable: Optional[str]

    def describe_proxy(self) -> str:
        if self.proxy:
            return f"{masked_url(self.proxy)} (from {self.proxy_variable})"
        return "none (NO_PROXY covers the host)" if self.bypassed else "none"

    def describe_ca(self) -> str:
        if not self.tls:
            return "not used (plain HTTP)"
        if self.ca_bundle:
            return f"{self.ca_bundle} (from {self.ca_variable})"
        return f"{certifi_bundle()} (certifi, the default)"


def route(url: str, env=os.environ) -> Route:
    """The way to ``url``: the proxy from ``os.environ`` (where urllib reads it), the CA bundle from ``env``."""
    import urllib.request

    parts = urlsplit(url)
    proxies = {key: value for key, value in urllib.request.getproxies_environment().items() if value}
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    target = parts.hostname or ""
    if parts.port:
        target = f"{target}:{parts.port}"  # so NO_PROXY entries written as host:port apply
    bypassed = bool(proxy) and bool(urllib.request.proxy_bypass_environment(target, proxies))  # type: ignore[attr-defined]  # undeclared in typeshed
    if bypassed:
        proxy = None
    variable = None
    if proxy:
        scheme = parts.scheme if proxies.get(parts.scheme) else "all"
        variable = next(
            (
                name
                for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY")
                if (os.environ.get(name) or "").strip() == proxy.strip()
            ),
            f"{scheme.upper()}_PROXY",
        )
        proxy = proxy if "://" in proxy else f"http://{proxy}"
    tls = parts.scheme == "https"
    path, ca_variable, _ = ca_bundle(env) if tls else (None, None, [])
    return Route(url, tls, proxy, variable, bypassed, path, ca_variable)


def environment_proxy(url: str) -> Optional[str]:
    """The proxy ``httpx.Client`` would take from the environment for ``url``."""
    return route(url).proxy


def ssl_context(chosen: Route):
    import ssl

    if chosen.ca_variable == "SSL_CERT_DIR":
        return ssl.create_default_context(capath=chosen.ca_bundle)
    return ssl.create_default_context(cafile=chosen.ca_bundle or certifi_bundle())


def certifi_bundle() -> str:
    import certifi

    return certifi.where()


def untrusted_certificate(exc: BaseException) -> Optional[str]:
    """A plain explanation when ``exc`` comes from a server certificate we do not trust."""
    import ssl

    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            detail = seen.verify_message or str(seen)
            return (
                f"its TLS certificate is not trusted ({detail}); if a proxy or a private CA signs it, "
                "point SSL_CERT_FILE at that CA's certificates (PEM)"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def proxy_refusal(exc: BaseException, chosen: Optional[Route]) -> Optional[str]:
    """A plain explanation when the proxy answered our CONNECT with a 4xx (forbidden, or
    authentication required): final, unlike its 5xx (the destination unreachable for now)."""
    if chosen is None or not chosen.proxy or type(exc).__name__ != "ProxyError":
        return None
    answer = str(exc).strip()
    if not answer[:1] == "4":
        return None
    parts = urlsplit(chosen.url)
    return (
        f"the proxy {chosen.describe_proxy()} refused to connect to {parts.hostname}:{parts.port or (443 if chosen.tls else 80)} "
        f"({answer}); check the proxy's credentials and rules, or exempt the host with NO_PROXY"
    )


def masked_url(url: str) -> str:
    """``url`` without a password (proxy URLs may carry credentials)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
