"""Preview rules (policies/thanos_policies/preview.py): an objstore config computed at apply is a finding."""

import copy

from ..support.policies import UNKNOWN_STRING, aws_secret, check, check_stack, workload


def test_a_preview_that_cannot_see_an_objstore_config_says_so_and_no_bucket_rule_is_skipped(prod):
    compactor = workload(prod, "thanos-compactor")
    known = [aws_secret("acme-thanos-prod-us-east-1", compactor["provider"]), compactor]
    assert check_stack("thanos-preview-coverage", known) == []
    generated = copy.deepcopy(known)
    generated[0]["inputs"]["stringData"]["objstore.yml"] = UNKNOWN_STRING  # a generated credential inside
    assert check_stack("thanos-preview-coverage", generated) == [
        "thanos-compactor: the objstore config of thanos compact (Secret thanos-objstore key objstore.yml) is "
        "computed at apply: its bucket is judged at `pulumi up` (thanos-compactor-one-per-bucket, "
        "thanos-producers-external-labels, thanos-wiring-references)."]
    # The bucket rules run (pulumi_policy would skip them as "can't run during preview") and judge the rest.
    for rule in ("thanos-compactor-one-per-bucket", "thanos-producers-external-labels", "thanos-wiring-references"):
        assert check_stack(rule, generated) == []
    assert check("thanos-identity-objstore-secret", "kubernetes:core/v1:Secret", generated[0]["inputs"]) == []
