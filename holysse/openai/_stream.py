"""What the drop-in's streams share with openai's ``Stream``: iterate once,
a context manager, :meth:`OpenAIStream.close`, and errors translated to
openai's classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator, Iterator, NoReturn

from ._errors import openai_error

if TYPE_CHECKING:
    from ..stream import Stream

__all__ = ["OpenAIStream", "reraise"]


def reraise(exc: Exception, url: str) -> NoReturn:
    """Raise openai's error for ``exc`` (``exc`` itself when it has none)."""
    error = openai_error(exc, "POST", url)
    if error is exc:
        raise exc
    raise error from exc


class OpenAIStream:
    """A stream of openai objects built by :meth:`_objects` from the events
    of ``holysse_stream``, the :class:`~holysse.Stream` underneath (its
    metrics, the text so far)."""

    def __init__(self, stream: Stream, url: str) -> None:
        #: The holysse stream carrying the answer.
        self.holysse_stream = stream
        self._url = url
        self._iterator = self._translated()

    def __repr__(self) -> str:
        return f"<holysse.openai.{type(self).__name__} {self.holysse_stream!r}>"

    @property
    def response(self) -> Any:
        """Status, headers and request id of the connection that finished the
        answer (:class:`holysse.metadata.ResponseInfo`)."""
        return self.holysse_stream.response

    def __iter__(self) -> Iterator[Any]:
        return self._iterator

    def __next__(self) -> Any:
        return next(self._iterator)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._iterator.close()
        self.holysse_stream.close()

    def _translated(self) -> Generator[Any, None, None]:
        try:
            yield from self._objects()
        except Exception as exc:
            reraise(exc, self._url)

    def _objects(self) -> Iterator[Any]:
        raise NotImplementedError
