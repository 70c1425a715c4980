"""The platform's alerting and recording rules, evaluated by each cluster's Prometheus (or the PrometheusRule in
operator mode): the Thanos mixin's alerts (components/observability/mixin.py, linked to the upstream runbook) and the
platform's own, for what the mixin does not watch (each linked to its section in docs/runbooks.md). A cluster gets
only the groups of the components it runs, so no alert fires forever about a component that is not there.

The platform's own annotations template only `$labels` (never `$value`), so their text is predictable and their unit
tests exact.
"""

from dataclasses import dataclass
from typing import Any

from components.observability.mixin import mixin_alerts
from components.platform import names
from config.base import duration_seconds

# Scrape job names (exact, so `thanos-query` never matches `thanos-query-frontend`).
SIDECAR, QUERY, QUERY_FRONTEND, STORE = names.SIDECAR, names.QUERY, names.QUERY_FRONTEND, names.STORE
RULER, COMPACTOR, RECEIVE, RECEIVE_ROUTER = names.RULER, names.COMPACTOR, names.RECEIVE, names.RECEIVE_ROUTER
BUCKET_WEB, PROMETHEUS, ALERTMANAGER = names.BUCKET_WEB, "prometheus", "alertmanager"
TEAM_RULER = names.TEAM_RULER
MEMCACHED, KUBE_STATE_METRICS, NODE_EXPORTER = "memcached", "kube-state-metrics", "node-exporter"
BUCKET_REPLICATE = "bucket-replicate"
"""Not a scrape job: the cluster runs the `thanos-bucket-replicate` CronJob (watched through kube-state-metrics)."""
TLS_PROBE = "tls-probe"
"""The probes of the mTLS endpoints (blackbox exporter): one series per endpoint, labels namespace, module, instance."""
BUCKET_USERS = (RULER, RECEIVE, BUCKET_WEB)
"""Bucket users the mixin has no bucket-operations alert for (it has one for the compactor, store and sidecar)."""
GRPC_ERRORS = "Unknown|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"
PLANNED = "job_namespace_service:replicas:planned"
"""Recorded from the plan: the pods it runs behind each scraped Service (labels job, namespace, service)."""


@dataclass(frozen=True)
class Alert:
    """One alerting rule, before it is given its runbook link."""

    name: str
    expr: str
    hold: str
    severity: str
    summary: str
    description: str
    labels: tuple[tuple[str, str], ...] = ()
    """Labels the expression cannot carry (an absent() result has none)."""


def _ratio(errors: str, total: str, by: str, threshold: float) -> str:
    return f"(sum by ({by}) ({errors}) / sum by ({by}) ({total})) > {threshold}"


def _rate(metric: str, selector: str) -> str:
    return f"rate({metric}{{{selector}}}[5m])"


def _is_down(title: str, job: str) -> Alert:
    return Alert(f"Thanos{title}IsDown", f'absent(up{{job="{job}"}} == 1)', "5m", "critical",
                 f"Thanos {title} is down",
                 f"No {job} target has been up for 5 minutes: the component has disappeared or cannot be scraped.",
                 (("job", job),))


def _missing(selector: str) -> str:
    """Fewer targets up behind a Service than the plan runs there, none at all included. A dead or unready pod leaves
    the headless Service's SRV records, so it disappears from the targets instead of showing `up == 0`."""
    return (f"(count by (job, namespace, service) (up{{{selector}}} == 1) or 0 * {PLANNED}{{{selector}}}) "
            f"< on (job, namespace, service) {PLANNED}{{{selector}}}")


def _not_uploading(title: str, job: str) -> Alert:
    return Alert(f"Thanos{title}NoUpload",
                 f'sum by (job, instance) (increase(thanos_shipper_uploads_total{{job="{job}"}}[3h])) == 0 '
                 f'and on (job, instance) (time() - process_start_time_seconds{{job="{job}"}}) > 10800',
                 "30m", "critical", "{{ $labels.instance }} has not uploaded a block for 3 hours",
                 f"{job} {{{{ $labels.instance }}}} has run for more than 3 hours without shipping a block: new data "
                 "exists only on its disk.")


SOURCES_PER_COMPACTION = 12
"""The most source blocks one compaction supersedes: four 2h ranges of three receive copies."""


