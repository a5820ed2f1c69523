"""Metrics of several real uvicorn worker processes, merged: any scrape shows the totals of all."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from erp_api.migrate import upgrade
from erp_api.observability import multiprocess
from erp_api.observability.multiprocess import MULTIPROC_ENV, prepare_workers, render_all_workers
from erp_api.settings import load_settings
from testing.processes import ROOT, running_server, serve_command
from tests.observability.conftest import parse_samples, value

ROUTE = {"method": "GET", "route": "/api/v1/charges/{id}", "status": "404"}
BATCH = 60


def served_per_worker(directory: Path) -> dict[str, float]:
    """Requests to ROUTE each worker process counted, read from its own counter file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)], accumulate=False)  # type: ignore[no-untyped-call]
        for family in merged:
            for sample in family.samples:
                if sample.name == "http_requests_total" and sample.labels == ROUTE:
                    counts[path.stem.removeprefix("counter_")] = sample.value
    return counts


def send_batch(base_url: str) -> None:
    """BATCH requests, each on a new connection, from several threads: the kernel spreads them."""

    no_keep_alive = httpx.Limits(max_keepalive_connections=0)
    with (
        httpx.Client(base_url=base_url, timeout=10, limits=no_keep_alive) as http,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        statuses = pool.map(lambda serial: http.get(f"/api/v1/charges/{serial}").status_code, range(BATCH))
        assert set(statuses) == {404}


@pytest.mark.slow
def test_two_workers_report_the_combined_request_count(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/erp.sqlite3"
    upgrade(load_settings(database_url=database))
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left over from an earlier run")
    env = {
        "ERP_DATABASE_URL": database,
        "ERP_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite3",
        "ERP_WORKERS": "2",
        "ERP_CACHE_BACKEND": "none",  # several workers may not share a per-process memory cache
        "ERP_ACCESS_LOG": "false",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    with running_server(env, command=serve_command()) as server:
        base_url = server.base_url
        sent = 0
        # Until both workers have served some: new connections are spread by the kernel, not evenly.
        while sent < 20 * BATCH:
            send_batch(base_url)
            sent += BATCH
            if len([count for count in served_per_worker(directory).values() if count > 0]) >= 2:
                break
        # A request is counted just after its response went out: let the last ones land.
        deadline = time.monotonic() + 5
        while sum(served_per_worker(directory).values()) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        per_worker = served_per_worker(directory)
        scrapes = [httpx.get(f"{base_url}/metrics", timeout=10) for _ in range(8)]

    assert not (directory / "counter_999999.db").exists(), "the parent empties the directory at start"
    assert len([count for count in per_worker.values() if count > 0]) == 2
    assert sum(per_worker.values()) == sent
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert value(parse_samples(scrape.text), "http_requests_total", **ROUTE) == sent
        in_progress = parse_samples(scrape.text)
        assert value(in_progress, "http_requests_in_progress", method="GET") == 0
        # Each worker's CPU and memory, whichever worker answered the scrape.
        memory = {
            dict(labels).get("pid") for name, labels in in_progress if name == "process_resident_memory_bytes"
        }
        assert set(per_worker) <= memory
    # Workers that shut down cleanly take their live gauges with them.
    assert not list(directory.glob("gauge_livesum_*.db"))


def test_the_parent_empties_the_directory_and_hands_it_to_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # setenv first, so that monkeypatch restores the variable's absence after the test: the code
    # under test sets it in os.environ itself.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "histogram_12345.db").write_bytes(b"stale")
    (directory / "keep.txt").write_text("not a metrics file")
    used = prepare_workers(load_settings(workers=2, cache_backend="none", prometheus_multiproc_dir=directory))
    assert used == directory.resolve()
    assert sorted(path.name for path in directory.iterdir()) == ["keep.txt"]
    assert os.environ[MULTIPROC_ENV] == str(directory.resolve())


def test_one_worker_without_a_directory_keeps_metrics_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first, so that monkeypatch restores the variable's absence after the test: the code
    # under test sets it in os.environ itself.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)
    assert prepare_workers(load_settings(workers=1)) is None
    assert MULTIPROC_ENV not in os.environ


def test_the_directory_comes_from_prometheus_own_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert load_settings().prometheus_multiproc_dir == tmp_path


def test_a_process_that_sets_up_the_directory_before_its_metrics_writes_them_there(tmp_path: Path) -> None:
    """What ``python -m tasks worker`` relies on: the setup imports no prometheus-client, so the
    metrics created after it (and in the pool processes forked later) write to the directory."""
    directory = tmp_path / "metrics"
    program = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from erp_api.observability.multiprocess import use_directory
        assert "prometheus_client" not in sys.modules
        use_directory(Path({str(directory)!r}))
        from prometheus_client import Counter
        Counter("probe", "Counts one probe").inc()
        """
    )
    env = {name: value for name, value in os.environ.items() if name != MULTIPROC_ENV}
    subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, check=True, timeout=60)
    assert list(directory.glob("counter_*.db"))
    assert value(parse_samples(render_all_workers(directory).decode()), "probe_total") == 1


def test_servers_on_the_default_directory_each_use_their_own_part_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # setenv first, so that monkeypatch restores the variable's absence after the test: the code
    # under test sets it in os.environ itself.
    monkeypatch.setenv(MULTIPROC_ENV, "")
    monkeypatch.delenv(MULTIPROC_ENV)
    monkeypatch.setattr(multiprocess, "DEFAULT_DIR", tmp_path / "metrics")
    other_server = tmp_path / "metrics" / f"{socket.gethostname()}-{os.getppid()}"  # alive: our parent
    other_server.mkdir(parents=True)
    (other_server / "counter_1.db").write_bytes(b"another server's counts")
    used = prepare_workers(load_settings(workers=2, cache_backend="none"))
    assert used == (tmp_path / "metrics" / f"{socket.gethostname()}-{os.getpid()}").resolve()
    assert (other_server / "counter_1.db").exists()
    assert os.environ[MULTIPROC_ENV] == str(used)
