"""Unit-test cases of the platform's alerts for `promtool test rules`: every alert has input series under which it
fires (with the labels it must carry) and series under which it stays quiet. Series values use promtool's
expanding notation (`0+10x40`: 0, 10, 20, ... 41 samples, one per interval)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    alert: str
    fire: dict[str, str]
    """Series under which the alert fires at `at`."""
    quiet: dict[str, str]
    """Series under which it does not."""
    labels: dict[str, str]
    """The labels the firing alert carries besides `alertname` and `severity`."""
    at: str = "30m"
    interval: str = "1m"
    extra: dict[str, str] = field(default_factory=dict)
    """Series both inputs share."""


def _down(alert: str, job: str) -> Case:
    return Case(alert, {'up{job="unrelated", instance="u"}': "1x20"}, {f'up{{job="{job}", instance="i"}}': "1x20"},
                {"job": job}, at="10m")


def _ratio(alert: str, errors: str, total: str, labels: dict[str, str], bad: str = "0+10x40",
           good: str = "0x40", total_values: str = "0+100x40") -> Case:
    return Case(alert, {errors: bad}, {errors: good}, labels, extra={total: total_values})


def _slow(alert: str, metric: str, selector: str, fast_le: str, slow_le: str, labels: dict[str, str]) -> Case:
    """Every request in the slow bucket (p99 between fast_le and slow_le) versus every one in the fast bucket."""
    def series(le: str) -> str:
        return f'{metric}_bucket{{{selector}, le="{le}"}}'
    shared = {series(slow_le): "0+10x40", series("+Inf"): "0+10x40", f"{metric}_count{{{selector}}}": "0+10x40"}
    return Case(alert, {series(fast_le): "0x40"}, {series(fast_le): "0+10x40"}, labels, extra=shared)


def _not_uploading(alert: str, job: str) -> Case:
    series = f'thanos_shipper_uploads_total{{job="{job}", instance="i"}}'
    return Case(alert, {series: "5x300"}, {series: "0+1x300"}, {"job": job, "instance": "i"}, at="4h",
                extra={f'process_start_time_seconds{{job="{job}", instance="i"}}': "0x300"})


def _grpc(alert: str, job: str, side: str) -> Case:
    return _ratio(alert, f'grpc_{side}_handled_total{{job="{job}", instance="i", grpc_code="Unavailable"}}',
                  f'grpc_{side}_started_total{{job="{job}", instance="i"}}', {"job": job})


def _http(alert: str, job: str, handler: str) -> Case:
    return _ratio(alert, f'http_requests_total{{job="{job}", instance="i", handler="{handler}", code="500"}}',
                  f'http_requests_total{{job="{job}", instance="i", handler="{handler}", code="200"}}', {"job": job},
                  total_values="0+90x40")


def _gauge(alert: str, metric: str, job: str, bad: str, good: str, extra_labels: str = "") -> Case:
    series = f'{metric}{{job="{job}", instance="i"{extra_labels}}}'
    return Case(alert, {series: bad}, {series: good}, {"job": job, "instance": "i"})


def _counter_rising(alert: str, metric: str, job: str, labels: dict[str, str] | None = None) -> Case:
    series = f'{metric}{{job="{job}", instance="i"}}'
    return Case(alert, {series: "0+1x40"}, {series: "0x40"}, labels or {"job": job, "instance": "i"})


PLANNED = 'job_namespace_service:replicas:planned{{job="{job}", namespace="thanos", service="{service}"}}'
"""What the plan's rules record for a Service: the pods it runs behind it."""
LAST_REPLICATION = ('kube_cronjob_status_last_successful_time'
                    '{job="kube-state-metrics", namespace="thanos", cronjob="thanos-bucket-replicate"}')

PROBED = {"job": "tls-probe", "namespace": "thanos", "module": "writers",
          "instance": "https://thanos-receive-router.thanos.svc.cluster.local:19291/api/v1/receive"}
"""The labels of one TLS probe's series (the planned job's relabelling)."""
EXPIRY = "probe_ssl_earliest_cert_expiry{%s}" % ", ".join(f'{k}="{v}"' for k, v in PROBED.items())
PROBE_SUCCESS = "probe_success{%s}" % ", ".join(f'{k}="{v}"' for k, v in PROBED.items())

