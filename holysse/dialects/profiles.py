"""Provider profiles: which resume strategies a provider supports.

``resume="auto"`` asks the profile which strategies are safe. The table is
small and documented; pass ``Client(provider=ProviderProfile(...))`` or a
name from :data:`PROFILES` to override the guess made from the base URL and
model. Unknown providers get the safe default: cursor when the server sends
SSE ids, else replay with a divergence check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

__all__ = ["ProviderProfile", "PROFILES", "guess_profile"]


@dataclass(frozen=True)
class ProviderProfile:
    """What one provider supports.

    :param name: a short name (``"openai"``, ``"vllm"``, ...).
    :param strategies: resume strategies in the order ``auto`` tries them;
        a strategy not listed is never chosen by ``auto``.
    :param prefill_flavour: how a partial answer is sent back for ``prefill``:
        ``"native"`` (Anthropic: a final assistant message is a prefill),
        ``"prefix"`` (DeepSeek, Mistral: ``"prefix": true`` on that message),
        ``"continue"`` (vLLM, llama.cpp: ``continue_final_message: true``,
        ``add_generation_prompt: false``), or ``None`` (not supported).
    """

    name: str
    strategies: tuple[str, ...] = ("cursor", "replay")
    prefill_flavour: str | None = None


#: Known providers. Entries are plain values: copy one with
#: ``dataclasses.replace`` to adjust it.
PROFILES: Mapping[str, ProviderProfile] = {
    "generic": ProviderProfile("generic"),
    "openai": ProviderProfile("openai", ("cursor", "replay")),
    "holysheep": ProviderProfile("holysheep", ("cursor", "replay")),
    "anthropic": ProviderProfile("anthropic", ("cursor", "prefill", "replay"), "native"),
    "deepseek": ProviderProfile("deepseek", ("cursor", "prefill", "replay"), "prefix"),
    "mistral": ProviderProfile("mistral", ("cursor", "prefill", "replay"), "prefix"),
    "vllm": ProviderProfile("vllm", ("cursor", "prefill", "replay"), "continue"),
    "llama.cpp": ProviderProfile("llama.cpp", ("cursor", "prefill", "replay"), "continue"),
}

_HOSTS = {
    "api.openai.com": "openai",
    "api.holysheep.ai": "holysheep",
    "api.anthropic.com": "anthropic",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral",
}


def guess_profile(base_url: str, model: str | None = None, dialect: str | None = None) -> ProviderProfile:
    """The profile for a base URL; ``dialect`` settles Anthropic. ``model`` is
    accepted for gateways whose support differs per model family."""
    host = (urlsplit(base_url).hostname or "").lower()
    name = _HOSTS.get(host)
    if dialect == "anthropic":
        return PROFILES["anthropic"]
    return PROFILES[name or "generic"]
