"""What the server said about a successful answer: :class:`ResponseInfo`.

:attr:`Stream.response <holysse.stream.Stream.response>` is the
:class:`ResponseInfo` of the connection that delivered the end of the answer
(after a resume, the last one): its status, its headers and the request id
the provider sent, for support tickets and logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

from ._redact import redact

__all__ = ["ResponseInfo", "REQUEST_ID_HEADERS", "request_id"]

#: Headers that carry the provider's request id, in the order they are tried.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "openai-request-id", "anthropic-request-id", "cf-ray")


def request_id(headers: Mapping[str, str]) -> str | None:
    """The provider's request id in ``headers`` (any casing), or ``None``."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return next((lowered[name] for name in REQUEST_ID_HEADERS if name in lowered), None)


@dataclass(frozen=True)
class ResponseInfo:
    """The HTTP response of one connection of a stream.

    :param status_code: its status (200, or 2xx).
    :param headers: its headers, looked up in any casing.
    :param request_id: the provider's request id (``x-request-id``,
        ``request-id``, ...), as sent, or ``None``.
    :param url: the URL it answered (after redirects: the request's).
    """

    status_code: int
    headers: Mapping[str, str] = field(repr=False)
    request_id: str | None
    url: str

    @classmethod
    def of(cls, status_code: int, headers: Mapping[str, str], url: str) -> ResponseInfo:
        """The info of a response with these status and headers (a header
        value echoing a credential is redacted, see :mod:`holysse._redact`)."""
        if any(redact(value) != value for value in headers.values()):
            headers = _Headers({name: redact(value) for name, value in headers.items()})
        return cls(status_code, headers, request_id(headers), url)


class _Headers(Mapping[str, str]):
    """Headers looked up in any casing."""

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items = dict(items)
        self._lowered = {name.lower(): name for name in items}

    def __getitem__(self, name: str) -> str:
        return self._items[self._lowered[name.lower()]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