def _certificate_alerts(renewal: str) -> list[Alert]:
    """Days left of the certificates the probed endpoints serve, against the early-renewal margin: inside it a
    certificate is due (pulumi-tls re-issues it on the next `pulumi up`, cert-manager on its own); half of it gone
    pages. A probe that fails its handshake is what an expired or untrusted client certificate looks like."""
    days = duration_seconds(renewal) / 86400
    left = f'(min by (job, namespace, module, instance) (probe_ssl_earliest_cert_expiry{{job="{TLS_PROBE}"}}) - time()) / 86400'
    return [
        Alert("ThanosCertificateRenewalDue", f"{left} < {days:g}", "1h", "warning",
              "The certificate of {{ $labels.instance }} is due for renewal",
              f"The certificate {{{{ $labels.instance }}}} serves expires in less than {days:g} days (the "
              "early-renewal margin) and has not been re-issued: run `pulumi up` (pulumi-tls), or see why "
              "cert-manager did not renew it."),
        Alert("ThanosCertificateExpiring", f"{left} < {days / 2:g}", "10m", "critical",
              "The certificate of {{ $labels.instance }} expires soon",
              f"The certificate {{{{ $labels.instance }}}} serves expires in less than {days / 2:g} days. When it "
              "does, its clients refuse it: routers lose every writer, the global view loses the leaf."),
        Alert("ThanosTlsProbeFailing",
              f'max by (job, namespace, module, instance) (probe_success{{job="{TLS_PROBE}"}}) == 0', "10m", "critical",
              "The mTLS probe of {{ $labels.instance }} fails",
              "A client with the planned client certificate ({{ $labels.module }}) cannot complete a request to "
              "{{ $labels.instance }}: an expired or untrusted certificate on either side, or the endpoint is down."),
    ]


