"""Preview coverage: an objstore config whose value is computed at apply (generated credentials) hides its bucket from
the bucket rules during a preview; that is a finding, so no bucket rule is skipped silently."""

from ._register import stack_policy
from ._workloads import Stack, workload_containers


def validate_preview_coverage(args, report):
    """Refuses an objstore config computed at apply: the bucket rules cannot judge it before `pulumi up`."""
    stack = Stack(args.resources)
    for r, name, c, command, flags in workload_containers(args.resources):
        for prefix in ("objstore", "objstore-to"):
            where = stack.objstore_unknown(r, c, flags, prefix)
            if where:
                report(f"{name}: the {prefix} config of thanos {command} ({where}) is computed at apply: "
                       f"its bucket is judged at `pulumi up` ({', '.join(BUCKET_RULES)}).", r.urn)


BUCKET_RULES = ("thanos-compactor-one-per-bucket", "thanos-producers-external-labels", "thanos-wiring-references")
"""The rules that read a workload's bucket from its objstore config."""


POLICIES = [
    stack_policy("thanos-preview-coverage", "A preview sees every objstore config: one computed at apply (generated "
                 "credentials) hides its bucket from the bucket rules until `pulumi up`.", validate_preview_coverage),
]
