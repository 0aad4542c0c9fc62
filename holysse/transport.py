"""HTTP transport: the only module that imports requests and urllib3.

It opens a streaming request (following 307/308 redirects without sending
credentials to another origin: :func:`redirect_target`), hands out the body
as it arrives (``response.raw.read1(65536, decode_content=True)``: immediate
delivery on chunked and close-delimited bodies, gzip decoded at most 64 KiB
per read with urllib3 >= 2.6, so a decompression bomb stays bounded), and
translates every requests/urllib3 error into the holysse tree with
``raise ... from exc``, both while opening and while iterating (the causes
are put in words by :mod:`holysse._transport_errors`).

The seam is the :class:`Transport` protocol: tests and users may plug in their
own, the client never touches requests directly.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import ssl
import threading
import time
from typing import Any, Iterator, Mapping

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from . import exceptions as exc_
from ._redact import guard
from ._transport_errors import bad_response_head, chain, innermost, reason
from ._types import HTTPRequest, Response, Timeout, Transport
from ._urls import MAX_REDIRECTS, hostname, is_loopback, redirect_target, url_origin
from ._version import __version__

__all__ = [
    "Timeout", "HTTPRequest", "Response", "Transport", "RequestsTransport", "is_loopback", "redirect_target",
]

logger = guard(logging.getLogger(__name__))

READ_SIZE = 65536
#: Blocks proxies from the environment (requests drops keys set to None).
_NO_PROXIES: dict[str, Any] = {"http": None, "https": None}




class RequestsTransport:
    """The default :class:`Transport`, on a :class:`requests.Session`.

    :param session: a session of yours (proxies, certificates, mounts are
        honoured); by default holysse makes one with a pool of ``pool_maxsize``
        connections per host. A session passed in is not closed by
        :meth:`close`.
    """

    #: :meth:`open` takes ``head_deadline`` (sessions holysse makes only).
    bounds_head = True

    def __init__(self, session: requests.Session | None = None, *, pool_maxsize: int = 32) -> None:
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
            adapter.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session

    def __repr__(self) -> str:
        return f"<RequestsTransport owns_session={self._owns_session}>"

    def open(self, request: HTTPRequest, timeout: Timeout, *, head_deadline: float | None = None) -> Response:
        """Send ``request``, following redirects (see :func:`redirect_target`).
        Cookies of the session's jar go only to the origin of ``request``
        (cookies ignore ports; origins do not): never along a redirect to
        another origin.

        :param head_deadline: the most seconds the response head may take in
            all (a server dripping it byte by byte never trips the read
            timeout); enforced on the sessions holysse makes.
        :raises ProtocolError: too many redirects, a redirect that would
            downgrade to plain http, or an oversized response head.
        :raises ReadTimeout: the head took longer than ``head_deadline``.
        """
        watch = _HeadWatch(head_deadline) if head_deadline is not None and self._owns_session else None
        _local.head_watch = watch
        try:
            return self._open(request, timeout)
        except exc_.HolySSEError as error:
            if watch is not None and watch.fired:
                raise exc_.ReadTimeout(
                    f"{request.url} sent its response head too slowly: the stream deadline passed while waiting "
                    f"for it ({head_deadline:.1f}s left when it was sent)."
                ) from error
            raise
        finally:
            _local.head_watch = None

    def _open(self, request: HTTPRequest, timeout: Timeout) -> Response:
        origin = url_origin(request.url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(request, timeout, cookies=url_origin(request.url) == origin)
            target = redirect_target(request, response.status_code, response.headers)
            if target is None:
                return response
            response.close()
            logger.info("Following a %d redirect from %s to %s", response.status_code, request.url, target.url)
            request = target
        raise exc_.ProtocolError(
            f"{request.url} is still redirecting after {MAX_REDIRECTS} redirects; set base_url to the final address."
        )

    def _send(self, request: HTTPRequest, timeout: Timeout, *, cookies: bool = True) -> _RequestsResponse:
        headers = {"User-Agent": f"holysse/{__version__} requests/{getattr(requests, '__version__', '')}"}
        headers.update(request.headers)
        body = None
        if request.json is not None:
            body = json.dumps(request.json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        # A loopback server is never reached through a proxy from the
        # environment (HTTP_PROXY without NO_PROXY would catch 127.0.0.1 too).
        proxies = _NO_PROXIES if self._owns_session and is_loopback(hostname(request.url)) else {}
        session = self._session
        try:
            # Session.request's steps, with a chance to leave the jar's cookies out.
            prepared = session.prepare_request(requests.Request(request.method, request.url, headers, data=body))
            if not cookies:
                prepared.headers.pop("Cookie", None)
            # requests lets $REQUESTS_CA_BUNDLE override a session's own verify; yours wins here
            verify = None if self._owns_session else session.verify
            settings = session.merge_environment_settings(prepared.url or request.url, proxies, True, verify, None)
            response = session.send(prepared, timeout=(timeout.connect, timeout.read), allow_redirects=False,
                                    **settings)
        except requests.RequestException as exc:
            raise _translate_open_error(exc, request.url) from _scrubbed(exc)
        return _RequestsResponse(response, request.url)

    def close(self) -> None:
        if self._owns_session:
            self._session.close()


_local = threading.local()


class _HeadWatch:
    """Shuts the socket down when a response head is not complete within
    ``seconds`` (a timer thread, only while a head is awaited)."""

    def __init__(self, seconds: float) -> None:
        self._until = time.monotonic() + seconds
        self._timer: threading.Timer | None = None
        self.fired = False

    def arm(self, sock: socket.socket) -> None:
        def fire() -> None:
            self.fired = True
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        self._timer = threading.Timer(max(0.0, self._until - time.monotonic()), fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            timer.join()


def _watched(base: type[urllib3.connection.HTTPConnection]) -> type[urllib3.connection.HTTPConnection]:
    """``base`` whose wait for the response head obeys the thread's :class:`_HeadWatch`."""

    class Watched(base):  # type: ignore[valid-type,misc]
        def getresponse(self) -> Any:
            watch: _HeadWatch | None = getattr(_local, "head_watch", None)
            sock = getattr(self, "sock", None)
            if watch is None or sock is None:
                return super().getresponse()
            watch.arm(sock)
            try:
                return super().getresponse()
            finally:
                watch.disarm()

    Watched.__name__ = Watched.__qualname__ = f"Watched{base.__name__}"
    return Watched


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPConnection)


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _watched(urllib3.connection.HTTPSConnection)  # type: ignore[assignment]