def _component_alerts(replicate_max_age: str, renewal: str = "720h") -> dict[str, list[Alert]]:
    """The platform's own alerts by the component (scrape job) they are about, beside the Thanos mixin's
    (components/observability/mixin.py): what the mixin does not watch."""
    compactor = f'job="{COMPACTOR}"'
    readers = f'job=~"{STORE}|{COMPACTOR}"'  # every reader of the bucket's block metadata
    alertmanager = f'job="{ALERTMANAGER}"'
    return {
        COMPACTOR: [
            Alert("ThanosCompactDeletedPartialBlocks",
                  f"sum by (job, instance) (increase(thanos_compact_aborted_partial_uploads_deletion_attempts_total"
                  f"{{{compactor}}}[1h])) > 0", "0m", "warning", "The compactor deleted partially uploaded blocks",
                  "The compactor deleted blocks without a meta.json whose newest object was more "
                  "than two days old. If one of them had a meta.json before (a writer deleted it), restore the block "
                  "from its noncurrent versions (runbook) before the bucket expires them."),
            # Every block the compactor marks as superseded counts here: its compactions' sources (at most 12 per
            # compaction: four 2h ranges of three receive copies) and what its garbage collection finds covered by
            # another block's compaction.sources. Far more than its compactions explain means a block claims sources
            # it was not compacted from, and every block it covers is gone after delete-delay.
            Alert("ThanosCompactGarbageCollectedMany",
                  f"sum by (job, instance) (increase(thanos_compact_garbage_collected_blocks_total{{{compactor}}}[1h])) "
                  f"> {SOURCES_PER_COMPACTION} * ((sum by (job, instance) (increase("
                  f"thanos_compact_group_compactions_total{{{compactor}}}[1h])) or on (job, instance) 0 * sum by (job, "
                  f"instance) (thanos_compact_garbage_collected_blocks_total{{{compactor}}})) + 1)",
                  "0m", "critical", "The compactor marked more blocks superseded than its compactions explain",
                  "Over the last hour the compactor marked more blocks for deletion as superseded than "
                  f"{SOURCES_PER_COMPACTION} per compaction it ran (plus one compaction's worth): a block whose "
                  "meta.json claims their sources hides them from the store gateways now and deletes them after "
                  "delete-delay. Find the block and restore the marked ones (runbook) before then."),
        ],
        SIDECAR: [
            _not_uploading("Sidecar", SIDECAR),
        ],
        STORE: [
            Alert("ThanosBlocksCorrupted",
                  f'max by (job, instance) (thanos_blocks_meta_synced{{{readers}, state="corrupted-meta-json"}}) > 0',
                  "5m", "critical", "A block in the bucket has an unreadable meta.json",
                  "{{ $labels.instance }} cannot read the meta.json of a block, so it skips it: a "
                  "store gateway does not serve its history. Readers that cached the meta.json before it was "
                  "overwritten go on; a new replica, or one that lost its disk, does not. Restore meta.json from its "
                  "previous version (runbook) while the bucket keeps it."),
            # An upload is partial for minutes (meta.json goes last); hours mean a lost meta.json, and the compactor
            # deletes a partial block outright once its newest object is two days old.
            Alert("ThanosBlocksPartial",
                  f'max by (job, instance) (thanos_blocks_meta_synced{{{readers}, state="no-meta-json"}}) > 0',
                  "2h", "warning", "A block in the bucket has had no meta.json for 2 hours",
                  "Blocks have objects but no meta.json: an upload that died, or a meta.json deleted. "
                  "Nobody serves them, and the compactor deletes them two days after their newest object was "
                  "written: restore meta.json from its previous version (runbook), or let an aborted upload go."),
        ],
        QUERY_FRONTEND: [
            Alert("ThanosQueryFrontendHttpErrorRate",
                  _ratio(_rate("http_requests_total", f'job="{QUERY_FRONTEND}", code=~"5.."'),
                         _rate("http_requests_total", f'job="{QUERY_FRONTEND}"'), "job", 0.05),
                  "5m", "warning", "The query-frontend fails requests",
                  "More than 5% of the query-frontend's requests fail with a 5xx (what Grafana sees)."),
            _is_down("QueryFrontend", QUERY_FRONTEND),
        ],
        PROMETHEUS: [
            Alert("PrometheusReplicaDown", _missing(f'job="{PROMETHEUS}"'), "10m", "critical",
                  "A Prometheus replica is down",
                  "Fewer Prometheus replicas have been up than the plan runs for 10 minutes (a dead or unready pod "
                  "leaves its Service, so it is missing from the targets): the other one carries the cluster alone."),
            Alert("PrometheusNotificationsFailing",
                  _ratio(_rate("prometheus_notifications_errors_total", f'job="{PROMETHEUS}"'),
                         _rate("prometheus_notifications_sent_total", f'job="{PROMETHEUS}"'), "job, instance", 0.01),
                  "15m", "warning", "Prometheus {{ $labels.instance }} fails to send alerts",
                  "More than 1% of the alerts Prometheus sends to Alertmanager fail."),
            Alert("PrometheusRuleEvaluationFailures",
                  f"sum by (job, instance) (increase(prometheus_rule_evaluation_failures_total"
                  f'{{job="{PROMETHEUS}"}}[5m])) > 0', "15m", "warning",
                  "Prometheus {{ $labels.instance }} fails rule evaluations",
                  "Some of the platform's rules fail to evaluate: their alerts cannot fire."),
        ],
        ALERTMANAGER: [
            Alert("AlertmanagerNotificationsFailing",
                  f'sum by (job, instance, integration) ({_rate("alertmanager_notifications_failed_total", alertmanager)}) > 0',
                  "10m", "critical", "Alertmanager fails to notify {{ $labels.integration }}",
                  "Alertmanager {{ $labels.instance }} cannot deliver notifications through "
                  "{{ $labels.integration }}: check the receiver's credentials and reachability."),
            Alert("AlertmanagerClusterMembersMissing",
                  f'min by (job) (alertmanager_cluster_members{{job="{ALERTMANAGER}"}}) '
                  f'< on (job) count by (job) (up{{job="{ALERTMANAGER}"}} == 1)', "10m", "warning",
                  "Alertmanager replicas do not see each other",
                  "An Alertmanager sees fewer gossip peers than there are replicas up: the split halves notify "
                  "twice and do not share silences."),
        ],
        MEMCACHED: [
            Alert("MemcachedDown", 'max by (job, instance) (memcached_up{job=~"thanos-memcached-.*"}) == 0', "5m",
                  "warning", "Memcached {{ $labels.instance }} is down",
                  "The exporter cannot reach its memcached: the caches of {{ $labels.job }} miss on that server."),
        ],
        KUBE_STATE_METRICS: [
            Alert("ThanosBucketVerifyFailed",
                  'max by (namespace, job_name) (kube_job_status_failed{job_name=~"thanos-bucket-verify-.*"}) > 0',
                  "0s", "warning", "Bucket verification {{ $labels.job_name }} failed",
                  "The scheduled `thanos tools bucket verify` found problems in the bucket or could not run."),
        ],
        BUCKET_REPLICATE: [
            Alert("ThanosBucketReplicationLagging",
                  "time() - max by (namespace, cronjob) (kube_cronjob_status_last_successful_time"
                  f'{{cronjob="thanos-bucket-replicate"}}) > {int(duration_seconds(replicate_max_age))}', "15m",
                  "warning", "The DR copy is falling behind",
                  f"The bucket replication job has not succeeded for more than {replicate_max_age}: a switch to "
                  "the DR copy would lose the blocks since."),
        ],
        TLS_PROBE: _certificate_alerts(renewal),
    }


