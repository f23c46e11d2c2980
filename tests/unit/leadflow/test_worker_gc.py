"""The worker's garbage-collector tuning (``leadflow.worker.tune_gc``, LEADFLOW_GC_YOUNG_THRESHOLD)."""

from __future__ import annotations

import gc

import pytest

from leadflow.worker import tune_gc
from streams.settings import load_settings


@pytest.fixture
def gc_restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_freezes_what_is_alive_and_collects_young_objects_less_often(gc_restored):
    gc.unfreeze()
    tune_gc(load_settings(gc_young_threshold=50_000))
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() > 1_000  # the modules and objects alive now


def test_zero_leaves_pythons_defaults(gc_restored):
    gc.unfreeze()
    before = gc.get_threshold()
    tune_gc(load_settings(gc_young_threshold=0))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_setting_is_bounded():
    with pytest.raises(ValueError, match="gc_young_threshold"):
        load_settings(gc_young_threshold=-1)
