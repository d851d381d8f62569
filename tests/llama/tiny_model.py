"""Tiny Llama-architecture GGUF files for a real llama.cpp server in tests (no download).

`write_model(path)` writes a random-weight model (~0.5 MB) whose chat reply is planted as a
bigram chain: every prompt ends with a newline after the assistant header, and from there the
output projection makes each reply token follow the previous one, so the answer to anything is
exactly `REPLY`, then end of turn. Banning end of turn (logit_bias) makes it stream as long as
asked, which the benchmark uses.

`write_tool_model(path)` writes a model for the tool loop: its chat template is Qwen 2.5's
(Hermes-style `<tool_call>` JSON), its first reply is always a planted call to `find_order`, and
once a tool result is in the prompt its reply is the planted `TOOL_ANSWER` (see below).

`write_projector(path)` writes a LLaVA-style ("mlp") vision projector so the server accepts
image parts (`--mmproj`); the planted reply ignores the image.

Run directly: `python tests/llama/tiny_model.py OUT_DIR` writes all three files.
"""

from __future__ import annotations

import itertools
import json
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


def _header(
    path: Path,
    name: str,
    tokens: list[tuple[str, gguf.TokenType]],
    *,
    rope_base: float,
    bos: int,
    eos: int,
    unk: int,
    template: str,
) -> gguf.GGUFWriter:
    """A writer with the shape, tokenizer and chat template both tiny models share."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_rope_freq_base(rope_base)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([text for text, _ in tokens])
    writer.add_token_types([int(kind) for _, kind in tokens])
    # Longer pieces score lower so the tokenizer prefers them only when planted.
    writer.add_token_scores(
        [-float(len(text)) if kind == gguf.TokenType.NORMAL else 0.0 for text, kind in tokens]
    )
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    writer.add_unk_token_id(unk)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(template)
    return writer


def write_model(path: Path) -> Path:
    rng = np.random.default_rng(20261127)
    tokens = vocabulary()
    index = {text: i for i, (text, _) in enumerate(tokens)}
    vocab = len(tokens)

    writer = _header(
        path,
        "parley-tiny-llama",
        tokens,
        rope_base=10000.0,
        bos=index["<|begin_of_text|>"],
        eos=index[EOT],
        unk=index["<unk>"],
        template=CHAT_TEMPLATE,
    )

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


# --- The tool-calling model ---------------------------------------------------------------------
#
# A second tiny model for the tool loop against the real server. Its chat template is Qwen 2.5's
# (the Hermes 2 Pro format: <tool_call>{"name": .., "arguments": ..}</tool_call>); llama-server
# --jinja analyses it (common/chat-diff-analyzer.cpp) and parses such replies into OpenAI
# `tool_calls`. Its first reply is always the planted call; once a tool result is in the prompt
# (the template wraps it in <tool_response>) its reply is the planted answer.

TOOL_NAME = "find_order"
TOOL_ARGUMENTS = {"order_id": "A17"}
TOOL_ANSWER = "Order A17 has shipped."
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
# The call between its tags is one token: a bigram chain needs every planted token distinct.
TOOL_CALL_BODY = "\n" + json.dumps({"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS}) + "\n"
TOOL_ANSWER_PIECES = ("Order", "\u2581A17", "\u2581has", "\u2581shipped.")

# Qwen 2.5's template, with a neutral default system prompt.
TOOL_CHAT_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n\
You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) \
or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# Residual stream layout of the tool model: a +-1 token code, then three reserved dimensions.
CODE = 48  # dimensions 0..47: the token's code
SEEN_RESPONSE = 48  # 1 on <tool_response> only
FLAG = 56  # written by attention: "a tool result is somewhere in the prompt"
ALWAYS = 63  # 1 on every token, so every position asks the same attention query


def tool_vocabulary() -> list[tuple[str, gguf.TokenType]]:
    kinds = gguf.TokenType
    tokens: list[tuple[str, gguf.TokenType]] = [("<unk>", kinds.UNKNOWN)]
    tokens += [(text, kinds.CONTROL) for text in ("<|endoftext|>", IM_START, IM_END)]
    # Like Qwen's own tokenizer: the tags are single tokens that still print as text.
    tags = (TOOL_CALL_OPEN, TOOL_CALL_CLOSE, TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE)
    tokens += [(text, kinds.USER_DEFINED) for text in tags]
    tokens += [(f"<0x{byte:02X}>", kinds.BYTE) for byte in range(256)]
    singles = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'-:;()"
    tokens += [(char, kinds.NORMAL) for char in singles]
    tokens += [("\u2581" + char, kinds.NORMAL) for char in "abcdefghijklmnopqrstuvwxyz"]
    tokens.append(("\u2581", kinds.NORMAL))
    body = TOOL_CALL_BODY.replace(" ", "\u2581")
    known = {text for text, _ in tokens}
    tokens += [(p, kinds.NORMAL) for p in (body, *TOOL_ANSWER_PIECES) if p not in known]
    return tokens


def write_tool_model(path: Path) -> Path:
    rng = np.random.default_rng(20261206)
    tokens = tool_vocabulary()
    index = {text: i for i, (text, _) in enumerate(tokens)}
    vocab = len(tokens)
    body = TOOL_CALL_BODY.replace(" ", "\u2581")

    # A huge rope base makes the last rotary pair turn by ~1e-5 rad per position: the
    # detecting head below finds the tool result wherever it is in the prompt.
    writer = _header(
        path,
        "parley-tiny-tools",
        tokens,
        rope_base=1e6,
        bos=index["<|endoftext|>"],
        eos=index[IM_END],
        unk=index["<unk>"],
        template=TOOL_CHAT_TEMPLATE,
    )

    embeddings = np.zeros((vocab, DIM), np.float32)
    embeddings[:, :CODE] = rng.choice([-1.0, 1.0], size=(vocab, CODE))
    embeddings[:, ALWAYS] = 1.0
    embeddings[index[TOOL_RESPONSE_OPEN], SEEN_RESPONSE] = 1.0
    code = embeddings[:, :CODE]

    # Layer 0, head 0 finds <tool_response>: every position's query (from ALWAYS) meets a key
    # only on that token; its value lands on FLAG. Without a tool result all values are zero.
    # Everything else in the layers is zero, so the residual stream is the token's code, plus
    # FLAG after a tool result.
    head = DIM // HEADS
    kv_dim = KV_HEADS * head
    query, key, value = (np.zeros((n, DIM), np.float32) for n in (DIM, kv_dim, kv_dim))
    out = np.zeros((DIM, DIM), np.float32)
    slow = head - 2  # the slowest rotary pair of head 0
    query[slow, ALWAYS] = 10.0
    key[slow, SEEN_RESPONSE] = 10.0
    value[0, SEEN_RESPONSE] = 1.0
    out[FLAG, 0] = 3.5

    # The output rows: a bigram chain (row of B = code of A makes B follow A), where the
    # newline ending the prompt branches on FLAG: to the call without it, the answer with it.
    output = np.zeros((vocab, DIM), np.float32)
    call_chain = [TOOL_CALL_OPEN, body, TOOL_CALL_CLOSE]
    answer_chain = list(TOOL_ANSWER_PIECES)
    for chain in (call_chain, answer_chain):
        for previous, following in itertools.pairwise(chain):
            output[index[following], :CODE] = code[index[previous]]
        output[index[IM_END], :CODE] += code[index[chain[-1]]]
    newline = code[index["<0x0A>"]]
    output[index[call_chain[0]], :CODE] = newline
    output[index[call_chain[0]], FLAG] = -8.0
    output[index[answer_chain[0]], :CODE] = 0.25 * newline
    output[index[answer_chain[0]], FLAG] = 8.0

    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", np.ones(DIM, np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(LAYERS):
        prefix = f"blk.{layer}."
        first = layer == 0
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(DIM, np.float32))
        writer.add_tensor(prefix + "attn_q.weight", query if first else 0 * query)
        writer.add_tensor(prefix + "attn_k.weight", key if first else 0 * key)
        writer.add_tensor(prefix + "attn_v.weight", value if first else 0 * value)
        writer.add_tensor(prefix + "attn_output.weight", out if first else 0 * out)
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(DIM, np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", np.zeros((FFN, DIM), np.float32))
        writer.add_tensor(prefix + "ffn_up.weight", np.zeros((FFN, DIM), np.float32))
        writer.add_tensor(prefix + "ffn_down.weight", np.zeros((DIM, FFN), np.float32))
    _finish(writer)
    return path


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


def ensure_tool_model(directory: Path) -> Path:
    """Write the tool-calling model into `directory` unless present (keyed by a version)."""
    directory.mkdir(parents=True, exist_ok=True)
    model = directory / "tiny-tools-v1.gguf"
    if not model.exists():
        partial = model.with_suffix(".partial")
        write_tool_model(partial)
        partial.replace(model)
    return model


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    for written in (*ensure_files(out), ensure_tool_model(out)):
        print(written)
