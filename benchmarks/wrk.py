"""Drive a server with wrk (one thread, keep-alive connections) and read back rps and percentiles."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], %(headers)s)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    base_url: str,
    paths: list[str],
    seconds: float,
    connections: int = 32,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """Request ``paths`` round-robin for ``seconds``; status >= 400 counts as an error."""
    header_lua = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in (headers or {}).items()) + "}"
    with tempfile.TemporaryDirectory() as tmp:
        paths_file = Path(tmp) / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        script = Path(tmp) / "mix.lua"
        script.write_text(LUA % {"paths": paths_file, "headers": header_lua})
        result = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                base_url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", result.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match or not rps:
        raise RuntimeError(f"unexpected wrk output:\n{result.stdout}\n{result.stderr}")
    requests, p50, p95, p99, errors = (int(g) for g in match.groups())
    return WrkResult(float(rps.group(1)), requests, p50 / 1000, p95 / 1000, p99 / 1000, errors)
