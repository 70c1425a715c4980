"""The mutation list stays usable: every mutation names one definition and applies to today's code, names test groups
that exist, the rule-id set covers every policy the pack serves, and a mutation follows its function when the function
moves to another module or is reformatted. `./run mutate` runs it."""

import subprocess
import sys
import textwrap

import pytest

from ci.mutate import (CURATED, PACK, ROOT, Mutation, MutationError, TestGroup, all_mutations, drop, expr,
                       mutated_files, one, problems_in, returns, rule_mutations, served_policies, silence, text, unserve)


def test_every_mutation_applies_to_the_current_code():
    mutations = all_mutations()
    assert [p for m in mutations for p in problems_in(m)] == []
    assert len({m.id for m in mutations}) == len(mutations)
    assert all(m.tests for m in mutations)


def test_every_served_policy_has_a_rule_mutation_and_the_audit_stays_listed():
    assert sorted(m.edits[0].where for m in rule_mutations()) == sorted(served_policies())
    ids = {m.id for m in CURATED}
    assert {"silence-s3-encryption", "tls-deny-every-request", "kms-key-ignored", "deprecated-flag-unchecked",
            "hashring-empty", "violation-without-level", "policy-not-served", "misspelled-manifest-field",
            "incident-message-changed"} <= ids
    assert len(CURATED) >= 70


GROUP = TestGroup("GROUP", ("tests/test_x.py",))


def package(root, files: dict[str, str]) -> None:
    for name, source in files.items():
        (root / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / name).write_text(textwrap.dedent(source))


def apply(mutation: Mutation, root) -> dict[str, str]:
    return mutated_files(mutation, root, packages=("pkg",))


def test_a_mutation_follows_its_function_to_another_module_and_through_reformatting(tmp_path):
    mutation = Mutation("limit-off", "the limit is not enforced",
                        (expr("check_limit", "used > limit", "used > limit * 2"),
                         text("check_limit", 'report("over the limit")', 'pass'),
                         drop("LEVELS", '"low"'), returns("Checker.enabled", "False")), (GROUP,))
    package(tmp_path, {"__init__.py": "", "rules.py": '''
        LEVELS = ["low", "high"]

        def check_limit(used, limit, report):
            """Reports use over the limit."""
            if used > limit:
                report("over the limit")

        class Checker:
            def enabled(self):
                """On."""
                return True
        '''})
    assert set(apply(mutation, tmp_path)) == {"pkg/rules.py"}
    # Split into modules of a subpackage, reformatted.
    (tmp_path / "pkg" / "rules.py").unlink()
    package(tmp_path, {"limits/__init__.py": "", "limits/usage.py": '''
        def check_limit(
            used,
            limit,
            report,
        ):
            if (
                used
                > limit
            ):
                report(
                    "over the limit"
                )
        ''', "levels.py": 'LEVELS = [\n    "low",\n    "high",\n]\n', "checker.py": '''
        class Checker:
            def enabled(self):
                return True
        '''})
    texts = apply(mutation, tmp_path)
    assert set(texts) == {"pkg/limits/usage.py", "pkg/levels.py", "pkg/checker.py"}
    assert "used > limit * 2" in texts["pkg/limits/usage.py"] and "report(" not in texts["pkg/limits/usage.py"]
    assert '"low"' not in texts["pkg/levels.py"] and '"high"' in texts["pkg/levels.py"]
    assert "return False" in texts["pkg/checker.py"]


def test_a_missing_or_ambiguous_function_is_an_error_naming_the_mutation(tmp_path):
    package(tmp_path, {"__init__.py": "", "a.py": "def f(x):\n    return x > 1\n", "b.py": "def f(x):\n    return x\n"})
    ambiguous = one("f-off", "f", expr("f", "x > 1", "x >= 1"), GROUP)
    with pytest.raises(MutationError, match=r"f-off: f names 2 definitions.*pkg\.a:f.*pkg\.b:f"):
        apply(ambiguous, tmp_path)
    assert set(apply(one("f-off", "f", expr("a:f", "x > 1", "x >= 1"), GROUP), tmp_path)) == {"pkg/a.py"}
    with pytest.raises(MutationError, match="g-off: g names 0 definitions"):
        apply(one("g-off", "g", expr("g", "x > 1", "x >= 1"), GROUP), tmp_path)
    with pytest.raises(MutationError, match="f-off: a:f: 'x < 1' found 0 times"):
        apply(one("f-off", "f", expr("a:f", "x < 1", "x >= 1"), GROUP), tmp_path)


def test_a_test_group_resolves_to_the_files_that_exist(tmp_path):
    group = TestGroup("POLICY", ("tests/policies/test_*.py", "tests/test_policies.py"))
    (tmp_path / "tests" / "policies").mkdir(parents=True)
    with pytest.raises(MutationError, match="test group POLICY matches no file"):
        group.files(tmp_path)
    (tmp_path / "tests" / "test_policies.py").write_text("")
    assert group.files(tmp_path) == ["tests/test_policies.py"]
    (tmp_path / "tests" / "test_policies.py").unlink()
    for name in ("test_ha.py", "test_storage.py"):
        (tmp_path / "tests" / "policies" / name).write_text("")
    assert group.files(tmp_path) == ["tests/policies/test_ha.py", "tests/policies/test_storage.py"]


def test_a_silenced_rule_never_reports_wherever_it_is_defined(tmp_path):
    """The appended hook finds the policy by name when the pack is imported (also in preflight's subprocesses)."""
    name = served_policies()[0]
    mutation = Mutation("pack", "pack", (silence(name), unserve("thanos-storage-")), (GROUP,))
    init = mutated_files(mutation)[f"{PACK}/__init__.py"]
    pack = tmp_path / "policies" / "thanos_policies"
    pack.mkdir(parents=True)
    for file in (ROOT / PACK).iterdir():
        if file.is_file():
            (pack / file.name).write_bytes(file.read_bytes())
    (pack / "__init__.py").write_text(init)
    check = f"""
import sys
sys.path.insert(0, {str(tmp_path / "policies")!r})
from thanos_policies import POLICIES
silenced = [p for p in POLICIES if p.name == {name!r}]
assert len(silenced) == 1 and silenced[0].validate(None, None) is None, silenced
assert silenced[0].validate.__name__ == "_mutation_never_reports"
assert POLICIES and not [p for p in POLICIES if p.name.startswith("thanos-storage-")]
"""
    subprocess.run([sys.executable, "-c", check], check=True, cwd=tmp_path)
