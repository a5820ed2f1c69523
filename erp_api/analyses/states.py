"""The life cycle of an anomaly analysis, as plain Python.

``queued -> running -> succeeded | failed``; a running analysis goes back to ``queued`` when it is
requeued (its worker was lost) and a queued one may be failed by the reaper when it ran too often.
"""

from __future__ import annotations

from enum import StrEnum


class AnalysisStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = frozenset({AnalysisStatus.SUCCEEDED, AnalysisStatus.FAILED})
STATUS_VALUES = tuple(status.value for status in AnalysisStatus)


def is_terminal(status: str) -> bool:
    """A finished analysis never runs again; a redelivered task for it does nothing."""
    return status in TERMINAL
