"""Workers load the provider SDKs and the built-in encoder as they start (egret/wsgi.py)."""

from __future__ import annotations

import subprocess
import sys

from assistant import providers
from knowledge import embeddings, minilm


def test_preload_imports_every_installed_provider():
    assert providers.preload() == ["extractive", "anthropic", "openai"]
    assert "openai" in sys.modules and "anthropic" in sys.modules


def test_preload_loads_the_built_in_encoder_only_when_it_is_the_backend(settings):
    settings.EGRET_EMBEDDINGS = "off"
    assert embeddings.preload() is False
    settings.EGRET_EMBEDDINGS = "minilm"
    assert embeddings.preload() is True
    assert minilm._encoder is not None


def test_the_wsgi_application_starts_with_the_sdks_the_encoder_and_the_urlconf_loaded(
        tmp_path):
    """A fresh interpreter, as a gunicorn worker: importing the application loads them (the
    URLconf with the view modules it imports: a fresh worker's first request took 60-100 ms of
    CPU importing them)."""
    code = ("import sys, egret.wsgi; from knowledge import minilm; "
            "print('openai.resources.chat' in sys.modules, "
            "'anthropic.resources.messages' in sys.modules, minilm._encoder is not None, "
            "'egret.urls' in sys.modules, 'assistant.api' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True,
                         env={**_env(), "EGRET_VAR_DIR": str(tmp_path)})
    assert out.stdout.split()[-5:] == ["True"] * 5


def _env() -> dict:
    import os

    return {**os.environ, "DJANGO_SETTINGS_MODULE": "egret.settings", "LOG_LEVEL": "WARNING"}
