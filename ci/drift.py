"""Classify a drift check: real drift, or workloads that are not ready, read from the engine's events of
`pulumi preview --refresh --diff --json`.

`--expect-no-changes` alone fails on both. As the real engine reports them (tests/recordings):
- **drift**: the refresh finds the live object different from the state (a refresh step with a detailed diff), or
  the preview plans a create, a delete or a replacement, or an update that changes a property;
- **unready**: the refresh warns "Refreshed resource is in an unhealthy state" (a Deployment mid-rollout or without
  its replicas, a failed Job) and the preview plans an update with no property diff, which only retries the wait.

    # one event per line (without the variable, --json prints one document at the end)
    PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true pulumi preview --refresh --diff --json -s STACK > events.jsonl
    python ci/drift.py events.jsonl     # exit 0: no change; 1: drift; 2: only unready resources; 3: preview failed

A stream without the engine's summary (a CLI that failed before the preview ran, or output not streamed) is a
failed check, never "no drift".
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

UNHEALTHY = "Refreshed resource is in an unhealthy state"
CHANGES = ("create", "delete", "replace", "create-replacement", "delete-replaced", "import", "import-replacement",
           "discard", "discard-replaced", "remove-pending-replace")
NO_DRIFT, DRIFT, UNREADY, FAILED = 0, 1, 2, 3


@dataclass
class DriftReport:
    """What a drift check found, by resource URN."""

    drift: dict[str, list[str]] = field(default_factory=dict)
    """URN -> what differs (property paths, or the planned operation)."""
    unready: dict[str, str] = field(default_factory=dict)
    """URN -> why the provider says it is not ready."""
    errors: list[str] = field(default_factory=list)
    failed: bool = False

    def exit_code(self) -> int:
        if self.drift:
            return DRIFT
        if self.failed:
            return FAILED
        return UNREADY if self.unready else NO_DRIFT

    def text(self) -> str:
        lines = [f"drift: {urn}: {', '.join(what)}" for urn, what in sorted(self.drift.items())]
        lines += [f"not ready (not drift): {urn}: {why}" for urn, why in sorted(self.unready.items())]
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines) or "no drift: the stack matches the program and everything is ready"


def classify(events: list[dict]) -> DriftReport:
    report = DriftReport(failed=not any("summaryEvent" in event for event in events))
    if report.failed:
        report.errors.append("no engine summary in the events: the preview did not run, or its output was not "
                             "streamed (PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true)")
    unhealthy: dict[str, str] = {}
    planned: list[tuple[str, str, dict]] = []
    for event in events:
        diagnostic = event.get("diagnosticEvent")
        if diagnostic:
            message = diagnostic.get("message") or ""
            if diagnostic.get("severity") == "warning" and UNHEALTHY in message and diagnostic.get("urn"):
                reasons = [line.lstrip("* ").strip() for line in message.splitlines()[1:] if line.strip()]
                unhealthy[diagnostic["urn"]] = "; ".join(reasons) or "unhealthy"
            elif diagnostic.get("severity") == "error":
                report.errors.append(f"{diagnostic.get('urn') or 'stack'}: {message.strip().splitlines()[0]}"
                                     if message.strip() else diagnostic.get("urn") or "stack")
            continue
        summary = event.get("summaryEvent")
        if summary:
            report.failed = summary.get("result") == "failed"
            continue
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            metadata = (event.get(kind) or {}).get("metadata")
            if not metadata:
                continue
            urn, op, diff = metadata.get("urn", ""), metadata.get("op", ""), metadata.get("detailedDiff") or {}
            if op == "refresh" and diff:
                report.drift.setdefault(urn, []).extend(p for p in sorted(diff)
                                                        if p not in report.drift.get(urn, []))
            elif op != "refresh" and kind == "resourcePreEvent":
                planned.append((urn, op, diff))
    for urn, op, diff in planned:
        if op in CHANGES:
            report.drift.setdefault(urn, []).append(f"planned {op}")
        elif op == "update" and diff:
            report.drift.setdefault(urn, []).extend(p for p in sorted(diff) if p not in report.drift.get(urn, []))
        elif op == "update" and urn not in report.drift:
            report.unready[urn] = unhealthy.get(urn, "an update with no property change (the provider retries its wait)")
    for urn, why in unhealthy.items():
        if urn not in report.drift:
            report.unready.setdefault(urn, why)
    return report


def read_events(path: Path) -> list[dict]:
    """The JSON events of a `--json` run (other lines, such as a trailing error text, are skipped)."""
    events = []
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: python ci/drift.py EVENTS.jsonl  (from pulumi preview --refresh --diff --json)", file=sys.stderr)
        return 64
    report = classify(read_events(Path(argv[0])))
    print(report.text())
    return report.exit_code()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
