"""Normalization of free-text values shared by the model and the rules."""

from __future__ import annotations

import re
from functools import lru_cache

_NON_TOKEN = re.compile(r"[^a-z0-9.]+")
_NON_WORD = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=8192)  # utm values and industries repeat across events
def normalize_token(raw: object) -> str | None:
    """'Google Ads' -> 'google_ads', '(direct)' -> 'direct', 'Banking & Finance' -> 'banking_and_finance'."""
    if raw is None:
        return None
    token = _NON_TOKEN.sub("_", str(raw).strip().lower().replace("&", " and ")).strip("_")
    return token or None


@lru_cache(maxsize=8192)
def normalize_words(raw: object) -> str:
    """Lower-case words separated by single spaces: 'VP, Sales/Ops' -> 'vp sales ops'."""
    return " ".join(_NON_WORD.sub(" ", str(raw or "").lower()).split())
