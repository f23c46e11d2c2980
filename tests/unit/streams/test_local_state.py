"""Local table stores are reused only after a clean stop (streams/local_state.py)."""

from __future__ import annotations

from streams import local_state


def _store(data_dir):
    tables = data_dir / local_state.TABLES / "lead_to_state-0.db"
    tables.mkdir(parents=True)
    (tables / "CURRENT").write_text("x")
    return tables


def test_after_a_clean_stop_the_local_stores_are_kept(tmp_path):
    assert local_state.claim(tmp_path) is False
    store = _store(tmp_path)
    local_state.release(tmp_path)
    assert local_state.claim(tmp_path) is False and store.exists()


def test_after_a_crash_the_local_stores_are_rebuilt_from_the_changelogs(tmp_path):
    local_state.claim(tmp_path)
    store = _store(tmp_path)
    # killed: release() never ran
    assert local_state.claim(tmp_path) is True
    assert not store.exists() and (tmp_path / local_state.MARKER).exists()


def test_a_first_start_discards_nothing(tmp_path):
    assert local_state.claim(tmp_path / "new") is False