def _scrape_health() -> list[Alert]:
    return [
        Alert("ThanosBucketOperationFailures",
              _ratio(_rate("thanos_objstore_bucket_operation_failures_total", f'job=~"{"|".join(BUCKET_USERS)}"'),
                     _rate("thanos_objstore_bucket_operations_total", f'job=~"{"|".join(BUCKET_USERS)}"'),
                     "job, operation", 0.05),
              "15m", "warning", "{{ $labels.job }} fails {{ $labels.operation }} bucket operations",
              "More than 5% of {{ $labels.job }}'s {{ $labels.operation }} operations on object storage fail."),
        Alert("ReplicasMissing", _missing(f'job!="{PROMETHEUS}"'), "15m", "warning",
              "{{ $labels.job }} runs fewer replicas than planned",
              "Fewer {{ $labels.job }} pods behind {{ $labels.service }} in {{ $labels.namespace }} have been up than "
              "the plan runs for 15 minutes: one is dead, crash-looping or unschedulable (it left the Service, so "
              "it is missing from the targets, not down), and the others carry its load without a spare."),
        Alert("TargetDown", "100 * (count by (job, namespace) (up == 0) / count by (job, namespace) (up)) > 10",
              "15m", "warning", "Targets of {{ $labels.job }} are down",
              "More than 10% of the {{ $labels.job }} targets in {{ $labels.namespace }} cannot be scraped."),
    ]


def _recording_rules(kubernetes: bool) -> list[dict[str, Any]]:
    """What the dashboards read, precomputed (names follow level:metric:operations)."""
    rules = [
        {"record": "job_handler_code:http_requests:rate5m",
         "expr": "sum by (job, handler, code) (rate(http_requests_total[5m]))"},
        {"record": "job_handler:http_request_duration_seconds:p99_5m",
         "expr": "histogram_quantile(0.99, sum by (job, handler, le) (rate(http_request_duration_seconds_bucket[5m])))"},
        {"record": "job:grpc_server_errors:ratio_rate5m",
         "expr": f'sum by (job) (rate(grpc_server_handled_total{{grpc_code=~"{GRPC_ERRORS}"}}[5m])) '
                 "/ sum by (job) (rate(grpc_server_started_total[5m]))"},
        {"record": "job_operation:thanos_objstore_bucket_operation_failures:ratio_rate5m",
         "expr": "sum by (job, operation) (rate(thanos_objstore_bucket_operation_failures_total[5m])) "
                 "/ sum by (job, operation) (rate(thanos_objstore_bucket_operations_total[5m]))"},
    ]
    if kubernetes:
        rules += [
            {"record": "namespace_pod:container_cpu_usage_seconds:rate5m",
             "expr": 'sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!=""}[5m]))'},
            {"record": "namespace_pod:container_memory_working_set_bytes:sum",
             "expr": 'sum by (namespace, pod) (container_memory_working_set_bytes{container!=""})'},
        ]
    return rules


def alert_rule(alert: Alert, runbooks: str) -> dict[str, Any]:
    """The Prometheus rule of an alert, linked to its runbook section (anchor = the lower-cased alert name)."""
    return {"alert": alert.name, "expr": alert.expr, "for": alert.hold,
            "labels": {"severity": alert.severity, **dict(alert.labels)},
            "annotations": {"summary": alert.summary, "description": alert.description,
                            "runbook_url": f"{runbooks}#{alert.name.lower()}"}}


