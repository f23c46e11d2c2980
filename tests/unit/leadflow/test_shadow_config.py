"""The shadow model's setting in the composition root: loaded and validated like the live model
(an error names LEADFLOW_SHADOW_MODEL_PATH), its metric series start at zero only when set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agents.scoring.exceptions import ModelError
from leadflow.compose import METRIC_VOCABULARY, configured_label_values, load_configs
from streams.metric_labels import SCORE_BANDS
from streams.metrics import Metrics
from streams.settings import load_settings

LIVE = Path(__file__).resolve().parents[3] / "config" / "scoring-model.yaml"


def candidate(tmp_path: Path, *, version: str = "candidate-1", mql: str | None = None) -> Path:
    text = re.sub(r"(?m)^version: .*$", f"version: {version}", LIVE.read_text())
    if mql is not None:
        text = re.sub(r"(?m)^  mql: .*$", f"  mql: {mql}", text)
    path = tmp_path / "candidate.yaml"
    path.write_text(text)
    return path


def test_unset_means_no_shadow_and_no_shadow_series(tmp_path):
    configs = load_configs(load_settings(data_dir=str(tmp_path)))
    assert configs.shadow is None and configured_label_values(configs)["shadow_sources"] == ()


def test_a_candidate_is_loaded_and_its_series_start_at_zero(tmp_path):
    configs = load_configs(load_settings(data_dir=str(tmp_path), shadow_model_path=candidate(tmp_path)))
    assert configs.shadow is not None and configs.shadow.version == "candidate-1"
    values = configured_label_values(configs)
    assert set(values["sources"]) <= set(values["shadow_sources"])

    metrics = Metrics(CollectorRegistry(), METRIC_VOCABULARY)
    metrics.start_at_zero(**values)
    for direction in ("gained", "lost"):
        for band in SCORE_BANDS:
            labels = {"direction": direction, "source": values["shadow_sources"][0], "score_band": band}
            assert metrics.registry.get_sample_value("leadflow_shadow_decisions_total", labels) == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"mql": "'high'"}, "thresholds.mql", id="a bad key"),
        pytest.param({"version": "2025.1-default"}, "the live model's version", id="the live version"),
    ],
)
def test_a_bad_candidate_fails_at_load_naming_the_setting_and_the_key(tmp_path, change, message):
    settings = load_settings(data_dir=str(tmp_path), shadow_model_path=candidate(tmp_path, **change))
    with pytest.raises(ModelError) as caught:
        load_configs(settings)
    assert "LEADFLOW_SHADOW_MODEL_PATH" in str(caught.value) and message in str(caught.value)


def test_a_missing_candidate_file_fails_at_load(tmp_path):
    with pytest.raises(ModelError, match="LEADFLOW_SHADOW_MODEL_PATH"):
        load_configs(load_settings(data_dir=str(tmp_path), shadow_model_path=tmp_path / "nope.yaml"))


def test_the_cli_line_points_at_the_shadow_setting_not_the_live_one(tmp_path):
    from leadflow.cli_context import config_error_line

    settings = load_settings(data_dir=str(tmp_path), shadow_model_path=candidate(tmp_path, mql="'high'"))
    with pytest.raises(ModelError) as caught:
        load_configs(settings)
    line = config_error_line(caught.value)
    assert line is not None and line.endswith("point LEADFLOW_SHADOW_MODEL_PATH at another one")
