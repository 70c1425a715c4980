"""The rule groups the ruler evaluates by default: alerts on the failure modes that otherwise go unnoticed."""

from typing import Any


def _alert(name: str, expr: str, duration: str, severity: str, summary: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": duration, "labels": {"severity": severity},
            "annotations": {"summary": summary,
                            "runbook_url": f"https://github.com/thanos-io/thanos/tree/main/mixin/runbook.md"
                                           f"#alert-name-{name.lower()}"}}


def default_rule_groups() -> list[dict[str, Any]]:
    """Thanos self-monitoring: a halted or silent compactor, more than one compactor, failing uploads, absent jobs."""
    return [
        {"name": "thanos-compact", "rules": [
            _alert("ThanosCompactHalted", 'thanos_compact_halted{job=~".*thanos-compactor.*"} == 1', "5m",
                   "critical", "Compactor {{ $labels.instance }} halted: no compaction, downsampling or retention."),
            _alert("ThanosCompactMultipleRunning",
                   'sum by (cluster, region) (up{job=~".*thanos-compactor.*"}) > 1', "5m", "critical",
                   "More than one compactor runs against one bucket: blocks will overlap."),
            _alert("ThanosCompactHasNotRun",
                   '(time() - max by (cluster) (max_over_time(thanos_objstore_bucket_last_successful_upload_time'
                   '{job=~".*thanos-compactor.*"}[24h]))) / 60 / 60 > 24', "0s", "warning",
                   "Compactor has not uploaded anything for 24 hours."),
        ]},
        {"name": "thanos-bucket-jobs", "rules": [
            _alert("ThanosBucketVerifyFailed",
                   'kube_job_status_failed{job_name=~"thanos-bucket-verify-.*"} > 0', "0s", "warning",
                   "The scheduled bucket verification {{ $labels.job_name }} failed: read its logs."),
        ]},
        {"name": "thanos-upload", "rules": [
            _alert("ThanosSidecarBucketOperationsFailed",
                   'sum by (job, instance) (rate(thanos_objstore_bucket_operation_failures_total'
                   '{job=~".*thanos-sidecar.*"}[5m])) > 0', "5m", "critical",
                   "Sidecar {{ $labels.instance }} fails bucket operations: blocks are not uploaded."),
            _alert("ThanosReceiveNoUpload",
                   '(up{job=~".*thanos-receive"} - 1) + on (job, instance) (sum by (job, instance) '
                   '(increase(thanos_shipper_uploads_total{job=~".*thanos-receive"}[3h])) == 0)', "3h", "critical",
                   "Receive {{ $labels.instance }} has not uploaded a block for 3 hours."),
        ]},
        {"name": "thanos-component-absent", "rules": [
            _alert(f"Thanos{title}IsDown", f'absent(up{{job=~".*thanos-{job}.*"}} == 1)', "5m", "critical",
                   f"Thanos {title} has disappeared from discovery.")
            for title, job in (("Query", "query"), ("Store", "store"), ("Sidecar", "sidecar"),
                               ("Compact", "compactor"), ("Rule", "ruler"))
        ]},
        {"name": "thanos-query.rules", "rules": [
            {"record": "job:thanos_query_http_requests:rate5m",
             "expr": 'sum by (job, code) (rate(http_requests_total{job=~".*thanos-query.*"}[5m]))'},
        ]},
    ]