PLATFORM_NOTES = frozenset({
    "ThanosCompactHalted", "ThanosCompactHasNotRun", "ThanosCompactHighCompactionFailures", "ThanosCompactIsDown",
    "ThanosCompactMultipleRunning", "ThanosNoRuleEvaluations", "ThanosQueryGrpcClientErrorRate",
    "ThanosQueryGrpcServerErrorRate", "ThanosQueryHttpRequestQueryErrorRateHigh", "ThanosQueryInstantLatencyHigh",
    "ThanosQueryIsDown", "ThanosQueryOverload", "ThanosQueryRangeLatencyHigh", "ThanosReceiveConfigReloadFailure",
    "ThanosReceiveHighForwardRequestFailures", "ThanosReceiveHighReplicationFailures",
    "ThanosReceiveHttpRequestErrorRateHigh", "ThanosReceiveHttpRequestLatencyHigh", "ThanosReceiveIsDown",
    "ThanosReceiveLimitsHighMetaMonitoringQueriesFailureRate", "ThanosReceiveNoUpload",
    "ThanosReceiveTenantLimitedByHeadSeries", "ThanosRuleConfigReloadFailure", "ThanosRuleHighRuleEvaluationFailures",
    "ThanosRuleIsDown", "ThanosRuleQueueIsDroppingAlerts", "ThanosRuleSenderIsFailingAlerts",
    "ThanosSidecarBucketOperationsFailed", "ThanosSidecarIsDown", "ThanosSidecarNoConnectionToStartedPrometheus",
    "ThanosStoreGrpcErrorRate", "ThanosStoreIsDown", "ThanosStoreObjstoreOperationLatencyHigh",
    "ThanosStoreSeriesGateLatencyHigh"})
"""Mixin alerts that docs/runbooks.md adds platform notes to (a section of the same name)."""


def with_platform_notes(rule: dict[str, Any], runbooks: str) -> dict[str, Any]:
    """A mixin alert with `platform_runbook_url` beside its upstream runbook_url, where the platform has notes."""
    if rule["alert"] not in PLATFORM_NOTES:
        return rule
    return {**rule, "annotations": {**rule["annotations"], "platform_runbook_url": f"{runbooks}#{rule['alert'].lower()}"}}


def all_alerts() -> list[Alert]:
    """Every alert the platform can have (what docs/runbooks.md and the rule tests must cover)."""
    return [a for alerts in _component_alerts("1h").values() for a in alerts] + _scrape_health() + [_end_to_end("any")]


def planned_rules(replicas: dict[tuple[str, str, str], int]) -> list[dict[str, Any]]:
    """The plan's replica counts as recorded series, one per (job, namespace, Service)."""
    return [{"record": PLANNED, "expr": f"vector({count})", "labels": {"job": job, "namespace": namespace,
                                                                     "service": service}}
            for (job, namespace, service), count in sorted(replicas.items())]


def platform_rule_groups(components: set[str], *, runbooks: str, kubernetes: bool,
                         replicas: dict[tuple[str, str, str], int],
                         replicate_max_age: str = "1h", renewal: str = "720h") -> list[dict[str, Any]]:
    """The rule groups of a cluster running `components` (scrape job names, plus BUCKET_REPLICATE): the mixin's group
    and the platform's group of each component present, the scrape-health group, the planned `replicas` behind each
    scraped Service ((job, namespace, Service) -> pods) and the recording rules. `renewal` is the certificates'
    early-renewal margin."""
    mixin = mixin_alerts()
    groups = [{"name": f"{component}.mixin", "rules": [with_platform_notes(rule, runbooks) for rule in mixin[component]]}
              for component in mixin if component in components]
    groups += [{"name": f"{component}.alerts", "rules": [alert_rule(a, runbooks) for a in alerts]}
               for component, alerts in _component_alerts(replicate_max_age, renewal).items()
               if component in components and alerts]
    groups.append({"name": "platform.alerts", "rules": [alert_rule(a, runbooks) for a in _scrape_health()]})
    groups.append({"name": "platform.replicas", "rules": planned_rules(replicas)})
    groups.append({"name": "platform.rules", "interval": "1m", "rules": _recording_rules(kubernetes)})
    return groups


def _end_to_end(cluster: str) -> Alert:
    return Alert("ThanosClusterDataMissing", f'absent(up{{job="{PROMETHEUS}", cluster="{cluster}"}})', "15m",
                 "critical", f"Query has no data from cluster {cluster}",
                 f"The ruler's query returns no Prometheus series of cluster {cluster} for 15 minutes: the "
                 "Prometheus pair, its sidecars or the query's discovery of them is broken.", (("cluster", cluster),))


def ruler_rule_groups(cluster: str, runbooks: str) -> list[dict[str, Any]]:
    """A cluster ruler's default group: the end-to-end check that the cluster's data reaches its query (what no
    Prometheus can see about itself). It warns on partial data: it exists to see an absence, and its query's
    StoreAPIs are strict, so aborting would turn a dead sidecar into an evaluation failure instead of this alert."""
    return [{"name": "thanos-end-to-end", "partial_response_strategy": "warn",
             "rules": [alert_rule(_end_to_end(cluster), runbooks)]}]
