"""What a ``check`` run prints: findings as text lines, one JSON document, or SARIF 2.1.0; and its progress.

SARIF is what code-scanning tools read (GitHub's ``upload-sarif`` action among them): one run whose tool lists a rule
per finding kind, a result per finding with its level and location (1-based lines, UTF-16 columns: SARIF's default
``columnKind``), and a ``fix`` with the replacement lines where ``--fix`` found one. Paths are relative to the folder
``check`` ran in (``%SRCROOT%``).

Progress goes to stderr: one line rewritten in place on a terminal (files done/total, findings, tokens, files per
minute), a plain line per file otherwise (CI logs).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from .check_worker import REVIEW_SOURCE

_LEVELS = {"error": "error", "warning": "warning", "info": "note", "hint": "note"}
_RULES = {"syntax": "The file does not parse: a syntax error the fix agent can often repair.",
          "review": "A defect the agent team's review found and cross-examined."}
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def finding_line(path: str, finding: dict[str, Any]) -> str:
    """``path:line:col: severity: message [source]``, as ``check`` has always printed them."""
    source = f" [{finding['source']}]" if finding.get("source") else ""
    return f"{path}:{finding['line']}:{finding['column']}: {finding['severity']}: {finding['message']}{source}"


def rule_id(finding: dict[str, Any]) -> str:
    return f"metagpt-lsp/{finding.get('code') or ('review' if finding.get('source') == REVIEW_SOURCE else 'syntax')}"


def to_json(records: list[dict[str, Any]], summary: dict[str, Any], problems: list[str]) -> str:
    files = [{key: value for key, value in record.items() if key != "fixed_text"} for record in records]
    return json.dumps({"files": files, "summary": summary, "problems": problems}, indent=2)


def to_sarif(records: list[dict[str, Any]], version: str, root: Path) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    rules: dict[str, dict[str, Any]] = {}
    for record in records:
        uri = _relative_uri(record["path"], root)
        for finding, fix in [(f, f.get("fix")) for f in record.get("fixed", [])] + [
                (f, None) for f in record.get("findings", [])]:
            rule = rule_id(finding)
            rules.setdefault(rule, {"id": rule, "name": rule.split("/", 1)[1], "shortDescription": {
                "text": _RULES.get(rule.split("/", 1)[1], "A finding of the metagpt-lsp agent team.")}})
            result: dict[str, Any] = {
                "ruleId": rule, "level": _LEVELS.get(finding["severity"], "warning"),
                "message": {"text": finding["message"]},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": finding["line"], "startColumn": finding["column"],
                               "endLine": finding["end_line"], "endColumn": finding["end_column"]}}}]}
            if fix:
                result["fixes"] = [{"description": {"text": f"Explain and fix: {finding['message']}"},
                                    "artifactChanges": [{"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                                                         "replacements": [_replacement(r) for r in fix]}]}]
            results.append(result)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "metagpt-lsp", "version": version,
                            "informationUri": "https://github.com/metagpt-lsp/metagpt-lsp",
                            "rules": sorted(rules.values(), key=lambda r: r["id"])}},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
        "columnKind": "utf16CodeUnits",
        "results": results}]}


def _replacement(change: dict[str, Any]) -> dict[str, Any]:
    return {"deletedRegion": {"startLine": change["start_line"], "startColumn": change["start_column"],
                              "endLine": change["end_line"], "endColumn": change["end_column"]},
            "insertedContent": {"text": change["new_text"]}}


def _relative_uri(path: str, root: Path) -> str:
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_uri()


class Progress:
    """Files done/total, findings, tokens and rate: rewritten in place on a terminal, a line per file otherwise."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total, self.stream = total, stream
        self.done = self.findings = self.tokens = self.failed = 0
        self.started = time.monotonic()
        self.live = stream.isatty()

    def __call__(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.findings += len(record.get("findings", [])) + len(record.get("fixed", []))
        self.tokens += int((record.get("usage") or {}).get("tokens", 0))
        self.failed += record.get("status") == "failed"
        minutes = max(time.monotonic() - self.started, 1e-6) / 60
        line = (f"{self.done}/{self.total} files, {self.findings} finding(s), {self.tokens} tokens, "
                f"{self.done / minutes:.1f} files/min")
        if self.live:
            self.stream.write(f"\r\033[K{line}")
        else:
            what = "reused" if record.get("reused") else record.get("status", "done")
            self.stream.write(f"[{self.done}/{self.total}] {record['path']}: {what}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.done:
            self.stream.write("\n")
            self.stream.flush()
