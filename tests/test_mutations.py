"""The mutation list stays usable: every mutation applies to today's code (its text found exactly once), names tests
that exist, and the list covers every policy domain and what the test audit found. `./run mutate` runs it."""

from ci.mutate import MUTATIONS, problems_in

from tests.support.stacks import ROOT


def test_every_mutation_applies_to_the_current_code():
    assert [p for m in MUTATIONS for p in problems_in(m)] == []
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    for mutation in MUTATIONS:
        assert mutation.tests and all((ROOT / t).is_file() for t in mutation.tests), mutation.id
        assert all(old != new for _, old, new in mutation.edits), mutation.id


def test_the_list_covers_every_policy_module_and_the_audit():
    mutated = {path for m in MUTATIONS for path, _, _ in m.edits}
    modules = {f"policies/thanos_policies/{p.name}" for p in (ROOT / "policies" / "thanos_policies").glob("*.py")
               if p.name not in ("__init__.py", "workloads.py")}
    assert modules <= mutated
    ids = {m.id for m in MUTATIONS}
    assert {"silence-s3-encryption", "tls-deny-every-request", "kms-key-ignored", "deprecated-flag-unchecked",
            "hashring-empty", "violation-without-level", "policy-not-served", "misspelled-manifest-field",
            "incident-message-changed"} <= ids
    assert len(MUTATIONS) >= 20
