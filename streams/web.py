"""HTTP views on Faust's web server that answer for one table key, on any worker.

A keyed view resolves a request to a table key (a lead id), asks Faust's router which worker
owns that key's partition (``app.router.key_store``: the partition assignor's map of active
partitions to each worker's canonical URL) and either answers from this worker's tables or
forwards the request, as a GET of the key's canonical path, to the owner. So any worker behind
a load balancer answers for every lead, and a lookup by email (a POST whose body carries the
email) is forwarded by lead id only: the email never travels in a URL.

Requests need ``Authorization: Bearer <LEADFLOW_API_TOKEN>`` when a token is set (compared in
constant time; the forwarded request carries the same header). A forwarded request is answered
by its receiver or refused with 503, never forwarded again: two workers with different views of
an assignment in flight cannot bounce a request between them.

Capability-free: what a key means and what the answer holds are the caller's (leadflow/api).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import faust
import orjson
from yarl import URL

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger(__name__)

FORWARDED_HEADER = "X-Leadflow-Forwarded"
SERVED_HEADER = "X-Leadflow-Served"  # local | forwarded: who answered (clients and benchmarks)
JSON = "application/json"


class BadRequest(ValueError):
    """The request cannot name a key; the message is safe to send back (it never repeats input)."""


class NotServed(Exception):
    """This worker cannot say who owns the key right now (rebalance in flight): 503."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


# (request, match_info) -> the table key's text (a lead id); raises BadRequest.
KeyOf = Callable[[Any, dict[str, Any]], Awaitable[str]]
# key -> the answer from this worker's tables.
AnswerFor = Callable[[str], Answer]


def authorized(headers: Any, token: str | None) -> bool:
    """No token configured: every request (the API is bound to loopback then, see settings)."""
    if token is None:
        return True
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def owner_url(app: faust.App, table: str, key: bytes) -> URL | None:
    """The canonical URL of the worker that owns ``key`` in ``table``; None: this worker."""
    # During a rebalance the owner map may be stale, and during recovery a table answers
    # "unknown" for a key it has not restored yet: neither is an answer.
    if app.rebalancing or getattr(app, "in_recovery", False):
        raise NotServed("partitions are being reassigned or recovered")
    try:
        dest = app.router.key_store(table, key)
    except KeyError:
        raise NotServed("no worker owns the partition yet") from None
    return None if _ident(dest) == _ident(URL(str(app.conf.canonical_url))) else dest


def _ident(url: URL) -> tuple[str, int]:
    """A worker's identity in the assignor's map: host and port (as Faust's router compares)."""
    return (url.host or "", url.port or 80)


def register_keyed_view(
    pipeline: Pipeline,
    route: str,
    *,
    endpoint: str,
    table: str,
    method: str,
    key_of: KeyOf,
    canonical_path: Callable[[str], str],
    answer_for: AnswerFor,
) -> None:
    """Serve ``method route`` on Faust's web server (see the module doc). ``endpoint`` labels
    the metrics; ``canonical_path(key)`` is the GET path the owner answers the key on."""
    app, settings, metrics = pipeline.app, pipeline.settings, pipeline.metrics
    token = settings.api_token_value
    timeout = aiohttp.ClientTimeout(total=settings.api_forward_timeout_s)

    def respond(view: faust.web.View, answer: Answer, served: str, started: float) -> Any:
        metrics.api_requests.labels(endpoint=endpoint, status=str(answer.status), served=served).inc()
        metrics.api_request_seconds.labels(served=served).observe(time.perf_counter() - started)
        return view.bytes(
            orjson.dumps(answer.body), content_type=JSON, status=answer.status, headers={SERVED_HEADER: served}
        )

    async def forward(dest: URL, key: str, request: Any) -> Answer:
        headers = {FORWARDED_HEADER: "1"}
        if request.headers.get("Authorization"):
            headers["Authorization"] = request.headers["Authorization"]
        url = dest.with_path(canonical_path(key))
        try:
            async with app.http_client.get(url, headers=headers, timeout=timeout) as response:
                body = await response.read()
                return Answer(response.status, orjson.loads(body) if body else {})
        except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError) as exc:
            log.warning("lead API: the owning worker %s did not answer: %s", dest.host, type(exc).__name__)
            return Answer(502, {"error": "the worker that owns this lead did not answer; retry"})

    async def handle(view: faust.web.View, request: Any, match_info: dict[str, Any]) -> Any:
        started = time.perf_counter()
        served = "local"
        if not authorized(request.headers, token):
            return respond(view, Answer(401, {"error": "missing or wrong bearer token"}), served, started)
        try:
            key = await key_of(request, match_info)
            dest = owner_url(app, table, key.encode())
        except BadRequest as exc:
            return respond(view, Answer(400, {"error": str(exc)}), served, started)
        except NotServed as exc:
            return respond(view, Answer(503, {"error": f"{exc}; retry"}), served, started)
        if dest is None:
            return respond(view, answer_for(key), served, started)
        if request.headers.get(FORWARDED_HEADER):  # the sender thinks we own it; we do not: no second hop
            return respond(view, Answer(503, {"error": "partition ownership is changing; retry"}), served, started)
        return respond(view, await forward(dest, key, request), "forwarded", started)

    class KeyedView(faust.web.View):
        pass

    async def serve(self: faust.web.View, request: Any, **match_info: Any) -> Any:
        return await handle(self, request, match_info)

    setattr(KeyedView, method.lower(), serve)
    KeyedView.__name__ = f"{endpoint.title()}View"
    app.page(route, name=f"leadflow-{endpoint}")(KeyedView)
