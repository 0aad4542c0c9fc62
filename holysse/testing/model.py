"""The deterministic fake model behind :class:`~holysse.testing.FakeServer`.

It owns the answer text (what a model would say to a prompt), how that text is
cut into tokens, tool-call arguments and their stream fragments. Nothing here
knows about HTTP or SSE.

Answers are built to stress a streaming client: paragraphs and single line
breaks, Japanese (3-byte UTF-8), emoji (4-byte, skin tones, ZWJ sequences,
variation selectors, flags), JSON-hostile characters (quotes, backslashes,
tabs), U+2028, and text that looks like SSE (``data: [DONE]``, ``: comment``).
They never contain ``"\\r"``. About 2.9 UTF-8 bytes per character on average.

Token boundaries are a fixed function of the position in the answer, so a
continuation that starts on a boundary (a prefill resume) is tokenized exactly
like the rest of the original answer.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import logging
import random
import threading

__all__ = ["FakeModel", "split_tokens", "split_fragments"]

logger = logging.getLogger(__name__)

_JAPANESE = (
    "ストリーム", "接続が", "切れても", "続きを", "受け取ります", "東京の", "サーバー", "から",
    "応答が", "届くまで", "待ちます", "途中で", "止まった", "トークンを", "数える", "ネットワークは",
    "気まぐれです", "文字化けなし", "再接続して", "最後まで", "読みます", "カーソルの", "位置", "漢字と",
    "ひらがなと", "カタカナ", "安全に", "確かめる", "夜明けの前に", "静かな", "川の流れ", "一つも",
    "失わず", "重ねずに", "届けます", "雨の日も", "回線が", "細くても", "答えは", "そのまま",
)
_ASCII = (
    "stream", "token", "resume", "the answer", "event", "socket", "cursor", "retry", "no gap",
    "byte", "chunk", "server", "client", "nothing lost", "nothing repeated", "Last-Event-ID",
    "HTTP/1.1", "keep-alive", "café", "naïve", "x = 42;", '"quoted"', "back\\slash", "tab\there",
)
_EMOJI = (
    "🚀", "✨", "👍🏽", "👩‍💻", "❤️", "🏳️‍🌈", "🇯🇵", "🎉", "😀", "👨‍👩‍👧‍👦", "🧵", "☕",
)
_SPECIAL = (
    "data: ", "data: [DONE]", "event: ping", "id: 7", ": not a comment", "\u2028", "</script>",
    "&amp;", "{\"json\": true}", "—", "…", "→", "「引用」", "(括弧)",
)
_ENDINGS = ("。", "。", "。", "！", "？", "…", ". ", "!")



def _lengths(name: str, low: int, high: int, count: int) -> tuple[int, ...]:
    rng = random.Random(name)
    return tuple(rng.randint(low, high) for _ in range(count))


_TOKEN_LENGTHS = _lengths("holysse-token-lengths", 1, 6, 4096)
_FRAGMENT_LENGTHS = _lengths("holysse-fragment-lengths", 1, 5, 1024)


class _Boundaries:
    """Absolute cut positions generated from a repeating pattern of lengths."""

    def __init__(self, lengths: tuple[int, ...]) -> None:
        self._lengths = lengths
        self._positions = [0]
        self._lock = threading.Lock()

    def between(self, start: int, end: int) -> list[int]:
        """Boundary positions ``p`` with ``start < p < end``."""
        if self._positions[-1] < end:
            self._extend(end)
        positions = self._positions
        lo = bisect.bisect_right(positions, start)
        hi = bisect.bisect_left(positions, end, lo)
        return positions[lo:hi]

    def _extend(self, end: int) -> None:
        with self._lock:
            positions = list(self._positions)
            count = len(self._lengths)
            while positions[-1] < end:
                positions.append(positions[-1] + self._lengths[(len(positions) - 1) % count])
            self._positions = positions


_FRAGMENTS = _Boundaries(_FRAGMENT_LENGTHS)
_TOKENS: dict[int, _Boundaries] = {1: _Boundaries(_TOKEN_LENGTHS)}
_TOKENS_LOCK = threading.Lock()


def _token_boundaries(scale: int) -> _Boundaries:
    if scale < 1:
        raise ValueError(f"token_scale must be >= 1, got {scale!r}.")
    with _TOKENS_LOCK:
        found = _TOKENS.get(scale)
        if found is None:
            found = _TOKENS[scale] = _Boundaries(tuple(n * scale for n in _TOKEN_LENGTHS))
        return found


def _split(text: str, offset: int, boundaries: _Boundaries) -> list[str]:
    cuts = [p - offset for p in boundaries.between(offset, offset + len(text))]
    if not text:
        return []
    starts = [0, *cuts]
    ends = [*cuts, len(text)]
    return [text[a:b] for a, b in zip(starts, ends)]


def split_tokens(text: str, offset: int = 0, scale: int = 1) -> list[str]:
    """Cut ``text`` into tokens of 1-6 characters (times ``scale``), never empty.

    :param text: the text to cut.
    :param offset: the position of ``text[0]`` in the whole answer; boundaries
        depend on absolute positions, so ``split_tokens(a + b)`` equals
        ``split_tokens(a) + split_tokens(b, len(a))`` when ``len(a)`` is a boundary.
    :param scale: multiplies every token length (fewer, longer events).
    """
    return _split(text, offset, _token_boundaries(scale))


def split_fragments(text: str) -> list[str]:
    """Cut tool-call arguments into stream fragments of 1-5 characters."""
    return _split(text, 0, _FRAGMENTS)


@functools.lru_cache(maxsize=512)
def _compose_cached(key: str, length: int) -> str:
    return _compose(key, length)


def _compose(key: str, length: int) -> str:
    """Exactly ``length`` characters of text drawn from a generator seeded by ``key``."""
    rng = random.Random(key)
    parts: list[str] = []
    size = 0
    sentences = 0
    while size < length:
        sentence = _sentence(rng)
        sentences += 1
        if sentences % rng.randint(3, 5) == 0:
            sentence += "\n\n"
        elif rng.random() < 0.15:
            sentence += "\n"
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:length]


def _sentence(rng: random.Random) -> str:
    out: list[str] = []
    for _ in range(rng.randint(3, 8)):
        roll = rng.random()
        if roll < 0.7:
            out.append(rng.choice(_JAPANESE))
        elif roll < 0.73:
            if out and not out[-1].endswith(" "):
                out.append(" ")
            out.append(rng.choice(_ASCII) + " ")
        elif roll < 0.97:
            out.append("".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 3))))
        else:
            out.append(rng.choice(_SPECIAL))
    if rng.random() < 0.5:
        out.append("、")
        out.append(rng.choice(_JAPANESE))
    out.append(rng.choice(_ENDINGS))
    return "".join(out).strip(" ")


class FakeModel:
    """A deterministic text generator standing in for an LLM.

    :param seed: seeds the vocabulary choice for every answer; two models with
        the same seed give the same answers.

    Thread-safe.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._counter = itertools.count()

    def __repr__(self) -> str:
        return f"FakeModel(seed={self.seed})"

    def answer(
        self,
        prompt: str,
        *,
        seed: int | None = None,
        temperature: float | None = None,
        length: int,
        nonce: int = 0,
    ) -> str:
        """The answer to ``prompt``: exactly ``length`` characters.

        Deterministic for the same ``(prompt, seed, length)`` when ``seed`` is
        given or ``temperature`` is ``None`` or ``0``. Otherwise every call
        differs (an internal counter is mixed in together with ``nonce``).

        :param prompt: the text of the last user message.
        :param seed: the request's ``seed``.
        :param temperature: the request's ``temperature``.
        :param length: the number of characters (code points) to return.
        :param nonce: extra entropy for the non-deterministic case.
        """
        if length <= 0:
            return ""
        key = f"{self.seed}\x1f{seed}\x1f{prompt}"
        if seed is None and temperature:
            return _compose(f"{key}\x1f{nonce}\x1f{next(self._counter)}", length)
        return _compose_cached(key, length)

    def continuation(self, prompt: str, partial: str, *, seed: int | None, length: int) -> str:
        """A deterministic continuation of ``partial`` that is not the model's
        own answer (what a model says after a prefill it would not have written).

        :param length: the number of characters to return.
        """
        return self.answer(f"{prompt}\x1e{partial}", seed=seed, temperature=None, length=length)

    def thinking(self, prompt: str, *, seed: int | None, temperature: float | None, length: int) -> str:
        """Reasoning text for ``prompt`` (Anthropic extended thinking)."""
        return self.answer(f"thinking\x1e{prompt}", seed=seed, temperature=temperature, length=length)

    def tokens(self, text: str) -> list[str]:
        """Split ``text`` into tokens of 1-6 characters; the same text always
        splits the same way. See :func:`split_tokens`."""
        return split_tokens(text)

    def tool_arguments(self, prompt: str, seed: int | None = None) -> str:
        """Deterministic JSON arguments for a tool call: an object with nested
        values and non-ASCII strings.

        :param prompt: the text of the last user message.
        :param seed: the request's ``seed``.
        """
        rng = random.Random(f"tool\x1f{self.seed}\x1f{seed}\x1f{prompt}")
        arguments = {
            "query": " ".join(rng.sample(_ASCII[:16], 3)),
            "location": {"city": rng.choice(("東京", "大阪", "Zürich", "São Paulo")),
                         "coordinates": [round(rng.uniform(-90, 90), 4), round(rng.uniform(-180, 180), 4)]},
            "limit": rng.randint(1, 50),
            "filters": {"tags": rng.sample(_JAPANESE, 2) + [rng.choice(_EMOJI)], "exact": rng.random() < 0.5,
                        "since": None},
            "note": "résumé ✓ \"quoted\" back\\slash",
        }
        return json.dumps(arguments, ensure_ascii=False, separators=(", ", ": "))

    def fragments(self, arguments: str) -> list[str]:
        """Split tool-call arguments into stream fragments of 1-5 characters."""
        return split_fragments(arguments)
