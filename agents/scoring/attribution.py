"""Source attribution: raw utm / hidden-field values -> a channel of the model's taxonomy.

Rules (domain brief, "Attribution"):
- UTM parameters win over the form's hidden-field default source.
- Media ("web", "form", "inbound"...) are never stored as a source: such a value counts as
  "no source" and the next candidate is tried.
- A medium can decide the channel together with the source: medium "cpc" with source
  "google" is paid search, with source "linkedin" paid social (``attribution.medium_rules``,
  first match wins); otherwise the source's alias decides (``attribution.source_aliases``).
- A source that matches nothing is ``unrecognized_channel`` ("other"); a capture with no
  usable source at all is ``missing_channel`` ("unknown") and never overrides a known touch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.scoring.text import normalize_token

if TYPE_CHECKING:
    from agents.scoring.model import ScoringModel


def resolve_channel(model: ScoringModel, source: object, medium: object = None) -> str | None:
    """The channel for one (source, medium) pair, or None when they carry no source information."""
    src = normalize_token(source)
    med = normalize_token(medium)
    if src in model.not_sources:
        src = None  # a medium in the source field says nothing about where the lead came from
    if med is not None:
        for media, sources, channel in model.compiled_medium_rules:
            if med in media and (not sources or src in sources):
                return channel
    if src is None:
        return None
    return model.source_channels.get(src, model.attribution.unrecognized_channel)


def attribute(
    model: ScoringModel, data: dict[str, Any], *, is_capture: bool
) -> tuple[str, str | None, str | None] | None:
    """(channel, raw source, raw medium) for an event's data, UTM first, then the hidden field.

    A capture (form submit) always yields a channel (``missing_channel`` if nothing usable);
    web activity without UTM yields None: a page view mid-session is not a new touch.
    """
    utm_source, utm_medium = data.get("utm_source"), data.get("utm_medium")
    channel = resolve_channel(model, utm_source, utm_medium)
    if channel is not None:
        return channel, normalize_token(utm_source), normalize_token(utm_medium)
    hidden = data.get("hidden_lead_source")
    channel = resolve_channel(model, hidden)
    if channel is not None:
        return channel, normalize_token(hidden), None
    if is_capture:
        return model.attribution.missing_channel, None, None
    return None
