"""``make scaleout``: its verdict, its generated section, and a short run on real processes.

The short run is the real thing at a smaller size: two API instances behind HAProxy, two workers and
beat on PostgreSQL and Redis, Locust and the recording writer through the balancer, one instance and
one worker SIGKILLed; it passes only when no acknowledged write or accepted analysis was lost.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from loadtests import cluster, scaleout
from loadtests.run import REPORTS
from loadtests.scaleout import BEGIN, END, Phase, Result
from tests import services

PASSING = Result(
    duration_seconds=60,
    users=4,
    rps=40.0,
    p50_ms=20.0,
    p95_ms=90.0,
    requests=2000,
    failures=2,
    before_kill=Phase(20, 800, 0),
    after_kill=Phase(40, 1200, 2),
    api_killed_at=20.0,
    worker_killed_at=30.0,
    worker_killed_running_analysis=True,
    writer_attempts=300,
    writer_failures_before=0,
    writer_failures_after=1,
    writer_failure_details=["measurement at 20.1 s: RemoteProtocolError()"],
    charges_acknowledged=120,
    charges_found=120,
    measurements_acknowledged=120,
    measurements_found=120,
    analyses_accepted=40,
    analyses_found=40,
    analyses_by_status={"succeeded": 52},
    analyses_retried=1,
    analysis_wait_seconds=3.0,
    analysis_wait_limit=180.0,
    max_failure_ratio=0.01,
    machine="produced on 2026-01-01 00:00 UTC; 2 cores",
)


def test_a_run_that_lost_nothing_passes_and_reports_every_figure() -> None:
    assert PASSING.problems() == []
    markdown = scaleout.report(PASSING)
    assert "| errors | 2 (0.10%) | 0 (0.00%) | 2 (0.17%) |" in markdown
    assert "Charges acknowledged (201) / found in PostgreSQL: 120 / 120" in markdown
    assert "Analyses accepted (202) by the writer / found: 40 / 40" in markdown
    assert "52 succeeded; 1 needed a second attempt" in markdown
    assert markdown.endswith("Verdict: PASS")


def test_a_lost_write_an_unfinished_analysis_or_too_many_errors_fail_the_run() -> None:
    lost = replace(PASSING, measurements_found=119)
    assert lost.problems() == ["1 acknowledged measurements lost"]
    unfinished = replace(
        PASSING, analyses_by_status={"succeeded": 51, "running": 1}, analysis_wait_seconds=180
    )
    assert unfinished.problems()[0].startswith("1 analyses not final after 180 s")
    missing = replace(PASSING, analyses_found=39)
    assert missing.problems() == ["1 accepted analyses lost"]
    errors = replace(PASSING, failures=40)
    assert errors.problems() == ["failure ratio 2.00% exceeds 1%"]


def test_a_worker_runs_an_analysis_between_its_received_and_finished_lines() -> None:
    received = '{"event":"Task erp.analysis.run[0a1b-2c] received"}\n'
    finished = '{"event":"Task erp.analysis.run[0a1b-2c] succeeded in 0.1s: {}"}\n'
    assert cluster.runs_an_analysis(received)
    assert not cluster.runs_an_analysis(received + finished)
    assert cluster.runs_an_analysis(received + finished + received.replace("0a1b", "3d4e"))
    assert not cluster.runs_an_analysis('{"event":"Task erp.webhooks.sweep[5f] received"}\n')


def test_the_figures_replace_only_the_generated_section(tmp_path: Path) -> None:
    doc = tmp_path / "SCALING.md"
    doc.write_text(f"# Scaling\n\nbefore\n\n{BEGIN}\nold figures\n{END}\n\nafter\n")
    scaleout.write_docs("new figures", doc)
    assert doc.read_text() == f"# Scaling\n\nbefore\n\n{BEGIN}\nnew figures\n{END}\n\nafter\n"
    doc.write_text("# Scaling without markers\n")
    with pytest.raises(RuntimeError, match="no generated section"):
        scaleout.write_docs("figures", doc)


def test_the_documentation_has_a_generated_section() -> None:
    text = scaleout.DOCS.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_a_short_scaleout_loses_no_acknowledged_write_when_an_instance_and_a_worker_die(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The product's recovery (a silent heartbeat; a message the killed worker received but had not
    # claimed), on a shorter clock than its defaults to fit a short run.
    monkeypatch.setenv("ERP_ANALYSIS_HEARTBEAT_INTERVAL_SECONDS", "2")
    monkeypatch.setenv("ERP_ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS", "6")
    monkeypatch.setenv("ERP_ANALYSIS_RECOVERY_INTERVAL_SECONDS", "2")
    monkeypatch.setenv("ERP_ANALYSIS_REDELIVER_AFTER_SECONDS", "6")
    services.require_postgres()
    services.require_redis()
    if shutil.which("haproxy") is None:
        services.unavailable("HAProxy", "PATH (apt-get install haproxy)")
    database = services.unique_name("erp_scaleout")
    name = f"scaleout-test-{database[-10:]}"
    argv = f"--duration 30 --users 4 --analysis-wait 150 --max-failure-ratio 0.03 --name {name}".split()
    argv += ["--database", database]
    try:
        assert scaleout.main(argv) == 0
        result = json.loads((REPORTS / f"{name}.json").read_text())
    finally:
        for path in REPORTS.glob(f"{name}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    assert 0 < result["api_killed_at"] < result["worker_killed_at"]
    assert result["before_kill"]["requests"] > 0 and result["after_kill"]["requests"] > 0
    assert result["charges_acknowledged"] > 0
    assert result["charges_found"] == result["charges_acknowledged"]
    assert result["measurements_found"] == result["measurements_acknowledged"] > 0
    assert result["analyses_found"] == result["analyses_accepted"] > 0
    assert set(result["analyses_by_status"]) == {"succeeded"}
