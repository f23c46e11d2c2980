"""The calibrated model file: loads with load_model, differs from the live one only where it
should, and the live file is never written."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from agents.domain.yamlio import read_yaml
from agents.scoring.exceptions import ModelError
from agents.scoring.model import load_model
from leadflow.calibration.model_file import ModelChanges, ModelWriteError, write_model
from streams.settings import REPO_ROOT

LIVE = REPO_ROOT / "config" / "scoring-model.yaml"


def _flatten(node, prefix=""):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "scoring-model.yaml"
    shutil.copy(LIVE, path)
    return path


def test_written_model_loads_and_differs_only_where_it_should(live, tmp_path):
    before = hashlib.sha256(live.read_bytes()).hexdigest()
    out = tmp_path / "calibrated.yaml"
    changes = ModelChanges(
        version="2025.1-cal-test",
        description="calibrated in a test",
        mql_threshold=57,
        points={"docs_page_visit": 9, "email_open": 6, "senior_title": 12, "inactivity": -14},
    )
    model = write_model(live, out, changes)
    assert model.version == "2025.1-cal-test" and model.thresholds.mql == 57
    assert model == load_model(out)
    old, new = _flatten(read_yaml(live, ModelError)), _flatten(read_yaml(out, ModelError))
    changed = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
    assert changed == {
        "version",
        "description",
        "thresholds.mql",
        "thresholds.mql_rearm_at",  # kept at the same distance below the threshold (0)
        "signals.docs_page_visit.points",
        "signals.docs_page_visit.cap",
        "signals.email_open.points",
        "signals.email_open.cap",
        "fit_signals.senior_title.points",
        "inactivity.points",
    }
    assert (new["signals.docs_page_visit.cap"], new["signals.email_open.cap"]) == (18, 6)  # caps keep their units
    assert new["thresholds.mql_rearm_at"] == 57 and new["thresholds.fast_track"] == 80
    assert "# Behavioural signals: decay with the half-life." in out.read_text()  # comments survive
    assert hashlib.sha256(live.read_bytes()).hexdigest() == before


def test_a_threshold_above_fast_track_raises_fast_track(live, tmp_path):
    model = write_model(live, tmp_path / "m.yaml", ModelChanges("v-high", "high", mql_threshold=90))
    assert (model.thresholds.mql, model.thresholds.fast_track) == (90, 90)


def test_refuses_the_live_file_and_an_existing_file(live, tmp_path):
    with pytest.raises(ModelWriteError, match="is the live model file"):
        write_model(live, live, ModelChanges("v2", "x"))
    existing = tmp_path / "there.yaml"
    existing.write_text("keep me")
    with pytest.raises(ModelWriteError, match="already exists"):
        write_model(live, existing, ModelChanges("v2", "x"))
    assert existing.read_text() == "keep me"


def test_an_invalid_result_is_not_left_behind(live, tmp_path):
    out = tmp_path / "bad.yaml"
    with pytest.raises(ModelWriteError, match="does not validate"):
        write_model(live, out, ModelChanges("x" * 65, "too long a version"))
    assert not out.exists()
