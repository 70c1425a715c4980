"""The policy pack as a whole: what it serves, its layout (one module per policy-name prefix), its reading helpers
and how every rule meets values computed at apply. Each domain's rules are tested in tests/policies/test_<prefix>.py
(a passing case from the real prod plan and a failing case: one change, one exact message)."""

import re
import ast
import copy
import importlib
import json

import pytest

from tests.support.stacks import ROOT, STACKS
from .support.policies import POLICIES, STS, UNKNOWN_STRING, check, check_stack, container, workload


pytestmark = pytest.mark.usefixtures("record_policy_lines")
PACK = ROOT / "policies" / "thanos_policies"


@pytest.fixture(scope="module")
def prod(planned):
    return planned["prod"].plan["resources"]


def test_pack_metadata():
    assert len(POLICIES) >= 20
    for policy in POLICIES.values():
        assert policy.name.startswith("thanos-") and policy.description.endswith(".")
        assert policy.enforcement_level is not None


def test_pack_config_files_name_real_policies():
    for path in (ROOT / "policies").glob("*.json"):
        assert set(json.loads(path.read_text())) <= set(POLICIES) | {"all"}, path


def test_policy_flag_table_matches_the_reference():
    reference = json.loads((ROOT / "reference" / "thanos-v0.42.4-flags.json").read_text())["commands"]
    derived = json.loads((ROOT / "policies" / "thanos_policies" / "thanos_flags.json").read_text())["commands"]
    from thanos_policies._workloads import COMMANDS

    assert sorted(derived) == sorted(COMMANDS), "the pack's table has exactly the commands the pack recognises"
    for command, table in derived.items():
        flags = {**reference[command].get("flags", {}), **reference[command].get("hidden_flags", {})}
        assert table["flags"] == sorted(flags)
        assert table["deprecated"] == sorted(k for k, v in flags.items() if v.get("deprecated"))
        assert table["negatable"] == sorted(k for k, v in flags.items() if v.get("negatable"))
        assert table["negatable"], command


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_have_no_findings(planned, stack):
    assert planned[stack].plan["violations"] == []


def test_unknown_values_are_a_finding_or_with_note_the_engines_preview_signal(prod):
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

    store = workload(prod, "thanos-store")["inputs"]
    container(store, "thanos-store")["image"] = UNKNOWN_STRING_VALUE
    [finding] = check("thanos-hardening-pods", STS, store)
    assert finding.startswith("thanos-hardening-pods could not judge this resource during this preview: its value at "
                              ".spec.template.spec.containers.0.image is computed at apply")
    with pytest.raises(UnknownValueError):
        check("thanos-hardening-pods", STS, store, {"unknownValues": "note"})


def test_a_stack_rule_that_meets_an_unknown_outside_the_resources_props_still_reports_it():
    """A value read from elsewhere (a provider's or a parent's props) names no resource: the finding is the stack's."""
    from pulumi_policy import EnforcementLevel, StackValidationPolicy, StackValidationArgs
    from pulumi_policy.proxy import UnknownValueError

    from thanos_policies._unknowns import judge_unknowns

    def reads_a_provider(args, report):
        raise UnknownValueError(UNKNOWN_STRING, ["kubeconfig"])

    policy = judge_unknowns(StackValidationPolicy(name="t", description="d", validate=reads_a_provider,
                                                  enforcement_level=EnforcementLevel.MANDATORY))
    found = []
    policy.validate(StackValidationArgs([], {}), lambda message, urn=None: found.append((message, urn)))
    assert found == [("t could not judge the stack during this preview: its value at .kubeconfig is computed at "
                      "apply, so the rule (which stops at the first such value) would first run at `pulumi up`, after "
                      "the step. Build that value from what is known before the resource exists, or accept it for "
                      "this rule (unknownValues: note).", None)]


def test_a_stack_rule_names_each_resource_it_could_not_judge(prod):
    """A stack rule meeting a value computed at apply names the resources that hold it (another stack's bucket
    settings, say, that name the bucket by its id)."""
    buckets = [copy.deepcopy(r) for r in prod if r["type"].startswith("aws:s3/")]
    assert check_stack("thanos-storage-bucket-safety", buckets) == []
    versioning = [r for r in buckets if r["type"] == "aws:s3/bucketVersioning:BucketVersioning"]
    for r in versioning:
        r["inputs"]["bucket"] = UNKNOWN_STRING
    found = check_stack("thanos-storage-bucket-safety", buckets)
    assert len(found) == len(versioning) == 4
    assert all(m.startswith("thanos-storage-bucket-safety could not judge aws:s3/bucketVersioning:BucketVersioning ")
               and "its value at .bucket is computed at apply" in m for m in found)
    # Past five, the rest are counted.
    found = check_stack("thanos-storage-bucket-safety", [*buckets, *copy.deepcopy(versioning)])
    assert len(found) == 6 and found[-1] == ("thanos-storage-bucket-safety could not judge 3 more resources during "
                                             "this preview (value at .bucket computed at apply).")


