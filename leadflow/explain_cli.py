"""`leadflow explain EMAIL|LEAD_ID`: why a lead has its score and its owner, in words.

Asks a worker's lead API (LEADFLOW_API_URL, with LEADFLOW_API_TOKEN when set); any worker
answers for every lead. An email goes in a POST body (``/leads/lookup``) and is hashed into the
lead id by the worker: it is never part of a URL and never printed back.
"""

from __future__ import annotations

from typing import Any

import click
import httpx

from leadflow.cli_context import settings_from as _settings

TIMEOUT_S = 10.0


@click.command(short_help="Why a lead has its score and owner, in words.")
@click.argument("target", metavar="EMAIL|LEAD_ID")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer instead of words.")
@click.pass_context
def explain(ctx: click.Context, target: str, as_json: bool) -> None:
    """The lead's score decayed to now with every signal, fit grade and gate, first and last
    touch, owner and how routing chose them, open SLA clock, last touches and MQL history."""
    import orjson

    from agents.domain.erasure import LEAD_ID_RE
    from leadflow.api.explain import explain as in_words

    settings = _settings(ctx)
    text = target.strip()
    headers = {"Accept": "application/json"}
    if settings.api_token_value:
        headers["Authorization"] = f"Bearer {settings.api_token_value}"
    base = settings.api_url.rstrip("/")
    try:
        with httpx.Client(timeout=TIMEOUT_S, headers=headers) as client:
            if LEAD_ID_RE.match(text.lower()):
                response = client.get(f"{base}/leads/{text.lower()}")
            elif "@" in text:
                response = client.post(f"{base}/leads/lookup", content=orjson.dumps({"email": text}))
            else:
                raise click.BadParameter(
                    f"expected an email address or a lead id ('ld_' and 20 hex digits); got {len(text)} characters",
                    param_hint="EMAIL|LEAD_ID",
                )
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no lead API answered at {base} ({type(exc).__name__}): is a worker running "
            "(`leadflow run`), and is LEADFLOW_API_URL its address?"
        ) from None
    body = _json(response)
    if response.status_code != 200:
        raise click.ClickException(f"the lead API said {response.status_code}: {body.get('error', 'no reason given')}")
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() if as_json else in_words(body), nl=not as_json)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": f"a non-JSON answer ({response.headers.get('content-type', 'no content type')})"}
    return body if isinstance(body, dict) else {"error": "an unexpected answer"}
