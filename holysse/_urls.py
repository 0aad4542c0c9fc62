"""Addresses: which hosts are this machine, what an origin is, and which
redirects are followed carrying what (credentials only to the same origin).
Pure URL logic, no I/O: :mod:`holysse.transport` uses it to follow redirects.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

from . import exceptions as exc_
from ._redact import is_credential
from ._types import HTTPRequest

__all__ = ["MAX_REDIRECTS", "hostname", "is_loopback", "redirect_target", "url_origin"]


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: Redirects followed for one request, and which statuses are followed per
#: method: a POST only when the status keeps the method and the body.
MAX_REDIRECTS = 5
_FOLLOWED = {"POST": frozenset({307, 308}), "GET": frozenset({301, 302, 303, 307, 308})}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None  # requests reports the malformed URL


def redirect_target(request: HTTPRequest, status: int, headers: Mapping[str, str]) -> HTTPRequest | None:
    """The request to send after a redirect, or ``None`` when ``status`` is
    not one to follow (the caller then reports it as an error status).

    A POST follows only 307 and 308, which keep the method and the body
    (301/302/303 would turn a streaming POST into a GET); a GET follows every
    redirect. A redirect to another origin (scheme, host or port) drops the
    credentials (``Authorization``, ``x-api-key``, ``api-key``, cookies):
    the key is only ever sent where the caller pointed ``base_url``.

    :raises ProtocolError: the target is not http(s), carries credentials, or
        downgrades ``https://`` to ``http://``.
    """
    if status not in _FOLLOWED.get(request.method.upper(), _FOLLOWED["POST"]):
        return None
    location = next((value for name, value in headers.items() if name.lower() == "location"), None)
    if not location:
        return None
    url = urljoin(request.url, location.strip())
    old, new = urlsplit(request.url), urlsplit(url)
    if new.scheme not in _DEFAULT_PORTS or not new.hostname or new.username or new.password:
        raise exc_.ProtocolError(f"{request.url} redirected to an unusable address ({status}); not following it.")
    if old.scheme == "https" and new.scheme == "http":
        raise exc_.ProtocolError(
            f"{request.url} redirected to plain http:// ({new.hostname}); not following a downgrade from https. "
            "Set base_url to the final address if that is really intended."
        )
    kept = dict(request.headers)
    if _origin(old) != _origin(new):
        kept = {name: value for name, value in kept.items() if not is_credential(name)}
    return HTTPRequest(request.method, url, kept, request.json)


def _origin(parts: Any) -> tuple[str, str, int]:
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def url_origin(url: str) -> tuple[str, str, int] | None:
    try:
        return _origin(urlsplit(url))
    except ValueError:
        return None  # requests reports the malformed URL