def test_every_policy_has_tests_in_its_domains_test_module():
    for name in POLICIES:
        tests = ROOT / "tests" / "policies" / f"test_{name.split('-')[1]}.py"
        assert tests.is_file() and f'"{name}"' in tests.read_text(), name


def test_every_policy_lives_in_the_module_named_for_its_prefix():
    """`thanos-<prefix>-<rule>` is registered in `<prefix>.py`, with its validator; every other module starts with `_`,
    registers nothing and is no prefix; a domain imports only those, and every validator says what it refuses."""
    domains = sorted(p.stem for p in PACK.glob("*.py") if not p.name.startswith("_"))
    served = []
    for domain in domains:
        module = importlib.import_module(f"thanos_policies.{domain}")
        assert module.POLICIES, f"{domain}.py registers no policy: a helper module's name starts with _"
        assert all(p.name.startswith(f"thanos-{domain}-") for p in module.POLICIES), domain
        served += [p.name for p in module.POLICIES]
        tree = ast.parse((PACK / f"{domain}.py").read_text())
        defined = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        registered = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                      and getattr(n.func, "id", None) in ("resource_policy", "stack_policy")]
        assert len(registered) == len(module.POLICIES), domain
        for call in registered:  # the validator of each registration is this module's own
            assert isinstance(call.args[2], ast.Name) and call.args[2].id in defined, ast.unparse(call)[:80]
        validators = [n for name, n in defined.items() if name.startswith("validate_")]
        assert validators and all(ast.get_docstring(n) for n in validators), domain
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1]
        assert all(m.startswith("_") for m in imported), f"{domain}.py imports another domain: {imported}"
    assert sorted(served) == sorted(POLICIES), "every served policy comes from exactly one domain module"
    helpers = [p.stem for p in PACK.glob("_*.py") if p.name != "__init__.py"]
    assert not {h.lstrip("_") for h in helpers} & {name.split("-")[1] for name in POLICIES}


def test_thanos_is_read_from_any_image_command_and_flag_form():
    from thanos_policies._workloads import image_version, thanos_containers

    env = [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "CONFIG", "valueFrom": {"secretKeyRef": {"name": "objstore", "key": "thanos.yaml"}}},
           {"name": "ZONE", "value": "eu-1a"}]
    pods = [
        {"image": "quay.io/thanos/thanos:v0.42.4", "args": ["rule", "--label", 'rule_replica="$(NAME)"', "--wait"]},
        {"image": "mirror.example.com/thanosio/thanos:v0.42.4", "command": ["/bin/thanos", "rule"],
         "args": ['--label=rule_replica="$(NAME)"', "--wait"]},
        {"image": "docker.io/bitnami/thanos:0.34.1-debian-12-r0", "args": ["rule", '--label=rule_replica="$(NAME)"',
                                                                             "--wait"]},
        {"image": "registry.local/observability/my-build:1.0", "command": ["thanos"],
         "args": ["rule", '--label=rule_replica="$(NAME)"', "--wait"]},
    ]
    for c in pods:
        props = {"spec": {"template": {"spec": {"containers": [{**c, "env": env}]}}}}
        [(_, command, flags)] = list(thanos_containers(props))
        assert (command, flags) == ("rule", ['--label=rule_replica="$(POD_NAME)"', "--wait"]), c["image"]
    store = {"image": "quay.io/thanos/thanos:v0.42.4", "env": env,
             "args": ["store", "--objstore.config", "$(CONFIG)", "--min-time", "-2w", "--label=zone=$(ZONE)"]}
    [(_, _, flags)] = list(thanos_containers({"spec": {"template": {"spec": {"containers": [store]}}}}))
    assert flags == ["--objstore.config=$(secret:objstore/thanos.yaml)", "--min-time=-2w", "--label=zone=eu-1a"]
    assert not list(thanos_containers({"spec": {"template": {"spec": {"containers": [
        {"image": "quay.io/prometheus/prometheus:v3.5.0", "args": ["--config.file=/etc/p.yml"]}]}}}}))
    assert [image_version(i) for i in ("quay.io/thanos/thanos:v0.42.4", "bitnami/thanos:0.34.1-debian-12-r0",
                                       "thanos/thanos@sha256:abc", "thanos/thanos:latest")] == [
        (0, 42, 4), (0, 34, 1), None, None]


def test_every_policy_the_docs_cite_exists():
    """A policy named in the docs (`the policy thanos-...`, a rule `thanos-...`, a policy table's row) is one the pack
    has: a renamed or imagined rule would send a reader looking for nothing."""
    cited = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        named = re.findall(r"(?<!Network)(?:[Pp]olic(?:y|ies)|rules?)\s+`(thanos-[a-z0-9-]+)`", text)
        named += re.findall(r"^\| `(thanos-[a-z0-9-]+)` \|", text, re.M)
        cited += [(doc.name, n) for n in named]
    assert len(cited) > 40
    assert [c for c in cited if c[1] not in POLICIES] == []
