"""Timing the way to a server with the standard library: DNS, TCP connect,
proxy tunnel, TLS handshake and the first byte of an answer, each step with a
one-line diagnosis when it fails. Used by ``holysse check``.

The probe sends ``GET {base}/models`` **without** credentials: the key only
ever travels through :class:`holysse.Client`. Proxies come from the same
environment variables requests reads (``HTTPS_PROXY``, ``NO_PROXY``, ...).
"""

from __future__ import annotations

import base64
import errno
import os
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import __version__

__all__ = ["Step", "probe", "proxy_for"]

_HEAD_LIMIT = 65536


@dataclass(frozen=True)
class Step:
    """One step of a check: ``ok`` is ``None`` for a step that was skipped
    or only informs; ``advice`` says what to do when it failed."""

    name: str
    ok: bool | None
    detail: str
    seconds: float | None = None
    advice: str = ""


class _Failed(Exception):
    def __init__(self, step: Step) -> None:
        super().__init__(step.detail)
        self.step = step


def proxy_for(url: str) -> str | None:
    """The proxy URL the environment sets for ``url`` (``None``: direct)."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def probe(base_url: str, timeout: float, proxy: str | None = None) -> list[Step]:
    """Time each step towards ``base_url``; stops at the first failure,
    which is then the last step returned.

    :param timeout: seconds allowed for each step.
    :param proxy: a proxy URL (``http://[user:pass@]host:port``), or ``None``.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = parts.path.rstrip("/") + "/models" + (f"?{parts.query}" if parts.query else "")
    steps: list[Step] = []
    via = urlsplit(proxy) if proxy else None
    if via is not None and via.scheme != "http":
        return [Step("proxy", None, f"{via.scheme} proxy {via.hostname}:{via.port} (from the environment): "
                                    "the path through it is not timed")]
    try:
        if via is not None:
            steps.append(Step("proxy", None, f"{via.hostname}:{via.port or 80} (from the environment)"))
        target = (via.hostname or "", via.port or 80) if via is not None else (host, port)
        addresses = _step(steps, "dns", lambda: _resolve(*target, timeout=timeout))
        sock = _step(steps, "connect", lambda: _connect(addresses, target, timeout, via is not None))
        try:
            if via is not None and tls:
                _step(steps, "tunnel", lambda: _tunnel(sock, host, port, via, timeout))
            if tls:
                sock = _step(steps, "tls", lambda: _handshake(sock, host, timeout))
            else:
                steps.append(Step("tls", None, "not used (http://)"))
            target_path = f"http://{host}:{port}{path}" if via is not None and not tls else path
            _step(steps, "first byte", lambda: _first_byte(sock, host, target_path, timeout, via))
        finally:
            sock.close()
    except _Failed as failed:
        steps.append(failed.step)
    return steps


def _step(steps: list[Step], name: str, action: Any) -> Any:
    """Run ``action`` (returning ``(value, detail)``), time it, record it."""
    started = time.perf_counter()
    try:
        value, detail = action()
    except _Failed as failed:
        raise _Failed(Step(name, False, failed.step.detail, time.perf_counter() - started,
                           failed.step.advice)) from None
    steps.append(Step(name, True, detail, time.perf_counter() - started))
    return value


def _fail(detail: str, advice: str) -> _Failed:
    return _Failed(Step("", False, detail, advice=advice))


def _resolve(host: str, port: int, *, timeout: float) -> tuple[list[Any], str]:
    """getaddrinfo, bounded by ``timeout`` (it has no timeout of its own)."""
    result: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            result["value"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            result["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="holysse-check-dns", daemon=True).start()
    if not done.wait(timeout):
        raise _fail(f"no DNS answer for {host} within {timeout:g}s", "check the network and the DNS settings")
    error = result.get("error")
    if isinstance(error, socket.gaierror) and error.errno == socket.EAI_AGAIN:
        raise _fail(f"cannot resolve {host} ({error.strerror})", "are you offline? check the network and DNS")
    if error is not None:
        raise _fail(f"cannot resolve {host} ({getattr(error, 'strerror', None) or error})",
                    "check the host name in --base-url (a typo?) and your DNS")
    addresses: list[Any] = result["value"]
    return addresses, ", ".join(sorted({str(info[4][0]) for info in addresses})[:3])


def _connect(addresses: list[Any], target: tuple[str, int], timeout: float, proxy: bool) -> tuple[socket.socket, str]:
    where = f"{target[0]}:{target[1]}"
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock, f"{address[0]}:{address[1]}"
        except OSError as exc:
            sock.close()
            last = exc
    what = "the proxy " if proxy else ""
    fix = "check HTTPS_PROXY / HTTP_PROXY" if proxy else "is the server running, and is the port in --base-url right?"
    if isinstance(last, ConnectionRefusedError):
        raise _fail(f"{what}{where} refused the connection: nothing listens there", fix)
    if isinstance(last, socket.timeout):
        raise _fail(f"no answer from {what}{where} within {timeout:g}s",
                    "a firewall may drop the traffic, or this network needs a proxy (set HTTPS_PROXY)")
    if last is not None and last.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        raise _fail(f"{what}{where} is unreachable ({last.strerror})", "check the network connection and routes")
    raise _fail(f"cannot connect to {what}{where} ({last})", fix)


def _tunnel(sock: socket.socket, host: str, port: int, via: Any, timeout: float) -> tuple[None, str]:
    """``CONNECT host:port`` through an HTTP proxy."""
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if via.username:
        user = f"{unquote(via.username)}:{unquote(via.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(user).decode("ascii"))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    status, line = _read_status(sock, timeout, "the proxy")
    if status == 407:
        raise _fail(f"the proxy wants credentials ({line})",
                    "put them in the proxy URL: HTTPS_PROXY=http://user:password@host:port")
    if status != 200:
        raise _fail(f"the proxy refused to tunnel to {host}:{port} ({line})",
                    f"ask its administrator to allow {host}, or bypass it with NO_PROXY={host}")
    return None, f"CONNECT {host}:{port} accepted"


def _tls_context() -> ssl.SSLContext:
    """The trust requests uses: ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``,
    else certifi's bundle when installed, else the system's."""
    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not cafile:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            cafile = None
    return ssl.create_default_context(cafile=cafile)


def _handshake(sock: socket.socket, host: str, timeout: float) -> tuple[ssl.SSLSocket, str]:
    sock.settimeout(timeout)
    try:
        wrapped = _tls_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise _fail(f"the certificate of {host} is not trusted ({exc.verify_message})",
                    "if a company proxy inspects TLS, point REQUESTS_CA_BUNDLE at its CA bundle") from None
    except socket.timeout:
        raise _fail(f"TLS handshake with {host} timed out after {timeout:g}s",
                    "the port may not speak TLS, or a firewall interferes") from None
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _fail(f"TLS handshake with {host} failed ({reason})",
                    "if the server speaks plain HTTP, use http:// in --base-url") from None
    return wrapped, f"{wrapped.version()}"


def _first_byte(sock: socket.socket, host: str, target: str, timeout: float, via: Any) -> tuple[None, str]:
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", f"User-Agent: holysse/{__version__} check",
             "Accept: application/json", "Connection: close"]
    if via is not None and via.username and target.startswith("http://"):
        user = f"{unquote(via.username)}:{unquote(via.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(user).decode("ascii"))
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    _, line = _read_status(sock, timeout, "the server")
    return None, f"{line} to GET {urlsplit(target).path} (sent without the key)"


def _read_status(sock: socket.socket, timeout: float, who: str) -> tuple[int, str]:
    """Read up to the end of the first line of an HTTP answer."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\n" not in data and len(data) < _HEAD_LIMIT:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise _fail(f"{who} accepted the connection but sent nothing within {timeout:g}s",
                    "it may be overloaded or stuck; try again later or raise --timeout") from None
    except OSError as exc:
        raise _fail(f"{who} broke the connection ({exc.strerror or exc})",
                    "if it speaks https, use https:// in --base-url") from None
    if not data:
        raise _fail(f"{who} closed the connection without answering",
                    "is this the right port, and the right scheme (http:// or https://)?")
    line = data.split(b"\n", 1)[0].strip().decode("latin-1", "replace")
    fields = line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise _fail(f"{who} answered something that is not HTTP ({line[:40]!r})",
                    "check the scheme and port in --base-url (https:// for TLS ports)")
    return int(fields[1]), f"HTTP {' '.join(fields[1:])}"
