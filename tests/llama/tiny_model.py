"""Tiny Llama-architecture GGUF files for a real llama.cpp server in tests (no download).

`write_model(path)` writes a random-weight model (~0.5 MB) whose chat reply is planted as a
bigram chain: every prompt ends with a newline after the assistant header, and from there the
output projection makes each reply token follow the previous one, so the answer to anything is
exactly `REPLY`, then end of turn. Banning end of turn (logit_bias) makes it stream as long as
asked, which the benchmark uses.

`write_projector(path)` writes a LLaVA-style ("mlp") vision projector so the server accepts
image parts (`--mmproj`); the planted reply ignores the image.

Run directly: `python tests/llama/tiny_model.py OUT_DIR` writes both files.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import gguf
import numpy as np

REPLY = "Hello from a tiny llama!"
REPLY_PIECES = ("Hello", "\u2581from", "\u2581a", "\u2581tiny", "\u2581llama", "!")
EOT = "<|eot_id|>"
# Long enough for long benchmark replies and for a cancelled stream to be visibly cut short.
CONTEXT = 8192

# Model shape: small enough to load in milliseconds, big enough for llama.cpp's kernels.
DIM, LAYERS, HEADS, KV_HEADS, FFN = 64, 2, 4, 2, 128

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{% if m['content'] is string %}{{ m['content'] | trim }}"
    "{% else %}{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def vocabulary() -> list[tuple[str, gguf.TokenType]]:
    kinds = gguf.TokenType
    tokens: list[tuple[str, gguf.TokenType]] = [("<unk>", kinds.UNKNOWN)]
    for control in (
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        EOT,
    ):
        tokens.append((control, kinds.CONTROL))
    # Byte fallback tokens let any text (emoji, Arabic, ...) tokenize.
    tokens += [(f"<0x{byte:02X}>", kinds.BYTE) for byte in range(256)]
    singles = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:;()"
    tokens += [(char, kinds.NORMAL) for char in singles]
    tokens += [("\u2581" + char, kinds.NORMAL) for char in "abcdefghijklmnopqrstuvwxyz"]
    tokens.append(("\u2581", kinds.NORMAL))
    known = {text for text, _ in tokens}
    tokens += [(piece, kinds.NORMAL) for piece in REPLY_PIECES if piece not in known]
    return tokens


def eot_token_id() -> int:
    return [text for text, _ in vocabulary()].index(EOT)


def write_model(path: Path) -> Path:
    rng = np.random.default_rng(20261127)
    tokens = vocabulary()
    index = {text: i for i, (text, _) in enumerate(tokens)}
    vocab = len(tokens)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("parley-tiny-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([text for text, _ in tokens])
    writer.add_token_types([int(kind) for _, kind in tokens])
    # Longer pieces score lower so the tokenizer prefers them only when planted.
    writer.add_token_scores(
        [-float(len(text)) if kind == gguf.TokenType.NORMAL else 0.0 for text, kind in tokens]
    )
    writer.add_bos_token_id(index["<|begin_of_text|>"])
    writer.add_eos_token_id(index[EOT])
    writer.add_unk_token_id(index["<unk>"])
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    def noise(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # Token embeddings are random +-1 codes (nearly orthogonal in 64 dimensions). Setting the
    # output row of token B to the code of token A makes logit(B | last token A) ~ DIM, far
    # above every other logit: a deterministic chain. The random layers barely disturb it.
    embeddings = rng.choice([-1.0, 1.0], size=(vocab, DIM)).astype(np.float32)
    output = noise(vocab, DIM, scale=0.05)
    chain = ["<0x0A>", *REPLY_PIECES, EOT]
    for previous, following in itertools.pairwise(chain):
        output[index[following]] = embeddings[index[previous]]

    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", np.ones(DIM, np.float32))
    writer.add_tensor("output.weight", output)
    kv_dim = KV_HEADS * DIM // HEADS
    for layer in range(LAYERS):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(DIM, np.float32))
        writer.add_tensor(prefix + "attn_q.weight", noise(DIM, DIM))
        writer.add_tensor(prefix + "attn_k.weight", noise(kv_dim, DIM))
        writer.add_tensor(prefix + "attn_v.weight", noise(kv_dim, DIM))
        writer.add_tensor(prefix + "attn_output.weight", noise(DIM, DIM))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(DIM, np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", noise(FFN, DIM))
        writer.add_tensor(prefix + "ffn_up.weight", noise(FFN, DIM))
        writer.add_tensor(prefix + "ffn_down.weight", noise(DIM, FFN))
    _finish(writer)
    return path


# Vision projector shape: a 28 px image in 14 px patches gives 4 image tokens.
IMAGE_SIZE, PATCH, VISION_DIM, VISION_FFN, VISION_LAYERS, VISION_HEADS = 28, 14, 32, 64, 2, 4


def write_projector(path: Path) -> Path:
    rng = np.random.default_rng(7)

    def noise(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "clip")
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_text_encoder", False)
    writer.add_bool("clip.use_gelu", True)
    sizes = {
        "image_size": IMAGE_SIZE,
        "patch_size": PATCH,
        "embedding_length": VISION_DIM,
        "feed_forward_length": VISION_FFN,
        "block_count": VISION_LAYERS,
        "projection_dim": DIM,
        "attention.head_count": VISION_HEADS,
    }
    for key, value in sizes.items():
        writer.add_uint32(f"clip.vision.{key}", value)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    writer.add_tensor("v.patch_embd.weight", noise(VISION_DIM, 3, PATCH, PATCH).astype(np.float16))
    writer.add_tensor("v.position_embd.weight", noise((IMAGE_SIZE // PATCH) ** 2, VISION_DIM))
    for layer in range(VISION_LAYERS):
        prefix = f"v.blk.{layer}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(prefix + name + ".weight", noise(VISION_DIM, VISION_DIM))
            writer.add_tensor(prefix + name + ".bias", noise(VISION_DIM))
        for norm in ("ln1", "ln2"):
            writer.add_tensor(prefix + norm + ".weight", np.ones(VISION_DIM, np.float32))
            writer.add_tensor(prefix + norm + ".bias", np.zeros(VISION_DIM, np.float32))
        writer.add_tensor(prefix + "ffn_up.weight", noise(VISION_FFN, VISION_DIM))
        writer.add_tensor(prefix + "ffn_up.bias", noise(VISION_FFN))
        writer.add_tensor(prefix + "ffn_down.weight", noise(VISION_DIM, VISION_FFN))
        writer.add_tensor(prefix + "ffn_down.bias", noise(VISION_DIM))
    writer.add_tensor("mm.0.weight", noise(DIM, VISION_DIM))
    writer.add_tensor("mm.0.bias", noise(DIM))
    writer.add_tensor("mm.2.weight", noise(DIM, DIM))
    writer.add_tensor("mm.2.bias", noise(DIM))
    _finish(writer)
    return path


def _finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def ensure_files(directory: Path) -> tuple[Path, Path]:
    """Write the model and projector into `directory` unless present (keyed by a version)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = directory / "tiny-llama-v2.gguf"
    projector = directory / "tiny-mmproj-v1.gguf"
    for target, write in ((model, write_model), (projector, write_projector)):
        if not target.exists():
            partial = target.with_suffix(".partial")
            write(partial)
            partial.replace(target)
    return model, projector


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for written in ensure_files(out):
        print(written)
