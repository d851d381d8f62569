"""The least a client can do to stream an OpenAI-compatible chat completion.

Raw bytes split on newlines, `json.loads` per `data:` line, no SSE library: the baseline that
benchmarks compare Parley's relay against (bench/llm_relay, bench/relay_e2e).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Stream:
    ttft: float  # seconds, request sent -> first content token
    duration: float  # seconds, request sent -> end of the stream
    tokens: int  # chunks carrying content
    ok: bool  # a finish reason arrived
    text: str = ""


async def stream_chat(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Stream:
    """POST `body` to `{url}/v1/chat/completions` and read the SSE stream to its end."""
    started = time.perf_counter()
    first: float | None = None
    count = 0
    finished = False
    parts: list[str] = []
    async with client.stream(
        "POST", f"{url}/v1/chat/completions", json=body, headers=headers or {}
    ) as response:
        buffer = b""
        async for data in response.aiter_raw():
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                for choice in json.loads(line[6:]).get("choices") or ():
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        first = first or time.perf_counter()
                        count += 1
                        parts.append(content)
                    if choice.get("finish_reason"):
                        finished = True
    ended = time.perf_counter()
    return Stream((first or ended) - started, ended - started, count, finished, "".join(parts))
