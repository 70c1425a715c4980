"""Batch rules (policies/thanos_policies/batch.py): a Job or CronJob running Thanos exits."""

from ..support.policies import check, thanos_workload


def test_a_cronjob_that_never_finishes_is_refused():
    args = ["tools", "bucket", "replicate", "--objstore.config=$(OBJSTORE)", "--objstore-to.config=$(TO)"]
    forever = thanos_workload("CronJob", "replicate", args)["inputs"]
    assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob", forever) == [
        "CronJob container replicate runs thanos tools bucket replicate without --single-run: it replicates forever, "
        "so the run never completes and the next ones pile up behind it."]
    for finishing in ("--single-run", "--single-run=true"):
        once = thanos_workload("CronJob", "replicate", [*args, finishing])["inputs"]
        assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob", once) == []
    assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob",
                 thanos_workload("CronJob", "replicate", [*args, "--single-run=false"])["inputs"])
    assert check("thanos-batch-finishes", "kubernetes:batch/v1:CronJob",
                 thanos_workload("CronJob", "compact", ["compact", "--wait=true"])["inputs"]) == [
        "CronJob container compact runs thanos compact --wait: it never exits, so the run never completes; run the "
        "compactor as a StatefulSet, or drop --wait."]
