"""Provider profiles: which resume strategies a provider supports.

``resume="auto"`` asks the profile which strategies are safe. A profile is
guessed from the base URL, the model and the dialect of each stream, by the
first matching :class:`ProfileRule` of :data:`PROFILE_RULES`:

================================  =================  =========================================
where                             profile            resume after a cut (``auto``)
================================  =================  =========================================
``api.anthropic.com``             ``anthropic``      SSE ids if any, else native prefill, else
                                                     replay
``api.deepseek.com/beta``         ``deepseek``       prefill with ``"prefix": true``, replay
``api.deepseek.com``              ``deepseek-std``   replay (prefix completion is beta-only)
``api.mistral.ai``                ``mistral``        prefill with ``"prefix": true``, replay
``api.openai.com``                ``openai``         chat: replay; Responses: cursor
                                                     (``background: true``), else replay
a gateway (``api.holysheep.ai``,  per model family   ``claude-*`` on the Messages API: native
``openrouter.ai``)                                   prefill; anything else: cursor or replay
any other server                  ``generic``        cursor when SSE ids arrive, else replay
``dialect="anthropic"`` anywhere  ``anthropic``      the Messages API defines prefill
================================  =================  =========================================

vLLM and llama.cpp servers run anywhere, so they are never guessed: pass
``Client(provider="vllm")`` (or ``"llama.cpp"``) to resume them by
``continue_final_message``. Gateways are assumed *not* to forward
provider-specific prefill fields (a gateway that silently dropped
``"prefix": true`` would make the model answer afresh after the partial
answer); replay checks what it receives and is always safe.

To override, pass ``Client(provider=...)``: a :class:`ProviderProfile`, a
name from :data:`PROFILES`, or a sequence of :class:`ProfileRule` that is
tried before the built-in rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import urlsplit

__all__ = ["ProviderProfile", "ProfileRule", "PROFILES", "PROFILE_RULES", "guess_profile", "model_family"]


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
    "deepseek-std": ProviderProfile("deepseek-std", ("cursor", "replay")),
    "mistral": ProviderProfile("mistral", ("cursor", "prefill", "replay"), "prefix"),
    "vllm": ProviderProfile("vllm", ("cursor", "prefill", "replay"), "continue"),
    "llama.cpp": ProviderProfile("llama.cpp", ("cursor", "prefill", "replay"), "continue"),
}


@dataclass(frozen=True)
class ProfileRule:
    """When a profile applies. Every given condition must hold.

    :param profile: the profile: a name from :data:`PROFILES` or a
        :class:`ProviderProfile`.
    :param hosts: base-URL host names (any when empty).
    :param path: a piece the base-URL path must contain (``"/beta"``).
    :param models: model-family prefixes, compared with :func:`model_family`
        (any model when empty).
    :param dialects: dialect names (any when empty).
    """

    profile: str | ProviderProfile
    hosts: tuple[str, ...] = ()
    path: str | None = None
    models: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()

    def matches(self, host: str, path: str, family: str, dialect: str | None) -> bool:
        """Whether the rule applies to this host, path, model family and dialect."""
        return (
            (not self.hosts or host in self.hosts)
            and (self.path is None or self.path in path)
            and (not self.models or any(family.startswith(m) for m in self.models))
            and (not self.dialects or dialect in self.dialects)
        )

    def resolve(self) -> ProviderProfile:
        """The rule's profile object."""
        return self.profile if isinstance(self.profile, ProviderProfile) else PROFILES[self.profile]


_GATEWAYS = ("api.holysheep.ai", "openrouter.ai")

#: The built-in rules, first match wins (see the module docstring).
PROFILE_RULES: tuple[ProfileRule, ...] = (
    ProfileRule("anthropic", hosts=("api.anthropic.com",)),
    ProfileRule("deepseek", hosts=("api.deepseek.com",), path="/beta"),
    ProfileRule("deepseek-std", hosts=("api.deepseek.com",)),
    ProfileRule("mistral", hosts=("api.mistral.ai",)),
    ProfileRule("openai", hosts=("api.openai.com",)),
    ProfileRule("anthropic", hosts=_GATEWAYS, models=("claude",), dialects=("anthropic",)),
    ProfileRule("holysheep", hosts=_GATEWAYS),
    ProfileRule("anthropic", dialects=("anthropic",)),
)


def model_family(model: str | None) -> str:
    """A model name as the rules compare it: lower case, without a gateway's
    ``vendor/`` prefix (``"anthropic/Claude-Sonnet-4.5"`` -> ``"claude-sonnet-4.5"``)."""
    return (model or "").strip().lower().rpartition("/")[2]


def guess_profile(
    base_url: str,
    model: str | None = None,
    dialect: str | None = None,
    rules: Sequence[ProfileRule] = (),
) -> ProviderProfile:
    """The profile for a stream: the first of ``rules`` then
    :data:`PROFILE_RULES` that matches, else ``generic``.

    :param base_url: the client's base URL.
    :param model: the request's model (gateways differ per model family).
    :param dialect: the dialect name.
    :param rules: the user's rules, tried first.
    """
    parts = urlsplit(base_url)
    host, path = (parts.hostname or "").lower(), parts.path
    family = model_family(model)
    for rule in (*rules, *PROFILE_RULES):
        if rule.matches(host, path, family, dialect):
            return rule.resolve()
    return PROFILES["generic"]
