"""The preflight contract: exit codes, JSON shape, manifest layout, determinism, mock options recorded."""

import json

import pytest

from .conftest import ROOT, STACKS, run_preflight, run_probe

RESOURCE_KEYS = {"urn", "type", "name", "custom", "parent", "provider", "protect", "retainOnDelete", "dependsOn",
                 "inputs", "secretInputs"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_plans_with_exit_0(planned, stack):
    result = planned[stack]
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"Plan of thanos/{stack}:" in result.stdout
    assert "Policies:" in result.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_json_follows_the_contract(planned, stack):
    plan = planned[stack].plan
    assert set(plan) == {"project", "stack", "resources", "outputs", "violations"}
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
    assert {r["name"] for r in secrets} >= {"kind-shared-secret-thanos-objstore"}
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
    k8s_resources = [r for r in planned["prod"].plan["resources"]
                     if r["custom"] and r["type"].startswith("kubernetes:")]
    assert len(list(manifests.rglob("*.yaml"))) == len(k8s_resources)


def test_same_stack_gives_the_same_json_byte_for_byte(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for path in (first, second):
        assert run_preflight("prod", "--json", str(path)).returncode == 0
    assert first.read_bytes() == second.read_bytes()


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


SDK_OF_STACK = {"dev": {"pulumi_kubernetes", "pulumi_random"}, "prod": {"pulumi_kubernetes", "pulumi_aws"},
               "gcp": {"pulumi_kubernetes", "pulumi_gcp"}, "azure": {"pulumi_kubernetes", "pulumi_azure_native"}}


@pytest.mark.parametrize("stack", sorted(SDK_OF_STACK))
def test_a_stack_imports_only_the_sdks_it_uses(stack, tmp_path):
    proc = run_probe(tmp_path, f"plan_stack({stack!r})\n"
                               "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules if m.startswith('pulumi_')})))\n")
    assert set(json.loads(proc.stdout.strip().splitlines()[-1])) == SDK_OF_STACK[stack], proc.stderr


def test_the_program_itself_refuses_bad_config_with_a_clean_error(tmp_path):
    proc = run_probe(tmp_path, (
        "bad = {'thanos:config': {'environment': 'dev', 'regions': [], 'bogus': 1}}\n"
        "try:\n"
        f"    engine.run_program(Path({str(ROOT / '__main__.py')!r}), 'thanos', 'dev', bad, {{}})\n"
        "except pulumi.RunError as err:\n"
        "    print('RUNERROR', err)\n"))
    assert "RUNERROR invalid stack configuration" in proc.stdout, proc.stdout + proc.stderr
    assert "regions: List should have at least 1 item" in proc.stdout and "bogus: unknown key" in proc.stdout


def test_manifests_are_deterministic(tmp_path):
    for name in ("a", "b"):
        assert run_preflight("prod", "--manifests", str(tmp_path / name), "--no-policy").returncode == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.yaml"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.yaml"))
    assert files_a == files_b
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)


@pytest.mark.parametrize("stack", STACKS)
def test_the_program_also_plans_in_preview_mode_with_unknown_outputs(planned, stack, tmp_path):
    """`pulumi preview` runs the program with every provider-computed output unknown."""
    proc = run_probe(tmp_path, f"print('RESOURCES', len(plan_stack({stack!r}, preview=True).resources))\n")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split("RESOURCES")[1]) == len(planned[stack].plan["resources"])
