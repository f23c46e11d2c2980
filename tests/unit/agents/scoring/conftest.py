"""Fixtures of the scoring tests: the repository's scoring-model.yaml as plain data (the loaded
model is tests/unit/conftest.py's ``scoring_model``)."""

from __future__ import annotations

import pytest

from tests.repo_config import default_raw


@pytest.fixture(scope="session")
def scoring_raw():
    """config/scoring-model.yaml as plain YAML: shared, so deep-copy it before changing it."""
    return default_raw("scoring-model.yaml")
