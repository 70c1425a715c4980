"""The preflight contract: exit codes, JSON shape, manifest layout, determinism, mock options recorded."""

import copy
import json

import pytest
import yaml

from preflight.manifests import is_object

from tests.support.stacks import ROOT, STACKS, run_preflight, run_probe

RESOURCE_KEYS = {"urn", "type", "name", "custom", "parent", "provider", "protect", "retainOnDelete", "dependsOn",
                 "inputs", "secretInputs", "aliases"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_plans_with_exit_0(planned, stack):
    result = planned[stack]
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"Plan of thanos/{stack}:" in result.stdout
    assert "Policies:" in result.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_json_follows_the_contract(planned, stack):
    plan = planned[stack].plan
    assert set(plan) == {"project", "stack", "resources", "outputs", "violations", "destructive", "prerequisites"}
    assert plan["project"] == "thanos" and plan["stack"] == stack
    for resource in plan["resources"]:
        assert set(resource) == RESOURCE_KEYS
    urns = [r["urn"] for r in plan["resources"]]
    assert len(urns) == len(set(urns)), "duplicate URNs (the real engine would refuse the plan)"
    for violation in plan["violations"]:
        assert set(violation) == {"policy", "level", "urn", "message"}
        assert violation["level"] in ("mandatory", "advisory")


@pytest.mark.parametrize("stack", STACKS)
def test_every_cloud_and_kubernetes_resource_has_an_explicit_provider(planned, stack):
    for resource in planned[stack].plan["resources"]:
        if resource["custom"] and not resource["type"].startswith("pulumi:"):
            assert resource["provider"], f"{resource['urn']} uses a default provider"


def test_secrets_are_redacted_and_listed(planned):
    secrets = [r for r in planned["dev"].plan["resources"] if r["secretInputs"]]
    assert {r["name"] for r in secrets} >= {"chicago-shared-secret-thanos-objstore", "chicago-tls-secret-thanos-ca-bundle",
                                            "chicago-tls-secret-thanos-query-grpc-tls",
                                            "global-chicago-entry-secret-thanos-tenant-gate-config"}
    for resource in secrets:
        dumped = json.dumps(resource["inputs"])
        assert "[secret]" in dumped and "mock-" not in dumped


def test_numbers_that_are_whole_are_ints(planned):
    deployment = planned["prod"].resources("kubernetes:apps/v1:StatefulSet")[0]
    assert isinstance(deployment["inputs"]["spec"]["replicas"], int)


def test_prod_data_is_protected_and_retained(planned):
    buckets = planned["prod"].resources("aws:s3/bucket:Bucket")
    assert len(buckets) == 4
    assert all(b["protect"] and b["retainOnDelete"] for b in buckets)
    dev_claims = [r for r in planned["dev"].plan["resources"] if r["protect"]]
    assert dev_claims == []


def test_manifest_layout(planned):
    manifests = planned["prod"].manifests
    assert (manifests / "chicago" / "_cluster" / "namespace-thanos.yaml").is_file()
    assert (manifests / "chicago" / "thanos" / "statefulset-thanos-compactor.yaml").is_file()
    assert (manifests / "seattle" / "thanos" / "deployment-thanos-query-pods.yaml").is_file()
    k8s_resources = [r for r in planned["prod"].plan["resources"] if r["custom"] and is_object(r["type"])]
    assert len([p for p in manifests.rglob("*.yaml") if "files" not in p.parent.parts]) == len(k8s_resources)
    # What is inside them, as files a person (or promtool, or Grafana) reads: rules, prometheus.yml, dashboards.
    inner = manifests / "chicago" / "thanos"
    assert yaml.safe_load((inner / "files" / "thanos-prometheus-rules" / "platform.yaml").read_text())["groups"]
    assert yaml.safe_load((inner / "files" / "thanos-prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    board = manifests / "chicago" / "thanos-global" / "files" / "thanos-grafana-dashboards" / "thanos-overview.json"
    assert json.loads(board.read_text())["uid"] == "thanos-overview"


def test_same_stack_gives_the_same_json_and_manifests_byte_for_byte(planned, tmp_path):
    """A second run of prod (the session fixture made the first) writes the same JSON and manifests."""
    proc = run_preflight("prod", "--json", str(tmp_path / "plan.json"), "--manifests", str(tmp_path / "m"),
                         "--conformance")
    assert proc.returncode == 0, proc.stderr
    first = planned["prod"].manifests
    assert (tmp_path / "plan.json").read_bytes() == (first.parent / "plan.json").read_bytes()
    files_a = sorted(p.relative_to(first) for p in first.rglob("*.yaml"))
    files_b = sorted(p.relative_to(tmp_path / "m") for p in (tmp_path / "m").rglob("*.yaml"))
    assert files_a == files_b and len(files_a) > 100
    assert [f for f in files_a if (first / f).read_bytes() != (tmp_path / "m" / f).read_bytes()] == []


def test_config_file_names_the_stack(tmp_path):
    copy = tmp_path / "Pulumi.staging.yaml"
    copy.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    proc = run_preflight("--config-file", str(copy), "--json", str(tmp_path / "p.json"), "--no-policy")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "p.json").read_text())["stack"] == "staging"


def test_program_that_raises_exits_3(tmp_path):
    program = tmp_path / "broken.py"
    program.write_text("raise RuntimeError('boom in the program')\n")
    proc = run_preflight("dev", "--program", str(program))
    assert proc.returncode == 3
    assert "boom in the program" in proc.stderr


def test_unknown_stack_exits_2():
    proc = run_preflight("nosuchstack")
    assert proc.returncode == 2 and "no stack file" in proc.stderr


# Every stack has a CA (pulumi_tls); the generated cookie secret or password of an entry point needs pulumi_random.
SDK_OF_STACK = {"dev": {"pulumi_kubernetes", "pulumi_random", "pulumi_tls"},
                "laptop": {"pulumi_kubernetes", "pulumi_random", "pulumi_tls"},
                "prod": {"pulumi_kubernetes", "pulumi_aws", "pulumi_tls", "pulumi_random"},
                "gcp": {"pulumi_kubernetes", "pulumi_gcp", "pulumi_tls", "pulumi_random"},
                "azure": {"pulumi_kubernetes", "pulumi_azure_native", "pulumi_tls", "pulumi_random"}}


def test_the_program_itself_refuses_bad_config_with_a_clean_error(tmp_path):
    proc = run_probe(tmp_path, (
        "bad = {'thanos:config': {'environment': 'dev', 'regions': [], 'bogus': 1}}\n"
        "try:\n"
        f"    engine.run_program(Path({str(ROOT / '__main__.py')!r}), 'thanos', 'dev', bad, {{}})\n"
        "except pulumi.RunError as err:\n"
        "    print('RUNERROR', err)\n"))
    assert "RUNERROR invalid stack configuration" in proc.stdout, proc.stdout + proc.stderr
    assert "regions: List should have at least 1 item" in proc.stdout and "bogus: unknown key" in proc.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_preview_mode_plans_the_same_resources_and_imports_only_the_stacks_sdks(planned, stack, tmp_path):
    """`pulumi preview` runs the program with every provider-computed output unknown; and a stack loads only the
    provider SDKs it uses (each costs import time)."""
    proc = run_probe(tmp_path, f"print('RESOURCES', len(plan_stack({stack!r}, preview=True).resources))\n"
                               "print('SDKS', json.dumps(sorted({m.split('.')[0] for m in sys.modules "
                               "if m.startswith('pulumi_')})))\n")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split("RESOURCES")[1].split()[0]) == len(planned[stack].plan["resources"])
    assert set(json.loads(proc.stdout.split("SDKS")[1])) == SDK_OF_STACK[stack]


