"""Provider conformance: every recorded input of every stack against the installed provider SDKs' own input types,
and every custom resource and invoke with an explicit provider (the engine refuses default providers)."""

import json
import re
import textwrap

import pytest

from tests.support.stacks import ROOT, STACKS, run_preflight, run_probe

REPORT = """
from preflight import conformance
plan = {plan}
report = conformance.check_plan(plan)
print("REPORT", json.dumps({{"problems": report.problems, "resources": report.resources}}))
"""

# The invokes each stack makes: AWS reads the account id once per region, Azure the subscription once per region.
INVOKES = {"dev": 0, "laptop": 0, "prod": 2, "gcp": 0, "azure": 2}


def conformance_report(tmp_path, plan_expression: str) -> dict:
    proc = run_probe(tmp_path, REPORT.format(plan=plan_expression))
    assert "REPORT" in proc.stdout, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("REPORT", 1)[1])


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_conforms_to_the_provider_sdks(planned, stack):
    """`preflight --conformance` (the session fixture runs it) finds nothing, having looked at every resource."""
    line = next(line for line in planned[stack].stdout.splitlines() if line.startswith("Conformance:"))
    counts = re.match(r"Conformance: (\d+) resources, (\d+) property names and (\d+) invokes checked against the "
                      r"installed provider SDKs: no problem\(s\)$", line)
    assert counts, planned[stack].stdout[-3000:]
    resources, properties, invokes = (int(n) for n in counts.groups())
    checked = [r for r in planned[stack].plan["resources"] if r["custom"] and r["type"] != "pulumi:pulumi:StackReference"]
    assert resources == len(checked)
    assert properties > 15 * len(checked)  # nested inputs walked, not only the top level
    assert invokes == INVOKES[stack]


BROKEN_PROGRAM = '''
import pulumi, pulumi_aws as aws, pulumi_kubernetes as k8s, pulumi_random as random
k8s_provider = k8s.Provider("k8s", context="kind")
aws_provider = aws.Provider("aws", region="us-east-1")
k8s.apps.v1.Deployment("web", metadata={"name": "web"}, spec={
    "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "web", "image": "nginx:1.27", "securityContext": {"readOnlyRootFilesytem": True}}]}}},
    opts=pulumi.ResourceOptions(provider=k8s_provider))
aws.s3.BucketLifecycleConfiguration("lifecycle", bucket="b", rules=[
    {"id": "x", "status": "Enabled", "abort_incomplete_multipart_uploads": {"days_after_initiation": 1}}],
    opts=pulumi.ResourceOptions(provider=aws_provider))
random.RandomPassword("password", length=16)
aws.get_caller_identity_output()
'''


def test_misspelled_nested_keys_and_default_providers_are_caught(tmp_path):
    program = tmp_path / "broken.py"
    program.write_text(textwrap.dedent(BROKEN_PROGRAM))
    report = conformance_report(tmp_path, f"engine.run_program(Path({str(program)!r}), 'thanos', 'dev', {{}}, {{}})")
    problems = [p.split("::")[-1] for p in report["problems"]]
    assert problems == [
        "lifecycle.rules[0].abort_incomplete_multipart_uploads: no such property in "
        "BucketLifecycleConfigurationRuleArgs (known: abortIncompleteMultipartUpload, expiration, filter, id, "
        "noncurrentVersionExpiration, noncurrentVersionTransitions, prefix, status, transitions)",
        "web.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem: no such property in "
        "SecurityContextArgs (known: allowPrivilegeEscalation, appArmorProfile, capabilities, privileged, procMount, "
        "readOnlyRootFilesystem, runAsGroup, runAsNonRoot, runAsUser, seLinuxOptions, seccompProfile, "
        "windowsOptions)",
        "password: no explicit provider (default providers are disabled)",
        "invoke aws:index/getCallerIdentity:getCallerIdentity: no explicit provider (default providers are disabled)",
    ]


def test_enum_literal_and_type_checks():
    from preflight import conformance
    from preflight.engine import Resource

    def resource(typ, inputs):
        return Resource(f"urn:{typ}::r", typ, "r", True, None, "urn:p", False, False, [], inputs, {})

    report = conformance.Report()
    conformance.check_resource(resource("azure-native:storage:StorageAccount", {
        "resourceGroupName": "rg", "kind": "StorageV3", "sku": {"name": "Standard_RAGZRS"}}), report)
    conformance.check_resource(resource("kubernetes:core/v1:Service", {
        "apiVersion": "v2", "kind": "Service", "metadata": {"name": "s", "labels": {"a": 1}}}), report)
    conformance.check_resource(resource("aws:s3/bucket:Bucket", {"acl": "private"}), report)
    conformance.check_resource(resource("aws:s3/bucketV2:BucketV2", {}), report)
    assert [p.split("::", 1)[1] for p in report.problems] == [
        "r.kind: 'StorageV3' is not a value of Kind ['BlobStorage', 'BlockBlobStorage', 'FileStorage', 'Storage', "
        "'StorageV2']",
        "r.apiVersion: 'v2' is not one of ['v1']",
        "r.metadata.labels['a']: a number where the SDK expects str",
        "r.acl: deprecated in the SDK",
        "r: aws:s3/bucketV2:BucketV2 is deprecated in the SDK",
    ]


def test_the_azure_stack_passes_its_provider_to_the_client_config_invoke():
    source = (ROOT / "components" / "storage" / "azure.py").read_text()
    assert re.search(r"get_client_config_output\(opts=pulumi\.InvokeOutputOptions\(provider=(args\.)?provider\)\)", source)


def test_preflight_conformance_fails_the_plan_on_a_problem(tmp_path):
    program = tmp_path / "broken.py"
    program.write_text(textwrap.dedent(BROKEN_PROGRAM))
    proc = run_preflight("dev", "--program", str(program), "--no-policy", "--conformance")
    assert proc.returncode == 1
    assert "invokes checked against the installed provider SDKs: 4 problem(s)" in proc.stdout
    assert proc.stdout.count("  [conformance] ") == 4