CASES = [
    _gauge("ThanosCompactHalted", "thanos_compact_halted", "thanos-compactor", "1x40", "0x40"),
    _gauge("ThanosBlocksCorrupted", "thanos_blocks_meta_synced", "thanos-compactor", "1x40", "0x40",
           ', state="corrupted-meta-json"'),
    Case("ThanosBlocksPartial", {'thanos_blocks_meta_synced{job="thanos-compactor", instance="i", state="no-meta-json"}':
                                 "1x200"},
         {'thanos_blocks_meta_synced{job="thanos-compactor", instance="i", state="no-meta-json"}': "1x60 0x140"},
         {"job": "thanos-compactor", "instance": "i"}, at="3h"),
    _counter_rising("ThanosCompactDeletedPartialBlocks", "thanos_compact_aborted_partial_uploads_deletion_attempts_total",
                    "thanos-compactor"),
    # 30 blocks superseded at once without a compaction fires; 12 (one crashed compaction's sources) does not.
    Case("ThanosCompactGarbageCollectedMany",
         {'thanos_compact_garbage_collected_blocks_total{job="thanos-compactor", instance="i"}': "0x20 30x20"},
         {'thanos_compact_garbage_collected_blocks_total{job="thanos-compactor", instance="i"}': "0x20 12x20"},
         {"job": "thanos-compactor", "instance": "i"},
         extra={'thanos_compact_group_compactions_total{job="thanos-compactor", instance="i", resolution="0"}': "0x40"}),
    Case("ThanosCompactMultipleRunning", {'up{job="thanos-compactor", instance="b"}': "1x40"}, {},
         {"job": "thanos-compactor"}, extra={'up{job="thanos-compactor", instance="a"}': "1x40"}),
    _ratio("ThanosCompactHighCompactionFailures",
           'thanos_compact_group_compactions_failures_total{job="thanos-compactor", instance="i"}',
           'thanos_compact_group_compactions_total{job="thanos-compactor", instance="i"}', {"job": "thanos-compactor"},
           bad="0+1x60", total_values="0+10x60"),
    # 5-minute steps: the last upload stays at the epoch (fire) or follows the clock (quiet).
    Case("ThanosCompactHasNotRun",
         {'thanos_objstore_bucket_last_successful_upload_time{job="thanos-compactor", instance="i"}': "0x400"},
         {'thanos_objstore_bucket_last_successful_upload_time{job="thanos-compactor", instance="i"}': "0+300x400"},
         {"job": "thanos-compactor"}, at="26h", interval="5m",
         extra={'process_start_time_seconds{job="thanos-compactor", instance="i"}': "0x400"}),
    _down("ThanosCompactIsDown", "thanos-compactor"),
    _counter_rising("ThanosSidecarBucketOperationsFailed", "thanos_objstore_bucket_operation_failures_total",
                    "thanos-sidecar"),
    _gauge("ThanosSidecarNoConnectionToPrometheus", "thanos_sidecar_prometheus_up", "thanos-sidecar", "0x40", "1x40"),
    _not_uploading("ThanosSidecarNoUpload", "thanos-sidecar"),
    _down("ThanosSidecarIsDown", "thanos-sidecar"),
    _grpc("ThanosStoreGrpcErrorRate", "thanos-store", "server"),
    _slow("ThanosStoreSeriesGateLatencyHigh", "thanos_bucket_store_series_gate_duration_seconds",
          'job="thanos-store", instance="i"', "1", "5", {"job": "thanos-store"}),
    _slow("ThanosStoreObjstoreLatencyHigh", "thanos_objstore_bucket_operation_duration_seconds",
          'job="thanos-store", instance="i", operation="get"', "1", "5", {"job": "thanos-store"}),
    _down("ThanosStoreIsDown", "thanos-store"),
    _http("ThanosQueryHttpErrorRate", "thanos-query", "query_range"),
    _grpc("ThanosQueryGrpcServerErrorRate", "thanos-query", "server"),
    _grpc("ThanosQueryGrpcClientErrorRate", "thanos-query", "client"),
    _slow("ThanosQueryInstantLatencyHigh", "http_request_duration_seconds",
          'job="thanos-query", instance="i", handler="query"', "30", "120", {"job": "thanos-query"}),
    _slow("ThanosQueryRangeLatencyHigh", "http_request_duration_seconds",
          'job="thanos-query", instance="i", handler="query_range"', "60", "300", {"job": "thanos-query"}),
    Case("ThanosQueryOverload", {'thanos_query_concurrent_gate_queries_in_flight{job="thanos-query", instance="i"}': "20x40"},
         {'thanos_query_concurrent_gate_queries_in_flight{job="thanos-query", instance="i"}': "5x40"},
         {"job": "thanos-query", "instance": "i"},
         extra={'thanos_query_concurrent_gate_queries_max{job="thanos-query", instance="i"}': "20x40"}),
    _down("ThanosQueryIsDown", "thanos-query"),
    _http("ThanosQueryFrontendHttpErrorRate", "thanos-query-frontend", "query-frontend"),
    _down("ThanosQueryFrontendIsDown", "thanos-query-frontend"),
    _http("ThanosReceiveHttpErrorRate", "thanos-receive-router", "receive"),
    _slow("ThanosReceiveHttpLatencyHigh", "http_request_duration_seconds",
          'job="thanos-receive-router", instance="i", handler="receive"', "5", "30", {"job": "thanos-receive-router"}),
    _ratio("ThanosReceiveReplicationFailures",
           'thanos_receive_replications_total{job="thanos-receive-router", instance="i", result="error"}',
           'thanos_receive_replications_total{job="thanos-receive-router", instance="i", result="success"}',
           {"job": "thanos-receive-router"}, total_values="0+90x40"),
    # 30% of forwards failing fires; 10% stays under the 20% threshold.
    _ratio("ThanosReceiveForwardFailures", 'thanos_receive_forward_requests_total{job="thanos-receive", instance="i", result="error"}',
           'thanos_receive_forward_requests_total{job="thanos-receive", instance="i", result="success"}',
           {"job": "thanos-receive"}, bad="0+30x40", good="0+10x40", total_values="0+70x40"),
    _gauge("ThanosReceiveConfigReloadFailure", "thanos_receive_config_last_reload_successful", "thanos-receive",
           "0x40", "1x40"),
    Case("ThanosReceiveTenantLimited",
         {'thanos_receive_head_series_limited_requests_total{job="thanos-receive-router", instance="i", tenant="a"}':
          "0+3x40"},
         {'thanos_receive_head_series_limited_requests_total{job="thanos-receive-router", instance="i", tenant="a"}':
          "0x40"}, {"job": "thanos-receive-router", "tenant": "a"}),
    _counter_rising("ThanosReceiveLimitsNotEnforced", "thanos_receive_metamonitoring_failed_queries_total",
                    "thanos-receive-router"),
    _not_uploading("ThanosReceiveNoUpload", "thanos-receive"),
    _down("ThanosReceiveIsDown", "thanos-receive"),
    _ratio("ThanosRuleEvaluationFailures", 'prometheus_rule_evaluation_failures_total{job="thanos-ruler", instance="i"}',
           'prometheus_rule_evaluations_total{job="thanos-ruler", instance="i"}', {"job": "thanos-ruler", "instance": "i"}),
    _counter_rising("ThanosRuleSenderIsFailingAlerts", "thanos_alert_sender_alerts_dropped_total", "thanos-ruler"),
    _counter_rising("ThanosRuleQueueIsDroppingAlerts", "thanos_alert_queue_alerts_dropped_total", "thanos-ruler"),
    Case("ThanosRuleNoEvaluations", {'prometheus_rule_evaluations_total{job="thanos-ruler", instance="i"}': "7x40"},
         {'prometheus_rule_evaluations_total{job="thanos-ruler", instance="i"}': "0+10x40"},
         {"job": "thanos-ruler", "instance": "i"}, extra={'thanos_rule_loaded_rules{job="thanos-ruler", instance="i"}': "5x40"}),
    _gauge("ThanosRuleConfigReloadFailure", "thanos_rule_config_last_reload_successful", "thanos-ruler", "0x40", "1x40"),
    _down("ThanosRuleIsDown", "thanos-ruler"),
    # One of the planned pair is missing from the targets (the dead pod left its Service), not down.
    Case("PrometheusReplicaDown", {}, {'up{job="prometheus", namespace="thanos", service="thanos-prometheus", instance="b"}': "1x20"},
         {"job": "prometheus", "namespace": "thanos", "service": "thanos-prometheus"}, at="15m",
         extra={'up{job="prometheus", namespace="thanos", service="thanos-prometheus", instance="a"}': "1x20",
                PLANNED.format(job="prometheus", service="thanos-prometheus"): "2x20"}),
    _ratio("PrometheusNotificationsFailing", 'prometheus_notifications_errors_total{job="prometheus", instance="i"}',
           'prometheus_notifications_sent_total{job="prometheus", instance="i"}', {"job": "prometheus", "instance": "i"}),
    _counter_rising("PrometheusRuleEvaluationFailures", "prometheus_rule_evaluation_failures_total", "prometheus"),
    Case("AlertmanagerNotificationsFailing",
         {'alertmanager_notifications_failed_total{job="alertmanager", instance="i", integration="slack"}': "0+1x40"},
         {'alertmanager_notifications_failed_total{job="alertmanager", instance="i", integration="slack"}': "0x40"},
         {"job": "alertmanager", "instance": "i", "integration": "slack"}),
    Case("AlertmanagerClusterMembersMissing", {'alertmanager_cluster_members{job="alertmanager", instance="a"}': "1x40"},
         {'alertmanager_cluster_members{job="alertmanager", instance="a"}': "2x40"}, {"job": "alertmanager"},
         extra={'alertmanager_cluster_members{job="alertmanager", instance="b"}': "2x40",
                'up{job="alertmanager", instance="a"}': "1x40", 'up{job="alertmanager", instance="b"}': "1x40"}),
    _gauge("MemcachedDown", "memcached_up", "thanos-memcached-index", "0x40", "1x40"),
    Case("ThanosBucketVerifyFailed",
         {'kube_job_status_failed{job="kube-state-metrics", namespace="thanos", job_name="thanos-bucket-verify-29000"}': "1x10"},
         {'kube_job_status_failed{job="kube-state-metrics", namespace="thanos", job_name="thanos-bucket-verify-29000"}': "0x10"},
         {"namespace": "thanos", "job_name": "thanos-bucket-verify-29000"}, at="5m"),
    # The last success stays at the epoch (fire) or follows the clock (quiet).
    Case("ThanosBucketReplicationLagging", {LAST_REPLICATION: "0x200"}, {LAST_REPLICATION: "0+60x200"},
         {"namespace": "thanos", "cronjob": "thanos-bucket-replicate"}, at="2h"),
    # 10% of get operations failing fires; 1% stays under the 5% threshold.
    _ratio("ThanosBucketOperationFailures",
           'thanos_objstore_bucket_operation_failures_total{job="thanos-store", instance="i", operation="get"}',
           'thanos_objstore_bucket_operations_total{job="thanos-store", instance="i", operation="get"}',
           {"job": "thanos-store", "operation": "get"}, good="0+1x40"),
    # Every planned store gateway missing fires too; a target of another Service does not stand in for them.
    Case("ReplicasMissing", {'up{job="thanos-store", namespace="thanos", service="thanos-store-dr-us-west-2", instance="a"}': "1x30"},
         {'up{job="thanos-store", namespace="thanos", service="thanos-store", instance="a"}': "1x30"},
         {"job": "thanos-store", "namespace": "thanos", "service": "thanos-store"}, at="20m",
         extra={PLANNED.format(job="thanos-store", service="thanos-store"): "1x30"}),
    Case("TargetDown", {'up{job="node-exporter", namespace="n", instance="b"}': "0x40"},
         {'up{job="node-exporter", namespace="n", instance="b"}': "1x40"}, {"job": "node-exporter", "namespace": "n"},
         extra={'up{job="node-exporter", namespace="n", instance="a"}': "1x40"}),
    # The ruler's end-to-end check, as evaluated for chicago: seattle's data does not count.
    Case("ThanosClusterDataMissing", {'up{job="prometheus", cluster="seattle", instance="i"}': "1x30"},
         {'up{job="prometheus", cluster="chicago", instance="i"}': "1x30"}, {"cluster": "chicago", "job": "prometheus"}, at="20m"),
    # NotAfter as a Unix time against promtool's clock (time() is the seconds since the test began): 20 days left
    # is inside the default 30-day early-renewal margin, 40 is not; 10 days is under half of it, 20 is not.
    Case("ThanosCertificateRenewalDue", {EXPIRY: str(7200 + 20 * 86400) + "x200"}, {EXPIRY: str(40 * 86400) + "x200"},
         PROBED, at="2h"),
    Case("ThanosCertificateExpiring", {EXPIRY: str(10 * 86400) + "x40"}, {EXPIRY: str(20 * 86400) + "x40"}, PROBED),
    Case("ThanosTlsProbeFailing", {PROBE_SUCCESS: "1x10 0x30"}, {PROBE_SUCCESS: "1x10 0x2 1x28"}, PROBED),
]
