"""``openai`` backend: any OpenAI-compatible ``POST {base_url}/chat/completions`` (vLLM, llama.cpp server,
Ollama, ...), standard library only.

Images travel as base64 data URLs. At most ``concurrency`` requests are in flight (thread pool); each
has a socket timeout; 429, 5xx, timeouts and connection errors are retried with exponential backoff
(``backoff * 2**attempt`` seconds, or the server's Retry-After, capped at 60 s); other HTTP errors and
malformed responses fail that request only. ``max_consecutive_failures`` failed requests in a row stop
the run (the bank keeps what was committed; re-run to resume). The API key is read from the
environment variable ``api_key_env`` (none sent when it is unset, as local servers need none).
"""
from __future__ import annotations

import base64
import http.client
import json
import mimetypes
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from recbole_neggen.generation.backends.base import BACKENDS, Backend, Reply, Request

MAX_RETRY_AFTER = 60.0


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    pass


def data_url(path: os.PathLike[str] | str) -> str:
    """File -> ``data:<mime>;base64,...``."""
    mime = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    with open(path, "rb") as handle:
        return f"data:{mime};base64,{base64.b64encode(handle.read()).decode('ascii')}"


def _retry_after(headers: Any) -> float | None:
    try:
        return min(float(headers.get("Retry-After")), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return None


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    """Chat-completions client with bounded concurrency, timeouts and retries."""

    name = "openai"

    def __init__(self, model: str, base_url: str, max_new_tokens: int = 1024, temperature: float = 0.0,
                 concurrency: int = 4, timeout: float = 120.0, max_retries: int = 4, backoff: float = 1.0,
                 api_key_env: str = "OPENAI_API_KEY", images: bool = True, max_response_bytes: int = 2_000_000,
                 max_consecutive_failures: int = 20) -> None:
        super().__init__()
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("need concurrency >= 1, max_retries >= 0 and timeout > 0")
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.api_key_env = api_key_env
        self.sees_images = images
        self.max_response_bytes = max_response_bytes
        self.max_consecutive_failures = max_consecutive_failures
        self._failures_in_row = 0
        self._lock = threading.Lock()

    def settings(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "images": self.sees_images}

    def _messages(self, request: Request) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = [dict(m) for m in request.messages]
        if request.image is not None and self.sees_images:
            first = next(i for i, m in enumerate(messages) if m["role"] == "user")
            messages[first]["content"] = [{"type": "text", "text": messages[first]["content"]},
                                          {"type": "image_url", "image_url": {"url": data_url(request.image)}}]
        return messages

    def _post(self, payload: dict[str, Any]) -> bytes:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read(self.max_response_bytes + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace")
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}: {detail}", _retry_after(exc.headers)) from None
            raise _Fatal(f"HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        if len(body) > self.max_response_bytes:
            raise _Fatal(f"response larger than {self.max_response_bytes} bytes")
        return body

    def _parse(self, body: bytes) -> Reply:
        try:
            data = json.loads(body)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Reply(error=f"malformed chat response ({type(exc).__name__}): {body[:200]!r}")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            return Reply(error=f"malformed chat response: content is {type(content).__name__}")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        with self._lock:
            for key in ("prompt_tokens", "completion_tokens"):
                if isinstance(usage.get(key), int):
                    setattr(self.usage, key, getattr(self.usage, key) + usage[key])
        return Reply(text=content)

    def _one(self, request: Request) -> Reply:
        payload = {"model": self.model, "messages": self._messages(request), "max_tokens": self.max_new_tokens,
                   "temperature": self.temperature, "seed": request.seed}
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                return self._parse(self._post(payload))
            except _Fatal as exc:
                return Reply(error=str(exc))
            except _Retryable as exc:
                last = str(exc)
                if attempt < self.max_retries:
                    time.sleep(exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** attempt)
        return Reply(error=f"gave up after {self.max_retries + 1} attempts: {last}")

    def _answer(self, requests: Sequence[Request]) -> list[Reply]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            replies = list(pool.map(self._one, requests))
        for reply in replies:
            self._failures_in_row = self._failures_in_row + 1 if reply.error is not None else 0
            if self._failures_in_row >= self.max_consecutive_failures:
                raise RuntimeError(f"openai backend: {self._failures_in_row} requests in a row failed "
                                   f"(last: {reply.error}); check {self.url}. Committed items are kept; "
                                   f"re-run to resume.")
        return replies
