"""The dead-letter reason codes: each layer owns its own, and together they are exactly the list
docs/contracts.md documents (a bounded metric label, ``leadflow_dead_letters_total{reason}``)."""

from __future__ import annotations

import re
from pathlib import Path

from agents.capture.exceptions import REASON_CODES as CAPTURE_REASON_CODES
from leadflow.compose import DEAD_LETTER_REASONS, METRIC_VOCABULARY
from streams.codec import DECODE_REASON_CODES
from streams.deadletter import RUNTIME_REASON_CODES

ROOT = Path(__file__).resolve().parents[3]


def _documented() -> tuple[str, ...]:
    text = " ".join((ROOT / "docs" / "contracts.md").read_text().split())
    match = re.search(r"Dead-letter reason codes \(bounded; used as the metric label\): ([a-z_, ]+)\.", text)
    assert match, "docs/contracts.md lost its list of dead-letter reason codes"
    return tuple(code.strip() for code in match.group(1).split(","))


def test_the_codes_of_codec_runtime_and_capture_are_the_documented_list():
    documented = _documented()
    assert len(documented) == len(set(documented)) == 11
    assert set(DECODE_REASON_CODES) | set(RUNTIME_REASON_CODES) | set(CAPTURE_REASON_CODES) == set(documented)
    assert DEAD_LETTER_REASONS == documented  # the one list in code, in the documented order


def test_the_metric_label_set_is_that_list():
    assert METRIC_VOCABULARY.dead_letter_reasons == DEAD_LETTER_REASONS
