"""What an HTTP answer means for delivery, shared by every HTTP sink (webhook, Alertmanager):
2xx delivered; 408, 429 and 5xx retried (honouring Retry-After); any other answer rejected to
the dead-letter table with a bounded snippet of its body."""

from __future__ import annotations

import httpx

from poolwatch.sinks.durable.delivery import Delivered, Outcome, Reject, Retry
from poolwatch.sinks.durable.queue import SNIPPET_BYTES
from poolwatch.sinks.durable.retry import parse_retry_after

RETRYABLE_STATUS = frozenset({408, 429})


def classify(status: int, retry_after: str | None, snippet: str) -> Outcome:
    if 200 <= status < 300:
        return Delivered()
    if status in RETRYABLE_STATUS or status >= 500:
        return Retry(f"HTTP {status}", parse_retry_after(retry_after))
    if 300 <= status < 400:
        return Reject(f"HTTP {status}: redirects are not followed; fix the url", status, snippet)
    if status == 410:
        return Reject("HTTP 410: the endpoint is gone", status, snippet)
    return Reject(f"HTTP {status}", status, snippet)


DRAIN_BYTES = 64 * 1024
"""A 2xx body up to this size is read to its end, so the connection goes back to the pool (an
unread body makes httpx close it, and over TLS every event would pay a new handshake)."""


async def read_snippet(response: httpx.Response) -> str:
    """At most SNIPPET_BYTES of the body: enough to say why, bounded for any answer size. A 2xx
    body is read (up to DRAIN_BYTES) and dropped, which keeps the connection alive."""
    if 200 <= response.status_code < 300:
        drained = 0
        async for chunk in response.aiter_raw():
            drained += len(chunk)
            if drained > DRAIN_BYTES:
                break  # a huge answer: closing this connection is cheaper than reading it
        return ""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= SNIPPET_BYTES:
            break
    return data[:SNIPPET_BYTES].decode("utf-8", errors="replace")
