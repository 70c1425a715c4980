"""The configuration reference cannot drift: the table of docs/configuration.md and the JSON Schema are what the models generate, the
schema accepts every shipped stack and refuses what the models refuse, and each documented default is the real one."""

import json

import jsonschema
import pytest
import yaml

from config import reference

from tests.support.stacks import ROOT, STACKS


def test_reference_table_and_schema_are_generated_from_the_models():
    assert reference.main(["--check"]) == 0
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert reference.markdown_table() in page
    assert (ROOT / "config" / "stack.schema.json").read_text() == reference.schema_text()


def test_the_check_fails_when_the_reference_drifts(tmp_path, monkeypatch):
    stale = tmp_path / "configuration.md"
    stale.write_text((ROOT / "docs" / "configuration.md").read_text().replace("| `thanos.receive.ingestors` | integer | 4 |",
                                                             "| `thanos.receive.ingestors` | integer | 3 |"))
    monkeypatch.setattr(reference, "REFERENCE_DOC", stale)
    assert reference.main(["--check"]) == 1


def test_every_key_of_every_model_is_in_the_table():
    keys = [row[0] for row in reference.rows()]
    assert len(keys) == len(set(keys))
    for key in ("regions[].clusters[].zones", "thanos.zone-spread", "regions[].storage(gcp).turbo-replication",
                "thanos.compactor.retention.5m", "thanos.store.time-partitions[].max-time",
                "thanos.caches.query-results.memory-mb", "regions[].storage(azure).replication.destination"):
        assert key in keys


def test_documented_defaults_are_the_real_ones():
    """A docstring that says `default X` must say the default the model has (the reviews found three that lied)."""
    wrong = [(key, default, meaning) for key, kind, default, meaning in reference.rows()
             if default not in ("see below", "required", "none") and not kind.startswith("resources")
             and f"default {default}".lower() not in meaning.lower()]
    assert wrong == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_schema_accepts_every_shipped_stack_and_its_modeline_points_at_it(stack):
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=./config/stack.schema.json\n")
    jsonschema.validate(yaml.safe_load(text), json.loads((ROOT / "config" / "stack.schema.json").read_text()))


def test_the_schema_refuses_unknown_keys_and_bad_values():
    schema = json.loads((ROOT / "config" / "stack.schema.json").read_text())
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["thanos:config"]["thanos"]["compactor"]["retention"]["raw"] = "thirty days"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(document, schema)
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["thanos:config"]["thanos"]["querry"] = {}
    with pytest.raises(jsonschema.ValidationError, match="Additional properties are not allowed"):
        jsonschema.validate(document, schema)


def test_the_policy_docs_list_every_policy_with_its_description():
    from preflight.policy import load_policies

    readme = (ROOT / "docs" / "policies.md").read_text()
    for policy in load_policies():
        kind = "stack" if type(policy).__name__.startswith("Stack") else "resource"
        assert f"| `{policy.name}` | {kind} | {policy.description} |" in readme
