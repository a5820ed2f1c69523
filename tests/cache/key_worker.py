"""Run as ``python -m tests.cache.key_worker``: reads wire values (JSON) on stdin, prints their keys."""

from __future__ import annotations

import json
import sys

from cache.keys import encode_key
from tests.cache.key_values import from_wire


def main() -> None:
    wires = json.load(sys.stdin)
    json.dump([encode_key(from_wire(wire)) for wire in wires], sys.stdout)


if __name__ == "__main__":
    main()