# --- options and files: one-line errors naming the option, exit 2, nothing written, nothing of the user's removed ---

@pytest.mark.parametrize("option, value, message", [
    ("--program", "missing.py", "--program {tmp}/missing.py: no such file"),
    ("--policy-config", "missing.json", "--policy-config {tmp}/missing.json: no such file"),
    ("--policy-config", "broken.json", "--policy-config {tmp}/broken.json: not valid JSON"),
    ("--policy-config", "unknown.json", "--policy-config {tmp}/unknown.json: no policy named 'thanos-no-such-rule'"),
    ("--policy-config", "level.json", "--policy-config {tmp}/level.json: thanos-ha-pdb: enforcementLevel must be one of"),
    ("--policy-config", "value.json", "--policy-config {tmp}/value.json: thanos-ha-pdb.unknownValues: must be one of "
                                      'finding, note, not "maybe"'),
    ("--json", "no/such/dir/plan.json", "--json {tmp}/no/such/dir/plan.json: directory {tmp}/no/such/dir does not exist"),
    ("--manifests", "a-file.txt", "--manifests {tmp}/a-file.txt: is a file, not a directory"),
    ("--manifests", "project", "--manifests {tmp}/project: directory is not empty and was not written by preflight"),
])
def test_bad_options_are_one_line_errors_with_exit_2_and_nothing_written(tmp_path, option, value, message):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "unknown.json").write_text('{"thanos-no-such-rule": {"enforcementLevel": "disabled"}}')
    (tmp_path / "level.json").write_text('{"thanos-ha-pdb": {"enforcementLevel": "strict"}}')
    (tmp_path / "value.json").write_text('{"thanos-ha-pdb": {"unknownValues": "maybe"}}')
    (tmp_path / "a-file.txt").write_text("mine")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "__main__.py").write_text("my program")
    before = sorted(p for p in tmp_path.rglob("*"))
    extra = [] if option == "--json" else ["--json", str(tmp_path / "plan.json")]
    proc = run_preflight("dev", option, str(tmp_path / value), *extra)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("preflight: " + message.format(tmp=tmp_path)), proc.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "project" / "__main__.py").read_text() == "my program"


