"""The drift check on recorded engine output (tests/recordings, recorded with the real CLI, engine and Kubernetes
provider by tests/recordings/record_drift.py): real drift is told apart from a workload short of replicas and a
failed Job, and the drift workflow's step acts on it (an issue only for drift)."""

import json
import subprocess
import sys

import pytest
import yaml

from ci.drift import DRIFT, FAILED, NO_DRIFT, UNREADY, classify, read_events

from tests.support.stacks import ROOT

RECORDINGS = ROOT / "tests" / "recordings"
WEB = "urn:pulumi:dev::drift::kubernetes:apps/v1:Deployment::web"
MIGRATE = "urn:pulumi:dev::drift::kubernetes:batch/v1:Job::migrate"


def recorded(name: str):
    return classify(read_events(RECORDINGS / f"drift-{name}.jsonl"))


def test_a_clean_stack_is_no_drift():
    report = recorded("clean")
    assert (report.exit_code(), report.drift, report.unready) == (NO_DRIFT, {}, {})


def test_a_deployment_short_of_replicas_is_not_ready_not_drift():
    report = recorded("unready")
    assert report.exit_code() == UNREADY and report.drift == {}
    assert list(report.unready) == [WEB] and "MinimumReplicasUnavailable" in report.unready[WEB]


def test_a_failed_job_is_not_ready_not_drift():
    report = recorded("failed-job")
    assert report.exit_code() == UNREADY and report.drift == {}
    assert list(report.unready) == [MIGRATE] and "DeadlineExceeded" in report.unready[MIGRATE]


def test_an_image_changed_out_of_band_is_drift():
    report = recorded("drift")
    assert report.exit_code() == DRIFT and report.drift == {WEB: ["spec.template.spec.containers[0].image"]}
    assert report.unready == {}


def test_a_planned_replacement_or_a_property_update_is_drift_and_a_failed_preview_is_an_error():
    events = [{"resourcePreEvent": {"metadata": {"urn": "urn:a", "op": "replace", "detailedDiff": {}}}},
              {"resourcePreEvent": {"metadata": {"urn": "urn:b", "op": "update",
                                                 "detailedDiff": {"spec.replicas": {"kind": "update"}}}}}]
    assert classify(events).drift == {"urn:a": ["planned replace"], "urn:b": ["spec.replicas"]}
    failed = classify([{"diagnosticEvent": {"severity": "error", "message": "error: no credentials\n"}},
                       {"summaryEvent": {"result": "failed"}}])
    assert failed.exit_code() == FAILED and failed.errors == ["stack: error: no credentials"]


def test_output_that_is_not_an_event_stream_is_a_failed_check_not_no_drift():
    """`--json` without PULUMI_ENABLE_STREAMING_JSON_PREVIEW prints one indented document; a CLI that fails early
    prints nothing: neither may pass as "no drift"."""
    document = json.dumps({"steps": [], "changeSummary": {"same": 5}}, indent=4).splitlines()
    for lines in (document, []):
        report = classify([json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")])
        assert report.exit_code() == FAILED and "no engine summary" in report.errors[0]


def drift_step() -> tuple[str, dict]:
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "drift.yml").read_text())["jobs"]
    step = next(s for s in jobs["drift"]["steps"] if s.get("id") == "check")
    return step["run"].replace("${{ vars.PULUMI_ORG }}", "acme").replace("${{ matrix.stack }}", "prod"), step["env"]


@pytest.mark.parametrize("recording, code, drift, warned", [
    ("clean", 0, False, False), ("unready", 0, False, True), ("failed-job", 0, False, True), ("drift", 1, True, False),
    ("broken", 1, False, False), ("not-streamed", 1, False, False), ("clean-but-cli-failed", 1, False, False)])
def test_the_workflow_step_opens_an_issue_only_for_drift(tmp_path, recording, code, drift, warned):
    """The step as bash runs it, `pulumi` replaced by a stand-in that prints the recorded events only when the step
    asks for a stream, and exits as the CLI does (non-zero when the engine's result is failed)."""
    if recording == "broken":
        (tmp_path / "events").write_text(json.dumps({"summaryEvent": {"result": "failed"}}) + "\n")
    else:
        name = {"not-streamed": "clean", "clean-but-cli-failed": "clean"}.get(recording, recording)
        (tmp_path / "events").write_text((RECORDINGS / f"drift-{name}.jsonl").read_text())
    failed = '"result": "failed"' in (tmp_path / "events").read_text() or recording == "clean-but-cli-failed"
    script, step_env = drift_step()
    if recording == "not-streamed":
        step_env = {}
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "pulumi").write_text(
        "#!/bin/sh\n"
        f'if [ "$PULUMI_ENABLE_STREAMING_JSON_PREVIEW" = true ]; then cat {tmp_path / "events"}; '
        'else echo \'{\'; echo \'    "steps": []\'; echo \'}\'; fi\n'
        f"exit {255 if failed else 0}\n")
    (shims / "pulumi").chmod(0o755)
    (shims / "python").symlink_to(sys.executable)
    output = tmp_path / "github-output"
    output.touch()
    (tmp_path / "ci").symlink_to(ROOT / "ci")  # the checkout the step runs in
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": f"{shims}:/usr/bin:/bin", "GITHUB_OUTPUT": str(output), **step_env}, timeout=60)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert ("drift=true" in output.read_text()) == drift
    assert ("::warning::prod: resources not ready, not drift" in proc.stdout) == warned
