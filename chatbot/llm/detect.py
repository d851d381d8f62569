"""Finding a model server on this machine when the operator declared none.

Probes Ollama (127.0.0.1:11434) and llama-server (127.0.0.1:8080) with a short timeout. The
result is cached in the process and re-probed lazily (sooner when nothing was found, so a
server started after Parley is picked up). Nothing here runs at import time; `start_background`
probes once in a daemon thread at start-up so the first page does not wait for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import httpx

from chatbot.lib import outbound

from .spec import EndpointSpec

log = logging.getLogger(__name__)

OLLAMA_URL = "http://127.0.0.1:11434"
LLAMA_SERVER_URL = "http://127.0.0.1:8080"
PROBE_TIMEOUT = 0.5
TTL_FOUND = 300.0
TTL_NOTHING = 20.0


@dataclass(frozen=True)
class Detection:
    specs: tuple[EndpointSpec, ...]
    notes: tuple[str, ...]  # e.g. "Ollama is running but has no model: ollama pull llama3.2"
    at: float


_lock = threading.Lock()
_cached: Detection | None = None


async def _probe_ollama(client: httpx.AsyncClient, notes: list[str]) -> list[EndpointSpec]:
    try:
        tags = (await client.get(f"{OLLAMA_URL}/api/tags")).json()
    except (httpx.HTTPError, ValueError):
        return []
    names = [str(m.get("name")) for m in tags.get("models") or [] if m.get("name")]
    chat = [n for n in names if "embed" not in n]
    embedders = [n for n in names if "embed" in n]
    if not chat:
        notes.append("Ollama is running but has no chat model yet: run `ollama pull llama3.2`")
        return []
    model = chat[0]
    images = False
    try:
        show = (await client.post(f"{OLLAMA_URL}/api/show", json={"model": model})).json()
        images = "vision" in (show.get("capabilities") or [])
    except (httpx.HTTPError, ValueError):
        pass
    return [
        EndpointSpec(
            name="ollama-local",
            kind="ollama",
            base_url=OLLAMA_URL,
            model=model,
            context_window=4096,
            images=images,
            embeddings=bool(embedders),
            embedding_model=embedders[0] if embedders else "",
        )
    ]


async def _probe_llama_server(client: httpx.AsyncClient, notes: list[str]) -> list[EndpointSpec]:
    try:
        response = await client.get(f"{LLAMA_SERVER_URL}/v1/models")
    except httpx.HTTPError:
        return []
    if response.status_code == 401:
        notes.append(
            "a server answers on 127.0.0.1:8080 but wants an API key: declare it in "
            "LLM_ENDPOINTS with auth bearer"
        )
        return []
    try:
        models = [str(m["id"]) for m in response.json().get("data") or [] if m.get("id")]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    if not models:
        return []
    context_window, images = 4096, False
    try:
        props = (await client.get(f"{LLAMA_SERVER_URL}/props")).json()
        context_window = int(props["default_generation_settings"]["n_ctx"]) or context_window
        images = bool((props.get("modalities") or {}).get("vision"))
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass
    return [
        EndpointSpec(
            name="llama-server-local",
            kind="openai",
            base_url=f"{LLAMA_SERVER_URL}/v1",
            model=models[0],
            context_window=context_window,
            images=images,
        )
    ]


async def probe() -> Detection:
    notes: list[str] = []
    async with outbound.async_client(
        guarded=False,  # fixed loopback addresses, not user input
        timeout=httpx.Timeout(PROBE_TIMEOUT),
        limits=httpx.Limits(max_connections=4),
    ) as client:
        found = await asyncio.gather(
            _probe_ollama(client, notes), _probe_llama_server(client, notes)
        )
    specs = tuple(spec for group in found for spec in group)
    return Detection(specs=specs, notes=tuple(notes), at=time.monotonic())


def _probe_blocking() -> Detection:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(probe())
    # Called from inside an event loop (should not happen: sync callers run in threads).
    result: list[Detection] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(probe())))
    thread.start()
    thread.join()
    return result[0]


def detected(*, force: bool = False) -> Detection:
    """The cached detection, re-probing when it is stale (blocks at most ~PROBE_TIMEOUT)."""
    global _cached
    with _lock:
        cached = _cached
        if cached is not None and not force:
            ttl = TTL_FOUND if cached.specs else TTL_NOTHING
            if time.monotonic() - cached.at < ttl:
                return cached
        try:
            _cached = _probe_blocking()
        except Exception:  # a probe must never break a page
            log.exception("llm: autodetection failed")
            _cached = Detection(specs=(), notes=(), at=time.monotonic())
        if _cached.specs:
            log.info("llm: detected %s", ", ".join(f"{s.name} ({s.model})" for s in _cached.specs))
        return _cached


def cached() -> Detection | None:
    return _cached


def reset() -> None:
    global _cached
    with _lock:
        _cached = None


def start_background() -> None:
    threading.Thread(target=detected, name="parley-llm-detect", daemon=True).start()
