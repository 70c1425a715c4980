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
    value: float | None = None
    """The firing alert's value, for annotations that print `$value` (the mixin's)."""


def _down(alert: str, job: str, labels: dict[str, str] | None = None) -> Case:
    return Case(alert, {'up{job="unrelated", instance="u"}': "1x20"}, {f'up{{job="{job}", instance="i"}}': "1x20"},
                {"job": job} if labels is None else labels, at="10m")


def _ratio(alert: str, errors: str, total: str, labels: dict[str, str], bad: str = "0+10x40",
           good: str = "0x40", total_values: str = "0+100x40") -> Case:
    return Case(alert, {errors: bad}, {errors: good}, labels, extra={total: total_values})


def _percent(alert: str, errors: str, total: str, labels: dict[str, str], others: bool = False) -> Case:
    """A mixin ratio alert (in percent): 10 of every 100 fail (fires at 10%), or none does. `total` counts every
    request, or with `others` only the ones that did not fail (the same metric under another label)."""
    return Case(alert, {errors: "0+10x60"}, {errors: "0x60"}, labels, extra={total: "0+90x60" if others else "0+100x60"},
                value=10)


def _latency(alert: str, metric: str, selector: str, top: str, labels: dict[str, str]) -> Case:
    """A mixin p99 alert: every request slower than the highest finite bucket, `top` (the quantile is that bound,
    exactly), or every one under a second."""
    def series(le: str) -> str:
        return f'{metric}_bucket{{{selector}, le="{le}"}}'
    shared = {series("+Inf"): "0+10x40", f"{metric}_count{{{selector}}}": "0+10x40"}
    return Case(alert, {series("1"): "0x40", series(top): "0x40"}, {series("1"): "0+10x40", series(top): "0+10x40"},
                labels, extra=shared, value=float(top))


