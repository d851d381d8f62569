"""One adapter per wire protocol; `adapter_for(kind)` picks it."""

from __future__ import annotations

from .base import Adapter, LLMError
from .bedrock import BedrockAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter

_ADAPTERS: dict[str, Adapter] = {
    "ollama": OllamaAdapter(),
    "openai": OpenAIAdapter(),
    "bedrock": BedrockAdapter(),
}


def adapter_for(kind: str) -> Adapter:
    try:
        return _ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"unknown endpoint kind {kind!r}") from None


__all__ = ["Adapter", "LLMError", "adapter_for"]