def test_manifests_directory_keeps_the_users_files_and_drops_only_stale_ones(tmp_path):
    out = tmp_path / "manifests"
    assert run_preflight("dev", "--manifests", str(out), "--no-policy").returncode == 0
    web = out / "chicago" / "thanos-chicago" / "deployment-thanos-bucket-web.yaml"
    assert web.is_file()
    (out / "chicago" / "thanos-chicago" / "notes.md").write_text("my notes")
    (out / "README").write_text("mine")
    smaller = tmp_path / "Pulumi.dev.yaml"
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    raw["config"]["thanos:config"]["thanos"]["bucket-web"] = {"enabled": False}
    smaller.write_text(yaml.safe_dump(raw))
    proc = run_preflight("--config-file", str(smaller), "--manifests", str(out), "--no-policy")
    assert proc.returncode == 0, proc.stderr
    assert not web.exists()
    assert (out / "chicago" / "thanos-chicago" / "notes.md").read_text() == "my notes"
    assert (out / "README").read_text() == "mine"
    written = (out / ".preflight-manifests").read_text().splitlines()[1:]
    inner = [w for w in written if "/files/" in w]
    assert len(written) - len(inner) == int(proc.stdout.split("wrote ")[1].split()[0])
    assert len(inner) == int(proc.stdout.split("wrote ")[1].split(" and ")[1].split()[0]) > 0
    assert sorted(written) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                                     if p.is_file() and p.name not in (".preflight-manifests", "notes.md", "README"))


