"""The provider registry: an AIModel's `provider` name to a provider instance.

Provider modules (and the SDKs they import) are loaded only when first asked for, so the
service starts, and the extractive provider works, without either SDK installed.
"""

from __future__ import annotations

import importlib

from assistant.providers.base import Provider, ProviderError

PROVIDERS = ("extractive", "anthropic", "openai")

_CLASSES = {
    "extractive": ("assistant.providers.extractive", "ExtractiveProvider"),
    "anthropic": ("assistant.providers.anthropic", "AnthropicProvider"),
    "openai": ("assistant.providers.openai", "OpenAIProvider"),
}


def get_provider(name: str, **kwargs) -> Provider:
    """A new provider instance; `kwargs` go to its constructor (tests pass `http_client`)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown provider {name!r}; expected one of {PROVIDERS}")
    module_path, class_name = _CLASSES[name]
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        # A missing SDK is a deployment problem the pipeline must survive (refund, generic
        # error), the same as an upstream failure.
        raise ProviderError(f"provider {name!r} cannot be loaded: {exc}") from exc
    return getattr(module, class_name)(**kwargs)


def preload() -> list[str]:
    """Import every provider module whose SDK is installed (gunicorn workers call this as
    they start, egret/wsgi.py): importing an SDK takes a second of CPU, which the first
    streamed answers of a fresh worker would otherwise wait for. The names loaded."""
    loaded = []
    for name, (module_path, _) in _CLASSES.items():
        try:
            importlib.import_module(module_path)
        except ImportError:
            continue
        loaded.append(name)
    return loaded