def _not_uploading(alert: str, job: str) -> Case:
    series = f'thanos_shipper_uploads_total{{job="{job}", instance="i"}}'
    return Case(alert, {series: "5x300"}, {series: "0+1x300"}, {"job": job, "instance": "i"}, at="4h",
                extra={f'process_start_time_seconds{{job="{job}", instance="i"}}': "0x300"})


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
    # The platform's own, for what the mixin does not watch.
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
    _not_uploading("ThanosSidecarNoUpload", "thanos-sidecar"),
    _http("ThanosQueryFrontendHttpErrorRate", "thanos-query-frontend", "query-frontend"),
    _down("ThanosQueryFrontendIsDown", "thanos-query-frontend"),
    # The Thanos mixin's (components/observability/mixin.py), with the platform's job names.
    _gauge("ThanosCompactHalted", "thanos_compact_halted", "thanos-compactor", "1x40", "0x40"),
    Case("ThanosCompactMultipleRunning", {'up{job="thanos-compactor", instance="b"}': "1x40"}, {},
         {"job": "thanos-compactor"}, extra={'up{job="thanos-compactor", instance="a"}': "1x40"}, value=2),
    _percent("ThanosCompactHighCompactionFailures",
             'thanos_compact_group_compactions_failures_total{job="thanos-compactor", instance="i"}',
             'thanos_compact_group_compactions_total{job="thanos-compactor", instance="i"}', {"job": "thanos-compactor"}),
    _percent("ThanosCompactBucketHighOperationFailures",
             'thanos_objstore_bucket_operation_failures_total{job="thanos-compactor", instance="i", operation="get"}',
             'thanos_objstore_bucket_operations_total{job="thanos-compactor", instance="i", operation="get"}',
             {"job": "thanos-compactor"}),
    # 5-minute steps: the last upload stays at the epoch (fire) or follows the clock (quiet).
    Case("ThanosCompactHasNotRun",
         {'thanos_objstore_bucket_last_successful_upload_time{job="thanos-compactor", instance="i"}': "0x400"},
         {'thanos_objstore_bucket_last_successful_upload_time{job="thanos-compactor", instance="i"}': "0+300x400"},
         {"job": "thanos-compactor"}, at="26h", interval="5m"),
    _down("ThanosCompactIsDown", "thanos-compactor", labels={}),
    _percent("ThanosQueryHttpRequestQueryErrorRateHigh",
             'http_requests_total{job="thanos-query", instance="i", handler="query", code="500"}',
             'http_requests_total{job="thanos-query", instance="i", handler="query", code="200"}', {"job": "thanos-query"},
             others=True),
    _percent("ThanosQueryHttpRequestQueryRangeErrorRateHigh",
             'http_requests_total{job="thanos-query", instance="i", handler="query_range", code="503"}',
             'http_requests_total{job="thanos-query", instance="i", handler="query_range", code="200"}',
             {"job": "thanos-query"}, others=True),
    _percent("ThanosQueryGrpcServerErrorRate",
             'grpc_server_handled_total{job="thanos-query", instance="i", grpc_code="Unavailable"}',
             'grpc_server_started_total{job="thanos-query", instance="i"}', {"job": "thanos-query"}),
    _percent("ThanosQueryGrpcClientErrorRate",
             'grpc_client_handled_total{job="thanos-query", instance="i", grpc_code="Unavailable"}',
             'grpc_client_started_total{job="thanos-query", instance="i"}', {"job": "thanos-query"}),
    _percent("ThanosQueryHighDNSFailures", 'thanos_query_store_apis_dns_failures_total{job="thanos-query", instance="i"}',
             'thanos_query_store_apis_dns_lookups_total{job="thanos-query", instance="i"}', {"job": "thanos-query"}),
    _latency("ThanosQueryInstantLatencyHigh", "http_request_duration_seconds",
             'job="thanos-query", instance="i", handler="query"', "120", {"job": "thanos-query"}),
    _latency("ThanosQueryRangeLatencyHigh", "http_request_duration_seconds",
             'job="thanos-query", instance="i", handler="query_range"', "300", {"job": "thanos-query"}),
    Case("ThanosQueryOverload", {'thanos_query_concurrent_gate_queries_in_flight{job="thanos-query", instance="i"}': "20x40"},
         {'thanos_query_concurrent_gate_queries_in_flight{job="thanos-query", instance="i"}': "5x40"},
         {"job": "thanos-query", "instance": "i"},
         extra={'thanos_query_concurrent_gate_queries_max{job="thanos-query", instance="i"}': "20x40"}),
    _down("ThanosQueryIsDown", "thanos-query", labels={}),
    _percent("ThanosReceiveHttpRequestErrorRateHigh",
             'http_requests_total{job="thanos-receive-router", instance="i", handler="receive", code="500"}',
             'http_requests_total{job="thanos-receive-router", instance="i", handler="receive", code="200"}',
             {"job": "thanos-receive-router"}, others=True),
    _latency("ThanosReceiveHttpRequestLatencyHigh", "http_request_duration_seconds",
             'job="thanos-receive-router", instance="i", handler="receive"', "30", {"job": "thanos-receive-router"}),
    # RF 3 over 3 nodes: more than floor((3+1)/2)/3 of replications failing (80%) fires, 10% does not; the alert's
    # value is the replication factor (upstream's `and` keeps its left side).
    Case("ThanosReceiveHighReplicationFailures",
         {'thanos_receive_replications_total{job="thanos-receive-router", instance="i", result="error"}': "0+80x40"},
         {'thanos_receive_replications_total{job="thanos-receive-router", instance="i", result="error"}': "0+10x40"},
         {"job": "thanos-receive-router", "instance": "i"}, value=3,
         extra={'thanos_receive_replications_total{job="thanos-receive-router", instance="i", result="success"}':
                "0+20x40",
                'thanos_receive_replication_factor{job="thanos-receive-router", instance="i"}': "3x40",
                'thanos_receive_hashring_nodes{job="thanos-receive-router", instance="i"}': "3x40"}),
    # 30% of forwards failing fires; 10% stays under the 20% threshold.
    Case("ThanosReceiveHighForwardRequestFailures",
         {'thanos_receive_forward_requests_total{job="thanos-receive", instance="i", result="error"}': "0+30x40"},
         {'thanos_receive_forward_requests_total{job="thanos-receive", instance="i", result="error"}': "0+10x40"},
         {"job": "thanos-receive"}, value=30,
         extra={'thanos_receive_forward_requests_total{job="thanos-receive", instance="i", result="success"}': "0+70x40"}),
    Case("ThanosReceiveHighHashringFileRefreshFailures",
         {'thanos_receive_hashrings_file_errors_total{job="thanos-receive-router", instance="i"}': "0+1x60"},
         {'thanos_receive_hashrings_file_errors_total{job="thanos-receive-router", instance="i"}': "0x60"},
         {"job": "thanos-receive-router"}, value=0.1,
         extra={'thanos_receive_hashrings_file_refreshes_total{job="thanos-receive-router", instance="i"}': "0+10x60"}),
    Case("ThanosReceiveConfigReloadFailure",
         {'thanos_receive_config_last_reload_successful{job="thanos-receive", instance="i"}': "0x40"},
         {'thanos_receive_config_last_reload_successful{job="thanos-receive", instance="i"}': "1x40"},
         {"job": "thanos-receive"}),
    Case("ThanosReceiveNoUpload", {'thanos_shipper_uploads_total{job="thanos-receive", instance="i"}': "5x500"},
         {'thanos_shipper_uploads_total{job="thanos-receive", instance="i"}': "0+1x500"},
         {"job": "thanos-receive", "instance": "i"}, at="7h", extra={'up{job="thanos-receive", instance="i"}': "1x500"}),
    _counter_rising("ThanosReceiveLimitsConfigReloadFailure", "thanos_receive_limits_config_reload_err_total",
                    "thanos-receive-router", {"job": "thanos-receive-router"}),
    # 2 of the router's 20 meta-monitoring queries a minute fail: 10 in 5 minutes, 50%.
    Case("ThanosReceiveLimitsHighMetaMonitoringQueriesFailureRate",
         {'thanos_receive_metamonitoring_failed_queries_total{job="thanos-receive-router", instance="i"}': "0+2x40"},
         {'thanos_receive_metamonitoring_failed_queries_total{job="thanos-receive-router", instance="i"}': "0x40"},
         {"job": "thanos-receive-router"}, value=50),
    Case("ThanosReceiveTenantLimitedByHeadSeries",
         {'thanos_receive_head_series_limited_requests_total{job="thanos-receive-router", instance="i", tenant="a"}':
          "0+3x40"},
         {'thanos_receive_head_series_limited_requests_total{job="thanos-receive-router", instance="i", tenant="a"}':
          "0x40"}, {"job": "thanos-receive-router", "tenant": "a"}),
    _down("ThanosReceiveIsDown", "thanos-receive", labels={}),
    _counter_rising("ThanosSidecarBucketOperationsFailed", "thanos_objstore_bucket_operation_failures_total",
                    "thanos-sidecar"),
    # The sidecar cannot reach its Prometheus, which has finished replaying its WAL (same namespace and pod).
    Case("ThanosSidecarNoConnectionToStartedPrometheus",
         {'thanos_sidecar_prometheus_up{job="thanos-sidecar", instance="i", namespace="thanos", pod="p-0"}': "0x40"},
         {'thanos_sidecar_prometheus_up{job="thanos-sidecar", instance="i", namespace="thanos", pod="p-0"}': "1x40"},
         {"job": "thanos-sidecar", "instance": "i", "namespace": "thanos", "pod": "p-0"},
         extra={'prometheus_tsdb_data_replay_duration_seconds{job="prometheus", instance="j", namespace="thanos", '
                'pod="p-0"}': "3x40"}),
    _down("ThanosSidecarIsDown", "thanos-sidecar", labels={}),
    _percent("ThanosStoreGrpcErrorRate", 'grpc_server_handled_total{job="thanos-store", instance="i", grpc_code="Internal"}',
             'grpc_server_started_total{job="thanos-store", instance="i"}', {"job": "thanos-store"}),
    _latency("ThanosStoreSeriesGateLatencyHigh", "thanos_bucket_store_series_gate_duration_seconds",
             'job="thanos-store", instance="i"', "5", {"job": "thanos-store"}),
    _percent("ThanosStoreBucketHighOperationFailures",
             'thanos_objstore_bucket_operation_failures_total{job="thanos-store", instance="i", operation="get"}',
             'thanos_objstore_bucket_operations_total{job="thanos-store", instance="i", operation="get"}',
             {"job": "thanos-store"}),
    _latency("ThanosStoreObjstoreOperationLatencyHigh", "thanos_objstore_bucket_operation_duration_seconds",
             'job="thanos-store", instance="i", operation="get"', "5", {"job": "thanos-store"}),
    _down("ThanosStoreIsDown", "thanos-store", labels={}),
    _counter_rising("ThanosRuleQueueIsDroppingAlerts", "thanos_alert_queue_alerts_dropped_total", "thanos-ruler"),
    _counter_rising("ThanosRuleSenderIsFailingAlerts", "thanos_alert_sender_alerts_dropped_total", "thanos-ruler"),
    _percent("ThanosRuleHighRuleEvaluationFailures",
             'prometheus_rule_evaluation_failures_total{job="thanos-ruler", instance="i"}',
             'prometheus_rule_evaluations_total{job="thanos-ruler", instance="i"}', {"job": "thanos-ruler", "instance": "i"}),
    _counter_rising("ThanosRuleHighRuleEvaluationWarnings", "thanos_rule_evaluation_with_warnings_total", "thanos-ruler"),
    Case("ThanosRuleRuleEvaluationLatencyHigh",
         {'prometheus_rule_group_last_duration_seconds{job="thanos-ruler", instance="i", rule_group="g"}': "90x40"},
         {'prometheus_rule_group_last_duration_seconds{job="thanos-ruler", instance="i", rule_group="g"}': "1x40"},
         {"job": "thanos-ruler", "instance": "i", "rule_group": "g"},
         extra={'prometheus_rule_group_interval_seconds{job="thanos-ruler", instance="i", rule_group="g"}': "60x40"}),
    _percent("ThanosRuleGrpcErrorRate", 'grpc_server_handled_total{job="thanos-ruler", instance="i", grpc_code="Unknown"}',
             'grpc_server_started_total{job="thanos-ruler", instance="i"}', {"job": "thanos-ruler", "instance": "i"}),
    _gauge("ThanosRuleConfigReloadFailure", "thanos_rule_config_last_reload_successful", "thanos-ruler", "0x40", "1x40"),
    _percent("ThanosRuleQueryHighDNSFailures", 'thanos_rule_query_apis_dns_failures_total{job="thanos-ruler", instance="i"}',
             'thanos_rule_query_apis_dns_lookups_total{job="thanos-ruler", instance="i"}',
             {"job": "thanos-ruler", "instance": "i"}),
    _percent("ThanosRuleAlertmanagerHighDNSFailures",
             'thanos_rule_alertmanagers_dns_failures_total{job="thanos-ruler", instance="i"}',
             'thanos_rule_alertmanagers_dns_lookups_total{job="thanos-ruler", instance="i"}',
             {"job": "thanos-ruler", "instance": "i"}),
    # The group's last evaluation stays at the epoch (fire) or follows the clock (quiet): 10 intervals are 10 minutes.
    Case("ThanosRuleNoEvaluationFor10Intervals",
         {'prometheus_rule_group_last_evaluation_timestamp_seconds{job="thanos-ruler", instance="i", group="g"}': "0x40"},
         {'prometheus_rule_group_last_evaluation_timestamp_seconds{job="thanos-ruler", instance="i", group="g"}':
          "0+60x40"},
         {"job": "thanos-ruler", "instance": "i", "group": "g"},
         extra={'prometheus_rule_group_interval_seconds{job="thanos-ruler", instance="i", group="g"}': "60x40"}),
    Case("ThanosNoRuleEvaluations", {'prometheus_rule_evaluations_total{job="thanos-ruler", instance="i"}': "7x40"},
         {'prometheus_rule_evaluations_total{job="thanos-ruler", instance="i"}': "0+10x40"},
         {"job": "thanos-ruler", "instance": "i"}, extra={'thanos_rule_loaded_rules{job="thanos-ruler", instance="i"}': "5x40"}),
    _down("ThanosRuleIsDown", "thanos-ruler", labels={}),
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
    # 10% of the ruler's uploads failing fires; 1% stays under the 5% threshold.
    _ratio("ThanosBucketOperationFailures",
           'thanos_objstore_bucket_operation_failures_total{job="thanos-ruler", instance="i", operation="upload"}',
           'thanos_objstore_bucket_operations_total{job="thanos-ruler", instance="i", operation="upload"}',
           {"job": "thanos-ruler", "operation": "upload"}, good="0+1x40"),
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
