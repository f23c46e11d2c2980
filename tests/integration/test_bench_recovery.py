"""``make bench-recovery`` end to end on the real stack, small: 2,000 lead states written to the
changelog, a cold start and a warm restart measured, the figures and the JSON present, the
pre-filled states really recovered, nothing left running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadflow.bench.recovery import run_recovery
from leadflow.bench.recovery_phases import RecoveryOptions
from streams.settings import load_settings

pytestmark = pytest.mark.integration


def test_bench_recovery_measures_cold_and_warm_recovery(stack, stack_settings, tmp_path: Path):
    # 1,000 records per partition: the cold start reads them in bulk (streams/faust_bulk_restore.py),
    # the warm restart has nothing to read (Faust's own recovery path).
    base = load_settings(**{**stack_settings.model_dump(), "topic_partitions": 2, "bulk_restore_min_records": 100})
    opts = RecoveryOptions(leads=2000, output=tmp_path, failover=False, manage_stack=False, pool_size=50)
    lines: list[str] = []

    results = run_recovery(base, opts, say=lines.append)

    log = "\n".join(lines)
    figures = results["figures"]
    assert figures["cold_recovery_s"] > 0 and figures["warm_restart_s"] > 0, log
    assert figures["worker_peak_rss_mib"] > 50, figures
    assert 500 < figures["state_bytes_per_lead"] < 50_000, figures
    assert figures["failover_s"] is None  # --no-failover
    for phase in ("cold", "warm"):
        assert results[phase]["state_check"]["ok"], results[phase]
    assert results["cold"]["bulk_restore_logged_s"] is not None, results["cold"]  # the pre-filled states came in bulk
    assert results["warm"]["bulk_restore_logged_s"] is None, results["warm"]  # the local state was current
    assert results["cold"]["stopped_cleanly"] is True
    assert results["state"]["written_bytes_per_lead"]["count"] == 2000
    assert "lead_to_state only" in log
    saved = json.loads(Path(results["results_file"]).read_text())
    assert saved["leads"] == 2000 and saved["machine"]["cores"] >= 1
    assert {g["figure"] for g in saved["goals"]} == {
        "cold_recovery_s",
        "failover_s",
        "worker_peak_rss_mib",
        "state_bytes_per_lead",
    }
    assert results["leftover_processes"] == []
    assert not list((Path(base.stack_dir) / "bench" / results["run_id"]).glob("data*"))  # state dirs removed
