"""openai-python's exceptions for the drop-in: the real ones when ``openai``
is installed, light classes with the same names and attributes otherwise,
and :func:`openai_error`, which turns a holysse error into the one openai
would have raised (so ``except openai.RateLimitError`` keeps working).

Every translated error keeps the partial answer in ``exc.partial`` and the
holysse error as its ``__cause__``.
"""

from __future__ import annotations

import importlib
import json
from types import ModuleType
from typing import Any, Mapping

from .. import exceptions as hx

__all__ = [
    "ERRORS", "openai_error", "real_openai", "OpenAIError", "APIError", "APIStatusError", "APIConnectionError",
    "APITimeoutError", "BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
    "ConflictError", "UnprocessableEntityError", "RateLimitError", "InternalServerError",
]


def _load_openai() -> ModuleType | None:
    try:
        return importlib.import_module("openai")  # the real openai-python, never holysse.openai
    except ImportError:
        return None


#: The real ``openai`` module, or ``None`` when it is not installed.
real_openai = _load_openai()


class _LightRequest:
    """What ``exc.request`` holds without openai (httpx's ``Request`` with it)."""

    def __init__(self, method: str, url: str) -> None:
        self.method = method
        self.url = url

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {self.url!r})>"


class _LightResponse:
    """What ``exc.response`` holds without openai (httpx's ``Response`` with it)."""

    def __init__(self, status_code: int, headers: Mapping[str, str], text: str, request: _LightRequest) -> None:
        self.status_code = status_code
        self.headers = {name.lower(): value for name, value in headers.items()}
        self.text = text
        self.request = request

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


class _LightOpenAIError(Exception):
    pass


class _LightAPIError(_LightOpenAIError):
    def __init__(self, message: str, request: Any, *, body: object | None) -> None:
        super().__init__(message)
        self.request = request
        self.message = message
        self.body = body
        fields = body if isinstance(body, dict) else {}
        self.code = None if fields.get("code") is None else str(fields["code"])
        self.param = fields.get("param")
        self.type = fields.get("type")


class _LightAPIStatusError(_LightAPIError):
    def __init__(self, message: str, *, response: Any, body: object | None) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code: int = response.status_code
        self.request_id = response.headers.get("x-request-id")


class _LightAPIConnectionError(_LightAPIError):
    def __init__(self, *, message: str = "Connection error.", request: Any) -> None:
        super().__init__(message, request, body=None)


class _LightAPITimeoutError(_LightAPIConnectionError):
    def __init__(self, request: Any) -> None:
        super().__init__(message="Request timed out.", request=request)


def _light_status(name: str) -> type[_LightAPIStatusError]:
    return type(name, (_LightAPIStatusError,), {"__module__": __name__})


def _light_classes() -> dict[str, type[Exception]]:
    classes: dict[str, type[Exception]] = {
        "OpenAIError": _LightOpenAIError, "APIError": _LightAPIError, "APIStatusError": _LightAPIStatusError,
        "APIConnectionError": _LightAPIConnectionError, "APITimeoutError": _LightAPITimeoutError,
    }
    for cls in classes.values():
        cls.__name__ = cls.__qualname__ = cls.__name__.replace("_Light", "")
    for name in ("BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
                 "ConflictError", "UnprocessableEntityError", "RateLimitError", "InternalServerError"):
        classes[name] = _light_status(name)
    return classes


#: openai's exception classes by name (the real ones when openai is installed).
ERRORS: dict[str, type[Exception]] = (
    _light_classes() if real_openai is None
    else {name: getattr(real_openai, name) for name in _light_classes()}
)

OpenAIError = ERRORS["OpenAIError"]
APIError = ERRORS["APIError"]
APIStatusError = ERRORS["APIStatusError"]
APIConnectionError = ERRORS["APIConnectionError"]
APITimeoutError = ERRORS["APITimeoutError"]
BadRequestError = ERRORS["BadRequestError"]
AuthenticationError = ERRORS["AuthenticationError"]
PermissionDeniedError = ERRORS["PermissionDeniedError"]
NotFoundError = ERRORS["NotFoundError"]
ConflictError = ERRORS["ConflictError"]
UnprocessableEntityError = ERRORS["UnprocessableEntityError"]
RateLimitError = ERRORS["RateLimitError"]
InternalServerError = ERRORS["InternalServerError"]

_BY_STATUS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
              409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError"}


def _http_module() -> ModuleType:
    """The HTTP library openai builds its requests with (httpx, or httpx2 in
    later versions): its exceptions take that library's Request/Response."""
    assert real_openai is not None
    exceptions = importlib.import_module(real_openai.__name__ + "._exceptions")
    for name in ("httpx2", "httpx"):
        module = getattr(exceptions, name, None)
        if isinstance(module, ModuleType):
            return module
    return importlib.import_module("httpx")


def _request(method: str, url: str) -> Any:
    return _LightRequest(method, url) if real_openai is None else _http_module().Request(method, url)


def _response(status: int, headers: Mapping[str, str], text: str, request: Any) -> Any:
    if real_openai is None:
        return _LightResponse(status, headers, text, request)
    return _http_module().Response(status, headers=dict(headers), content=text.encode("utf-8"), request=request)


def _status_error(exc: hx.HTTPStatusError, request: Any) -> Exception:
    text = exc.body_excerpt or ""
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text or None
    if isinstance(body, dict):
        body = body.get("error", body)
    status = exc.status_code
    name = _BY_STATUS.get(status) or ("InternalServerError" if status >= 500 else "APIStatusError")
    headers = dict(exc.headers or {})
    if exc.request_id and not any(key.lower() == "x-request-id" for key in headers):
        headers["x-request-id"] = exc.request_id
    response = _response(status, headers, text, request)
    return ERRORS[name](f"Error code: {status} - {body}", response=response, body=body)  # type: ignore[call-arg]


def openai_error(exc: BaseException, method: str, url: str) -> BaseException:
    """The openai exception for holysse's ``exc`` (``exc`` itself for misuse
    and for a stream the consumer closed). Raise it ``from exc``."""
    if isinstance(exc, hx.RetriesExhausted) and isinstance(exc.__cause__, hx.HolySSEError):
        last = openai_error(exc.__cause__, method, url)  # openai raises the last error once retries run out
        last.partial = exc.partial  # type: ignore[attr-defined]
        return last
    if not isinstance(exc, hx.HolySSEError) or isinstance(exc, (hx.UsageError, hx.StreamClosed)):
        return exc
    request = _request(method, url)
    error: Exception
    if isinstance(exc, hx.HTTPStatusError):
        error = _status_error(exc, request)
    elif isinstance(exc, hx.ReadTimeout):
        error = APITimeoutError(request)
    elif isinstance(exc, hx.TransportError):
        error = APIConnectionError(message=str(exc), request=request)  # type: ignore[call-arg]
    elif isinstance(exc, hx.ProviderError):
        body = {"message": str(exc), "type": getattr(exc, "error_type", None), "code": getattr(exc, "code", None)}
        error = APIError(str(exc), request, body=body)  # type: ignore[call-arg]
    else:  # ProtocolError, StreamDiverged: the answer cannot be completed as it started
        error = APIError(str(exc), request, body=None)  # type: ignore[call-arg]
    error.partial = exc.partial  # type: ignore[attr-defined]
    return error
