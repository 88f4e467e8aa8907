import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "egret.settings")
application = get_wsgi_application()

# Each worker loads the provider SDKs, the built-in encoder and the URLconf (with every view
# module it imports) before it takes requests, not while its first hundred streamed answers
# wait on one import (docs/benchmarks.md, "Streamed answers at scale").
from django.urls import get_resolver  # noqa: E402

from assistant import providers  # noqa: E402
from knowledge import embeddings  # noqa: E402

providers.preload()
embeddings.preload()
get_resolver().url_patterns  # noqa: B018  (Django imports the URLconf on first use)
