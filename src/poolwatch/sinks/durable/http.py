"""The HTTP half every HTTP sink shares (webhook, Alertmanager): one pooled client with its TLS,
auth and timeouts, and one POST under an overall deadline that always ends in an `Outcome`.

The sinks differ only in what they send and to where; how a request is made and how its failure
reads (a transport error or timeout is retried, an answer is classified by `answers.classify`)
must be the same for both, so that one receiver's trouble looks the same in every log.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from pathlib import Path

import httpx

from poolwatch import __version__
from poolwatch.core.reasons import one_line
from poolwatch.sinks import SinkError
from poolwatch.sinks.durable.answers import classify, read_snippet
from poolwatch.sinks.durable.delivery import Outcome, Retry


def client(
    *,
    timeout: float,
    connect_timeout: float | None = None,
    ca_file: Path | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    headers: Mapping[str, str] | None = None,
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A client that sends JSON, verifies TLS (against `ca_file` when given), presents a client
    certificate when given, never follows redirects (a moved endpoint is a config error to fix,
    not something to chase), and authenticates by bearer token or basic auth when given.

    `headers` may add to the defaults but not change the content type; `transport` is for tests.
    Unreadable TLS files are a `SinkError` naming them, at start-up rather than at first send.
    """
    try:
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if client_cert is not None:
            tls.load_cert_chain(client_cert, client_key)
    except (OSError, ssl.SSLError) as exc:
        named = (("ca_file", ca_file), ("client_cert", client_cert))
        files = ", ".join(f"{key} {path}" for key, path in named if path)
        raise SinkError(f"cannot load TLS files ({files}): {exc.strerror or exc}") from None
    sent = {"user-agent": f"poolwatch/{__version__}", **(headers or {})}
    sent["content-type"] = "application/json"
    if bearer_token is not None:
        sent["authorization"] = f"Bearer {bearer_token}"
    return httpx.AsyncClient(
        verify=tls,
        auth=httpx.BasicAuth(*basic_auth) if basic_auth is not None else None,
        headers=sent,
        timeout=httpx.Timeout(timeout, connect=connect_timeout or timeout),
        follow_redirects=False,
        transport=transport,
    )


async def post(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    deadline: float,
    headers: Mapping[str, str] | None = None,
) -> Outcome:
    """POST `body` and say what the answer means for delivery; never raises for the network.

    `deadline` bounds the whole exchange (connect, send, the bounded body snippet), which httpx's
    per-operation timeouts alone do not: a receiver trickling bytes would hold the queue forever.
    """
    try:
        async with asyncio.timeout(deadline):
            request = http.build_request("POST", url, content=body, headers=headers)
            response = await http.send(request, stream=True)
            try:
                snippet = await read_snippet(response)
            finally:
                await response.aclose()
    except TimeoutError:
        return Retry(f"no answer within {deadline:g}s")
    except httpx.TimeoutException as exc:
        return Retry(f"{type(exc).__name__}: no answer in time")
    except httpx.HTTPError as exc:
        return Retry(one_line(exc, named=True))
    return classify(response.status_code, response.headers.get("retry-after"), snippet)