_WATCHED_POOLS: dict[str, type[urllib3.HTTPConnectionPool]] = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _scrubbed(exc: requests.RequestException) -> requests.RequestException:
    """Drop the request object (it holds the credentials) from a requests error."""
    exc.request = None
    exc.response = None
    return exc


def _translate_open_error(exc: requests.RequestException, url: str) -> exc_.HolySSEError:
    why = reason(exc)
    if bad_response_head(exc):
        return exc_.ProtocolError(
            f"{url} sent a response head holysse refuses ({why}): a line over 64 KiB or more than 100 "
            "headers. Check base_url and any proxy in between."
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return exc_.ConnectError(f"Timed out connecting to {url}; check the network or raise Timeout.connect.")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return exc_.ReadTimeout(f"{url} accepted the request but sent no response headers in time ({why}).")
    if isinstance(exc, requests.exceptions.SSLError):
        if isinstance(innermost(exc), ssl.SSLCertVerificationError):
            return exc_.ConnectError(
                f"The certificate of {url} is not trusted ({why}). If a proxy on your network re-signs TLS, "
                "set REQUESTS_CA_BUNDLE to its CA bundle, or pass Client(session=...) with session.verify set "
                "to that bundle. A retry cannot cure this.",
                retryable=False,
            )
        return exc_.ConnectError(f"TLS handshake with {url} failed ({why}); check certificates or proxy settings.")
    if isinstance(exc, requests.exceptions.ProxyError):
        return exc_.ConnectError(f"The proxy refused or failed the connection to {url} ({why}).")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(inner, urllib3.exceptions.ProtocolError) for inner in chain(exc)):
            return exc_.StreamInterrupted(
                f"{url} accepted the connection but it broke before the response headers arrived ({why})."
            )
        if _unreachable(exc):
            return exc_.ConnectError(f"Could not connect to {url} ({why}); is the server up and the URL right?",
                                     unreachable=True)
        return exc_.ConnectError(f"Could not connect to {url} ({why}); is the server up and the URL right?")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)):
        return exc_.UsageError(f"Invalid request to {url}: {why}")
    return exc_.TransportError(f"Request to {url} failed: {why}")


_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})


def _unreachable(exc: BaseException) -> bool:
    """Whether nothing answered: refused, a name that does not resolve, no route."""
    for inner in chain(exc):
        if isinstance(inner, (ConnectionRefusedError, socket.gaierror, urllib3.exceptions.NameResolutionError)):
            return True
        if isinstance(inner, OSError) and inner.errno in _NO_ROUTE:
            return True
    return False



class _RequestsResponse:
    """A streaming :class:`requests.Response`, read through ``raw.read1``."""

    def __init__(self, response: requests.Response, url: str) -> None:
        self._response = response
        self._url = url
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self._closed = False
        self._aborted = False  # abort() was called: a failing read ends quietly

    def iter_bytes(self) -> Iterator[bytes]:
        raw = self._response.raw
        while True:
            try:
                chunk = raw.read1(READ_SIZE, decode_content=True)
            except urllib3.exceptions.ReadTimeoutError as exc:
                raise exc_.ReadTimeout(f"{self._url} stalled: no byte within the read timeout.") from exc
            except urllib3.exceptions.DecodeError as exc:
                raise exc_.ProtocolError(f"Could not decode the compressed body from {self._url}: {exc}") from exc
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if self._aborted or self._closed:
                    return
                raise exc_.StreamInterrupted(f"The connection to {self._url} broke: {reason(exc)}") from exc
            if not chunk:
                return
            yield chunk

    def read_text(self, limit: int = 65536) -> str:
        raw = self._response.raw
        parts: list[bytes] = []
        size = 0
        try:
            while size < limit:
                chunk = raw.read1(min(READ_SIZE, limit - size), decode_content=True)
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            logger.debug("Error body from %s cut short: %s", self._url, exc)
        encoding = self._response.encoding or "utf-8"
        return b"".join(parts).decode(encoding, errors="replace")

    def close(self, *, complete: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        raw = self._response.raw
        if complete and _drain_quickly(raw):
            raw.release_conn()
            return
        self._response.close()

    def abort(self) -> None:
        self._aborted = True  # first: a read that fails from now on ends quietly
        raw = self._response.raw
        try:
            raw.shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
        except (AttributeError, ValueError, RuntimeError):
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except OSError:
            pass


def _drain_quickly(raw: urllib3.BaseHTTPResponse) -> bool:
    """Read what is left of a finished body (a chunked terminator, say) if it
    is already there, so the connection can be reused. False when more would
    have to be waited for: then the connection is closed instead."""
    if raw.closed:
        return True
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        return False
    try:
        previous = sock.gettimeout()
        sock.settimeout(0.01)
        try:
            for _ in range(4):
                if not raw.read1(READ_SIZE, decode_content=True):
                    return bool(raw.closed)
        finally:
            sock.settimeout(previous)
    except (urllib3.exceptions.HTTPError, OSError, ValueError):
        return False
    return False
