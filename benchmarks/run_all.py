"""Run every benchmark, each in its own process, then write docs/BENCHMARKS.md."""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks import report
from benchmarks.common import RESULTS, ROOT

ORDER = ["cache", "spc", "http", "observability", "quality", "analysis", "scaling"]


def main() -> int:
    modules = sorted(path.stem for path in (ROOT / "benchmarks").glob("bench_*.py"))
    names = [name.removeprefix("bench_") for name in modules]
    names.sort(key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))
    for stale in RESULTS.glob("*.json"):
        stale.unlink()
    failed = []
    for name in names:
        started = time.monotonic()
        print(f"== bench_{name}", flush=True)
        result = subprocess.run([sys.executable, "-m", f"benchmarks.bench_{name}"], cwd=ROOT, check=False)
        print(
            f"== bench_{name}: {'ok' if result.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s"
        )
        if result.returncode != 0:
            failed.append(name)
    report.main()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
