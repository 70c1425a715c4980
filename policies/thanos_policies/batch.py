"""Batch: a Job or CronJob that runs Thanos exits, so its run completes and the next ones never pile up behind it."""

from ._register import resource_policy
from ._workloads import switch_on, thanos_containers


BATCH_TYPES = ("kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")


def validate_batch_finishes(args, report):
    """A Job's pod must exit: `tools bucket replicate` and `compact` run forever unless told to stop (--single-run,
    no --wait), so the Job never completes and a CronJob piles up runs behind it (or, with concurrencyPolicy Forbid,
    never runs again)."""
    if args.resource_type not in BATCH_TYPES:
        return
    kind = args.resource_type.rsplit(":", 1)[-1]
    for c, command, flags in thanos_containers(args.props):
        if command == "tools bucket replicate" and not switch_on(flags, "single-run"):
            report(f"{kind} container {c.get('name')} runs thanos tools bucket replicate without --single-run: it "
                   "replicates forever, so the run never completes and the next ones pile up behind it.")
        if command == "compact" and switch_on(flags, "wait"):
            report(f"{kind} container {c.get('name')} runs thanos compact --wait: it never exits, so the run never "
                   "completes; run the compactor as a StatefulSet, or drop --wait.")


POLICIES = [
    resource_policy("thanos-batch-finishes", "A Job or CronJob running Thanos exits: bucket replicate with --single-run, "
                    "compact without --wait.", validate_batch_finishes),
]
