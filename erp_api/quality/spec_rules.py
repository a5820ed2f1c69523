"""The run rules a spec asks for: its rule set, optionally narrowed to a subset of that set's rule ids.

Stored on ``QualitySpec`` as ``rules`` ("nelson" | "western_electric") and ``rule_ids`` (the subset,
comma-separated in the set's own order, or None for the whole set). Everything that runs rules for a
spec -- the control chart, analyses, the on-ingest check -- reads them through :func:`rule_ids_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from erp_api.quality.models import QualitySpec
from erp_api.quality.spc.rules import RULE_SETS, RuleName, RuleSet


def rule_set_of(spec: QualitySpec) -> RuleSet:
    """The spec's rule set; a value the API never writes falls back to Nelson."""
    return cast(RuleSet, spec.rules) if spec.rules in RULE_SETS else "nelson"


def rule_ids_of(spec: QualitySpec) -> tuple[RuleName, ...]:
    """The rules checked for the spec: its set narrowed to its ``rule_ids``, in the set's order."""
    rules = RULE_SETS[rule_set_of(spec)]
    if not spec.rule_ids:
        return rules
    chosen = set(spec.rule_ids.split(","))
    return tuple(rule for rule in rules if rule in chosen)


def unknown_rule_ids(rules: RuleSet, rule_ids: Iterable[str]) -> list[str]:
    """The ids among ``rule_ids`` that are not rules of the set ``rules``, sorted, without duplicates."""
    return sorted(set(rule_ids) - set(RULE_SETS[rules]))


def stored_rule_ids(rules: RuleSet, rule_ids: Iterable[str] | None) -> str | None:
    """The column value for a subset (validated by the caller): None for no subset, else ids in set order."""
    if rule_ids is None:
        return None
    chosen = set(rule_ids)
    return ",".join(rule for rule in RULE_SETS[rules] if rule in chosen)
