"""The objects the drop-in hands out: openai-python's own types when
``openai`` is installed (validated by its pydantic models), light objects
with the same attributes otherwise.

:func:`make` takes the name of an openai type (``"chat.ChatCompletionChunk"``,
``"responses.ResponseTextDeltaEvent"``) and the JSON-shaped dict the API
would have sent.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any, Callable

from ._errors import real_openai

__all__ = ["LightObject", "make", "maker"]

logger = logging.getLogger(__name__)


class LightObject:
    """Attribute access to a JSON object, like openai's models without
    pydantic: ``chunk.choices[0].delta.content``; :meth:`model_dump` and
    :meth:`to_dict` give the dict back."""

    def __init__(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            self.__dict__[key] = _light(value)

    def model_dump(self, **_: Any) -> dict[str, Any]:
        """The object as plain JSON-shaped data."""
        return {key: _plain(value) for key, value in self.__dict__.items()}

    to_dict = model_dump

    def model_dump_json(self, **_: Any) -> str:
        """The object as JSON text."""
        return json.dumps(self.model_dump(), ensure_ascii=False)

    to_json = model_dump_json

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


def _light(value: Any) -> Any:
    if type(value) is dict:
        return LightObject(value)
    if type(value) is list:
        return [_light(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, LightObject):
        return value.model_dump()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


_LIGHT_TYPES: dict[str, type[LightObject]] = {}
_MAKERS: dict[str, Callable[[dict[str, Any]], Any]] = {}


def maker(name: str) -> Callable[[dict[str, Any]], Any]:
    """A function building the openai type ``name`` (``"chat.ChatCompletion"``:
    a name in ``openai.types.chat``) from its dict, or a light object of that
    class name without openai."""
    built = _MAKERS.get(name)
    if built is None:
        module, _, cls_name = name.rpartition(".")
        if real_openai is None:
            light = _LIGHT_TYPES.setdefault(cls_name, type(cls_name, (LightObject,), {"__module__": __name__}))
            built = light
        else:
            built = _validator(getattr(importlib.import_module(f"{real_openai.__name__}.types.{module}"), cls_name))
        _MAKERS[name] = built
    return built


def make(name: str, data: dict[str, Any]) -> Any:
    """The openai type ``name`` built from ``data`` (see :func:`maker`)."""
    return maker(name)(data)


def _validator(cls: Any) -> Callable[[dict[str, Any]], Any]:
    """``cls.model_validate``; when an openai version wants a field holysse
    does not fill, openai's own lenient ``construct`` (what it uses for API
    data) instead of an error in the middle of an answer."""
    validate = cls.model_validate

    def build(data: dict[str, Any]) -> Any:
        try:
            return validate(data)
        except ValueError as exc:  # pydantic's ValidationError
            logger.debug("%s does not validate (%s); constructing it as openai does", cls.__name__, exc)
            return cls.construct(**data)
    return build
