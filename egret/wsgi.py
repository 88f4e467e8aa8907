import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "egret.settings")
application = get_wsgi_application()

# Each worker loads the provider SDKs and the built-in encoder before it takes requests, not
# while its first hundred streamed answers wait on one import (docs/benchmarks.md,
# "Streamed answers at scale").
from assistant import providers  # noqa: E402
from knowledge import embeddings  # noqa: E402

providers.preload()
embeddings.preload()