def test_manifests_never_overwrite_a_file_preflight_did_not_write(tmp_path):
    out = tmp_path / "manifests"
    assert run_preflight("dev", "--manifests", str(out), "--no-policy").returncode == 0
    marker = out / ".preflight-manifests"
    target = out / "chicago" / "thanos-chicago" / "deployment-thanos-query-pods.yaml"
    marker.write_text("\n".join(line for line in marker.read_text().splitlines() if "query-pods" not in line) + "\n")
    target.write_text("my own edit")
    proc = run_preflight("dev", "--manifests", str(out), "--no-policy", "--json", str(tmp_path / "plan.json"))
    assert proc.returncode == 2
    assert "deployment-thanos-query-pods.yaml exists and was not written by preflight" in proc.stderr
    assert target.read_text() == "my own edit" and not (tmp_path / "plan.json").exists()


def test_no_policy_says_the_policies_were_skipped():
    proc = run_preflight("dev", "--no-policy")
    assert proc.returncode == 0
    assert "Policies: skipped (--no-policy)" in proc.stdout.splitlines()
    assert "mandatory" not in proc.stdout


def test_yaml_errors_name_the_file(tmp_path):
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config:\n  thanos:config:\n    regions: [{name: a\n")
    proc = run_preflight("--config-file", str(broken))
    assert proc.returncode == 2
    assert str(broken) in proc.stderr and "<unicode string>" not in proc.stderr


def test_config_errors_never_name_python_classes(tmp_path):
    raw = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    raw["config"]["thanos:config"]["thanos"].update(store=5, compactor={"retention": [1]})
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = run_preflight("--config-file", str(path))
    assert proc.returncode == 2
    assert "  - thanos.store: must be a mapping of keys (key: value) (got 5)" in proc.stderr
    assert "  - thanos.compactor.retention: must be a mapping of keys (key: value), not a list" in proc.stderr
    assert "Spec" not in proc.stderr and "instance of" not in proc.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_a_first_preview_of_each_shipped_stack_judges_every_mandatory_rule(stack, tmp_path):
    """As the first `pulumi preview` of a new stack sees it (every computed output unknown): no rule is skipped as
    "can't run during preview" and none reports what it could not judge; the program builds what the storage and
    identity rules read (bucket and role ARNs, policy documents, bindings) from values known before anything exists."""
    proc = run_preflight(stack, "--first-preview", "--json", str(tmp_path / "plan.json"))
    violations = json.loads((tmp_path / "plan.json").read_text())["violations"]
    unjudged = [v for v in violations if "during preview" in v["message"] or "could not judge" in v["message"]]
    assert unjudged == [], unjudged
    assert proc.returncode == 0 and not [v for v in violations if v["level"] == "mandatory"], proc.stdout


def test_preflight_prints_what_each_cluster_must_already_run(planned):
    """Read from the planned objects: prod's leaf Services need the AWS Load Balancer Controller in both clusters,
    each cloud's identity its webhook, the NetworkPolicies an enforcing CNI, the Gateway its implementation."""
    def needed(stack):
        return {(p["cluster"], p["what"].split(" (")[0]) for p in planned[stack].plan["prerequisites"]}

    for cluster in ("chicago", "seattle"):
        assert {(cluster, "AWS Load Balancer Controller"), (cluster, "a CNI that enforces NetworkPolicy"),
                (cluster, "a Gateway API implementation serving GatewayClass eg"), (cluster, "metrics-server"),
                (cluster, "IRSA: the cluster's IAM OIDC provider")} <= needed("prod")
    assert "AWS Load Balancer Controller" in planned["prod"].stdout
    assert "Prerequisites (not installed by this program" in planned["prod"].stdout
    assert {("amsterdam", "prometheus-operator"), ("amsterdam", "AKS workload identity")} <= needed("azure")
    assert not [p for p in planned["dev"].plan["prerequisites"] + planned["gcp"].plan["prerequisites"]
                if "AWS" in p["what"]]
    assert ("chicago", "an ingress controller for class nginx") in needed("dev")


def test_a_prerequisite_follows_the_planned_object_that_needs_it(planned):
    from preflight.engine import Plan, Resource
    from preflight.prerequisites import prerequisites

    def plan_of(records):
        return Plan("thanos", "prod", [Resource(r["urn"], r["type"], r["name"], r["custom"], r["parent"], r["provider"],
                                                False, False, [], copy.deepcopy(r["inputs"]), {}) for r in records])

    records = planned["prod"].plan["resources"]
    assert any(p.what.startswith("AWS Load Balancer Controller") for p in prerequisites(plan_of(records)))
    unannotated = [copy.deepcopy(r) for r in records]  # Services without the controller's annotation
    for r in unannotated:
        if r["type"] == "kubernetes:core/v1:Service":
            (r["inputs"].get("metadata") or {}).get("annotations", {}).pop(
                "service.beta.kubernetes.io/aws-load-balancer-type", None)
    assert not any(p.what.startswith("AWS Load Balancer Controller") for p in prerequisites(plan_of(unannotated)))


# --- the text for people: what runs, endpoints, secrets to set, findings grouped, the next command ---

def test_the_text_says_what_runs_where_what_to_set_and_what_to_run_next(planned):
    out = planned["prod"].stdout
    lines = out.splitlines()
    # What runs, per cluster, with replicas and requests; the per-type counts only with --verbose.
    chicago = next(line for line in lines if line.startswith("Cluster chicago"))
    assert chicago.startswith("Cluster chicago (stack acme/eks/chicago): 27 workloads, 47 pods, requesting ")
    assert chicago.endswith(" GiB")
    assert any(line.startswith("  thanos-global (") and "query x2-6 (HPA)" in line and "ruler x2" in line
               for line in lines)
    assert "tls:index/certRequest:CertRequest" not in out and "--verbose lists them by type" in out
    # Endpoints and outputs (which were only in --json).
    assert "  global view: https://thanos.obs.acme.internal (sign in through the identity provider)" in lines
    assert any(line.startswith("  chicago (us-east-1): remote write https://") for line in lines)
    assert "Stack outputs (`pulumi stack output NAME -s prod`): caCertificate, global, regions" in lines
    # The secrets preflight filled with placeholders, each with its command.
    assert "Secrets to set before `pulumi up` (4; preflight planned with placeholders for them):" in lines
    for key in ("oauth2ClientSecret", "pagerdutyUsEastKey", "pagerdutyUsWestKey", "slackWebhookUrl"):
        assert any(line.startswith(f"  pulumi config set --secret thanos:{key} '<") and line.endswith("' -s prod")
                   for line in lines), key
    assert "Policy config: none (the stack's thanos:config environment is prod and there is no policies/prod.json)" \
        in lines
    assert lines[-1] == ("Next: set the secrets above, then pulumi preview -s prod --policy-pack policies; if it shows "
                         "what you expect, pulumi up -s prod --policy-pack policies")
    dev = planned["dev"].stdout.splitlines()
    assert "Secrets to set before `pulumi up`: none" in dev
    assert any("(sign in with `pulumi stack output globalBasicAuth --show-secrets -s dev`)" in line for line in dev)
    assert dev[-1].startswith("Next: pulumi preview -s dev --policy-pack policies --policy-pack-config policies/dev.json")


def test_verbose_lists_resources_by_type(tmp_path):
    proc = run_preflight("dev", "--verbose", "--no-policy")
    assert proc.returncode == 0, proc.stderr
    assert "      12  tls:index/certRequest:CertRequest" in proc.stdout.splitlines()


def test_secrets_set_in_the_stack_file_are_not_asked_for(tmp_path):
    from preflight.report import secrets_to_set

    import config as stack_config

    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    settings = stack_config.load(raw["thanos:config"])
    assert [s.key for s in secrets_to_set(raw, settings)] == [
        "oauth2ClientSecret", "pagerdutyUsEastKey", "pagerdutyUsWestKey", "slackWebhookUrl"]
    raw["thanos:slackWebhookUrl"] = {"secure": "v1:abc"}
    raw["thanos:oauth2ClientSecret"] = {"secure": "v1:def"}
    needed = secrets_to_set(raw, settings)
    assert [s.key for s in needed] == ["pagerdutyUsEastKey", "pagerdutyUsWestKey"]
    assert needed[0].command("thanos", "prod") == (
        "pulumi config set --secret thanos:pagerdutyUsEastKey '<pagerduty routing key of receiver oncall-us-east>' "
        "-s prod")


def test_requests_count_replicas_the_hpa_minimum_and_the_larger_init_container():
    from preflight.engine import Plan, Resource
    from preflight.report import what_runs, workloads

    def resource(urn, typ, inputs, provider="k8s"):
        return Resource(urn, typ, urn, True, None, provider, False, False, [], inputs, {})

    def pod(cpu, memory, init_cpu="0"):
        return {"template": {"spec": {
            "containers": [{"resources": {"requests": {"cpu": cpu, "memory": memory}}},
                           {"resources": {"requests": {"cpu": "50m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": init_cpu}}}]}}}

    plan = Plan("thanos", "t", [
        resource("k8s", "pulumi:providers:kubernetes", {}, None),
        resource("store", "kubernetes:apps/v1:StatefulSet",
                 {"metadata": {"name": "thanos-store", "namespace": "mon"}, "spec": {"replicas": 3, **pod("1", "1Gi")}}),
        resource("query", "kubernetes:apps/v1:Deployment",
                 {"metadata": {"name": "thanos-query-pods", "namespace": "mon"}, "spec": pod("100m", "256Mi", "2")}),
        resource("hpa", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
                 {"metadata": {"namespace": "mon"},
                  "spec": {"scaleTargetRef": {"name": "thanos-query-pods"}, "minReplicas": 2, "maxReplicas": 5}}),
    ])
    plan.resources[0].name = "k8s-east"
    lines = what_runs(workloads(plan))
    # store: 3 x (1 + 0.05) CPU, 3 GiB; query: 2 (the HPA's minimum) x 2 CPU (its init container), 512 MiB.
    assert lines == ["Cluster east: 2 workloads, 5 pods, requesting 7.15 CPU and 3.50 GiB",
                     "  mon (7.15 CPU, 3.50 GiB): query x2-5 (HPA), store x3"]


def test_findings_are_grouped_by_policy_with_a_count_and_the_first_resources():
    from preflight.policy import Violation
    from preflight.report import findings

    urn = "urn:pulumi:dev::thanos::kubernetes:apps/v1:StatefulSet::"
    violations = [Violation("thanos-ha-min-replicas", "mandatory", urn + f"c{i}", f"store has 1 replica(s) {i % 2}")
                  for i in range(5)] + [Violation("thanos-ha-pdb", "advisory", urn + "x", "no budget")]
    lines = findings(violations, verbose=False)
    assert lines == [
        "Policies: 5 mandatory, 1 advisory",
        "  [mandatory] thanos-ha-min-replicas: 5 findings (2 messages) on c0, c1, c2 and 2 more; the first: store has "
        "1 replica(s) 0",
        "  [advisory] thanos-ha-pdb: x: no budget",
        "  (--verbose lists every finding)"]
    assert len(findings(violations, verbose=True)) == 7


def test_a_copy_of_dev_under_another_name_uses_dev_policies_and_says_why(tmp_path):
    """The policy config follows the stack's `environment`, not its file name."""
    copy_of_dev = tmp_path / "Pulumi.mydev.yaml"
    copy_of_dev.write_text((ROOT / "Pulumi.dev.yaml").read_text())
    proc = run_preflight("--config-file", str(copy_of_dev))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "Policy config: policies/dev.json (the stack's thanos:config environment is dev)" in lines
    assert "Policies: 0 mandatory, 0 advisory" in lines
    assert lines[-1].startswith("Next: pulumi preview -s mydev --policy-pack policies --policy-pack-config "
                                "policies/dev.json")
    staging = tmp_path / "Pulumi.dev-like.yaml"
    raw = yaml.safe_load(copy_of_dev.read_text())
    raw["config"]["thanos:config"]["environment"] = "staging"
    staging.write_text(yaml.safe_dump(raw))
    proc = run_preflight("--config-file", str(staging))
    assert proc.returncode == 1
    assert ("Policy config: none (the stack's thanos:config environment is staging and there is no "
            "policies/staging.json)") in proc.stdout.splitlines()


def test_config_errors_come_in_one_pass_with_a_suggestion_and_the_line_of_the_stack_file(tmp_path):
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    text = text.replace("destination: us-west", "destination: nowhere", 1)
    text = text.replace("retention: {raw: 7d,", "retention: {raw: 7x,", 1)
    text = text.replace("    protect-data: false\n", "    protect-data: false\n    globalview: {}\n", 1)
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(text)
    lines = text.splitlines()

    def line_of(snippet):
        return next(i + 1 for i, line in enumerate(lines) if snippet in line)

    proc = run_preflight("--config-file", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "invalid stack configuration in Pulumi.bad.yaml thanos:config: 3 problem(s)",
        "  - thanos.compactor.retention.raw: '7x' is not a duration: use a number and a unit (ms, s, m, h, d, w, y), "
        f"e.g. 30d or 1h30m (Pulumi.bad.yaml:{line_of('raw: 7x')})",
        f"  - globalview: unknown key: did you mean global-view? (Pulumi.bad.yaml:{line_of('globalview')})",
        "  - regions[0].storage.replication.destination: region 'nowhere' is not defined in regions (us-central, "
        f"us-west) (Pulumi.bad.yaml:{line_of('destination: nowhere')})"]


def test_a_missing_key_points_at_the_line_of_the_key_above_it(tmp_path):
    from preflight.cli import key_lines

    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  thanos:config:\n    environment: dev\n    regions:\n      - name: a\n"
                     "        storage: {provider: aws}\n")
    line = key_lines(stack, "thanos:config")
    assert line("regions[0].storage.bucket") == 6 and line("regions[0].name") == 5
    assert line("(top level)") == 3 and line("thanos.query") == 3


def test_the_workflows_give_the_pack_the_policy_config_of_each_stacks_environment():
    """`pulumi up`/`preview` in CI use the file the preflight chose (policies/<environment>.json, or none)."""
    import re

    from preflight.policy import environment_policy_config

    from tests.support.stacks import stack_config

    checked = 0
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        text = workflow.read_text().replace("\\\n", " ")
        matrix = re.search(r"stack: \[([^\]]+)\]", text)
        for line in text.splitlines():
            if "--policy-pack policies" not in line or not re.search(r"pulumi (up|preview)", line):
                continue
            named = re.search(r"--stack (.+?)(?: --|$)", line).group(1).strip('"').rsplit("/", 1)[-1]
            stacks = [s.strip() for s in matrix.group(1).split(",")] if "matrix.stack" in named else [named]
            given = re.search(r"--policy-pack-config (\S+)", line)
            for stack in stacks:
                path, _ = environment_policy_config(stack_config(stack)["environment"])
                assert (given.group(1) if given else None) == (str(path.relative_to(ROOT)) if path else None), line
                checked += 1
    assert checked >= 5


def test_the_stack_outputs_are_stable_names_and_the_region_keys_stay_one_release(planned):
    """`regions` holds every region's outputs by name (a contract for StackReferences, whatever regions a stack has);
    the top-level region keys of earlier releases stay beside it, with the same values, until the next release."""
    from components.root import STABLE_OUTPUTS

    outputs = planned["prod"].plan["outputs"]
    regions = outputs["regions"]
    assert sorted(regions) == ["us-east-1", "us-west-2"]
    assert all(outputs[name] == regions[name] for name in regions)
    assert set(outputs) - set(regions) <= set(STABLE_OUTPUTS)
