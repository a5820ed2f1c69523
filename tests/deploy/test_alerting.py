"""Alertmanager's configuration, and a runbook section for every alert (docs/RUNBOOK.md)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.deploy.conftest import DEPLOY, ROOT, require_tool, run_checker

ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives the headings (GitHub's and GitLab's rule)."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_alertmanager_configuration_passes_amtool() -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    result = run_checker(amtool, "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_severity_of_the_rules_has_its_route() -> None:
    routes = yaml.safe_load(ALERTMANAGER.read_text())["route"]["routes"]
    routed = {matcher for route in routes for matcher in route["matchers"]}
    severities = {rule["labels"]["severity"] for rule in alert_rules()}
    assert severities == {"page", "ticket"}
    assert {f'severity="{severity}"' for severity in severities} <= routed


def test_inhibitions_name_existing_alerts() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    for rule in yaml.safe_load(ALERTMANAGER.read_text())["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            pattern = re.fullmatch(r'alertname=~?"(.*)"', matcher)
            assert pattern, matcher
            assert any(re.fullmatch(pattern.group(1), name) for name in names), matcher


def test_every_alert_links_its_own_runbook_section() -> None:
    anchors = heading_anchors(RUNBOOK.read_text())
    bases = set()
    for rule in alert_rules():
        url = urlsplit(rule["annotations"]["runbook_url"])
        bases.add(url._replace(fragment="").geturl())
        assert url.scheme == "https" and url.path.endswith("/docs/RUNBOOK.md"), rule["alert"]
        assert url.fragment == rule["alert"].lower(), rule["alert"]
        assert url.fragment in anchors, f"docs/RUNBOOK.md has no section for {rule['alert']}"
    assert len(bases) == 1, "one place for all runbooks"


def test_the_anchor_rule_matches_the_renderers() -> None:
    assert heading_anchors("## ErpApiHighErrorRatio\n### What it means, first!\n") == {
        "erpapihigherrorratio",
        "what-it-means-first",
    }
