"""The Grafana dashboards, generated with grafana-foundation-sdk: an overview of every cluster and one per component.
Each has `cluster` and `namespace` variables, and every query filters on both."""

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

from components.observability.rules import (
    ALERTMANAGER,
    COMPACTOR,
    GRPC_ERRORS,
    QUERY,
    QUERY_FRONTEND,
    RECEIVE,
    RECEIVE_ROUTER,
    RULER,
    SIDECAR,
    STORE,
)

DATASOURCE_UID = "thanos"
SCOPE = 'cluster=~"$cluster", namespace=~"$namespace"'
WINDOW = "$__rate_interval"


@dataclass(frozen=True)
class Graph:
    """A timeseries panel: queries as (PromQL, legend)."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Single:
    """A stat panel of one instant value."""

    title: str
    unit: str
    query: str


Panel = Graph | Single


def _sel(job: str, extra: str = "") -> str:
    return f'{{job=~"{job}", {SCOPE}{", " + extra if extra else ""}}}'


def _red(title: str, job: str, handler: str) -> list[Panel]:
    """Rate by code, error ratio and p50/p90/p99 latency of an HTTP handler."""
    sel = _sel(job, f'handler=~"{handler}"')
    errors = _sel(job, f'handler=~"{handler}", code=~"5.."')
    return [
        Graph(f"{title}: requests", "reqps",
              ((f"sum by (cluster, code) (rate(http_requests_total{sel}[{WINDOW}]))", "{{cluster}} {{code}}"),)),
        Graph(f"{title}: errors", "percentunit",
              ((f"sum by (cluster) (rate(http_requests_total{errors}[{WINDOW}])) / "
                f"sum by (cluster) (rate(http_requests_total{sel}[{WINDOW}]))", "{{cluster}}"),)),
        Graph(f"{title}: latency", "s", tuple(
            (f"histogram_quantile({q}, sum by (cluster, le) (rate(http_request_duration_seconds_bucket{sel}[{WINDOW}])))",
             f"p{int(q * 100)} {{{{cluster}}}}") for q in (0.5, 0.9, 0.99))),
    ]


def _grpc(title: str, job: str, side: str = "server") -> list[Panel]:
    sel = _sel(job)
    errors = _sel(job, f'grpc_code=~"{GRPC_ERRORS}"')
    return [
        Graph(f"{title}: gRPC {side} requests", "reqps",
              ((f"sum by (cluster, grpc_method) (rate(grpc_{side}_started_total{sel}[{WINDOW}]))",
                "{{cluster}} {{grpc_method}}"),)),
        Graph(f"{title}: gRPC {side} errors", "percentunit",
              ((f"sum by (cluster) (rate(grpc_{side}_handled_total{errors}[{WINDOW}])) / "
                f"sum by (cluster) (rate(grpc_{side}_started_total{sel}[{WINDOW}]))", "{{cluster}}"),)),
        Graph(f"{title}: gRPC {side} p99", "s",
              ((f"histogram_quantile(0.99, sum by (cluster, le) (rate(grpc_{side}_handling_seconds_bucket{sel}"
                f"[{WINDOW}])))", "{{cluster}}"),)),
    ]


def _bucket(job: str) -> list[Panel]:
    sel = _sel(job)
    return [
        Graph("Bucket operations", "ops",
              ((f"sum by (cluster, operation) (rate(thanos_objstore_bucket_operations_total{sel}[{WINDOW}]))",
                "{{cluster}} {{operation}}"),)),
        Graph("Bucket operation failures", "percentunit",
              ((f"sum by (cluster, operation) (rate(thanos_objstore_bucket_operation_failures_total{sel}[{WINDOW}]))"
                f" / sum by (cluster, operation) (rate(thanos_objstore_bucket_operations_total{sel}[{WINDOW}]))",
                "{{cluster}} {{operation}}"),)),
        Graph("Bucket operation p99", "s",
              ((f"histogram_quantile(0.99, sum by (cluster, operation, le) "
                f"(rate(thanos_objstore_bucket_operation_duration_seconds_bucket{sel}[{WINDOW}])))",
                "{{cluster}} {{operation}}"),)),
    ]


def _resources(job: str) -> list[Panel]:
    """Memory, CPU and goroutines per pod (the heap in use, not the rate of a gauge)."""
    sel = _sel(job)
    return [
        Graph("Memory", "bytes", ((f"max by (cluster, instance) (go_memstats_heap_inuse_bytes{sel})", "heap {{instance}}"),
                                  (f"max by (cluster, instance) (process_resident_memory_bytes{sel})", "rss {{instance}}"))),
        Graph("CPU", "short", ((f"sum by (cluster, instance) (rate(process_cpu_seconds_total{sel}[{WINDOW}]))",
                                "{{instance}}"),)),
        Graph("Goroutines", "short", ((f"max by (cluster, instance) (go_goroutines{sel})", "{{instance}}"),)),
    ]


def _up(job: str) -> Single:
    return Single("Targets up", "short", f"sum(up{_sel(job)})")


def overview() -> list[tuple[str, list[Panel]]]:
    """One row per component: is it up, its request rate and its errors, plus what is firing."""
    rows: list[tuple[str, list[Panel]]] = [("Alerts", [
        Single("Critical alerts firing", "short", f'count(ALERTS{{alertstate="firing", severity="critical", {SCOPE}}}) or vector(0)'),
        Single("Warnings firing", "short", f'count(ALERTS{{alertstate="firing", severity="warning", {SCOPE}}}) or vector(0)'),
        Graph("Firing alerts", "short", ((f'count by (cluster, alertname) (ALERTS{{alertstate="firing", {SCOPE}}})',
                                          "{{cluster}} {{alertname}}"),)),
    ])]
    for title, job in (("Query", QUERY), ("Query frontend", QUERY_FRONTEND), ("Store", STORE), ("Sidecar", SIDECAR),
                       ("Ruler", RULER), ("Compactor", COMPACTOR), ("Receive", f"{RECEIVE}|{RECEIVE_ROUTER}")):
        rows.append((title, [
            _up(job),
            Graph(f"{title}: HTTP requests", "reqps",
                  ((f"sum by (cluster, handler) (job_handler_code:http_requests:rate5m{_sel(job)})",
                    "{{cluster}} {{handler}}"),)),
            Graph(f"{title}: gRPC errors", "percentunit",
                  ((f"max by (cluster) (job:grpc_server_errors:ratio_rate5m{_sel(job)})", "{{cluster}}"),)),
        ]))
    rows.append(("Latency and object storage", [
        Graph("HTTP p99 by component", "s",
              ((f'max by (cluster, job, handler) (job_handler:http_request_duration_seconds:p99_5m{_sel("thanos-.*")})',
                "{{cluster}} {{job}} {{handler}}"),)),
        Graph("Bucket operation failures", "percentunit",
              ((f"max by (cluster, job, operation) (job_operation:thanos_objstore_bucket_operation_failures:ratio_rate5m"
                f'{_sel("thanos-.*")})', "{{cluster}} {{job}} {{operation}}"),)),
    ]))
    return rows


def component_dashboards() -> dict[str, tuple[str, list[tuple[str, list[Panel]]]]]:
    """uid -> (title, rows)."""
    query_sel = _sel(QUERY)
    store_sel = _sel(STORE)
    compact_sel = _sel(COMPACTOR)
    ruler_sel = _sel(RULER)
    receive = f"{RECEIVE}|{RECEIVE_ROUTER}"
    receive_errors = _sel(receive, 'result="error"')
    caches = _sel("thanos-memcached-.*")
    cache_gets = _sel("thanos-memcached-.*", 'command="get"')
    cache_hits = _sel("thanos-memcached-.*", 'command="get", status="hit"')
    return {
        "thanos-query": ("Thanos / Query", [
            ("Instant queries", _red("Instant", QUERY, "query")),
            ("Range queries", _red("Range", QUERY, "query_range")),
            ("StoreAPI fan-out", _grpc("Query", QUERY, "client")),
            ("Concurrency", [
                Graph("Free query slots", "short",
                      ((f"max by (cluster, instance) (thanos_query_concurrent_gate_queries_max{query_sel}) - "
                        f"max by (cluster, instance) (thanos_query_concurrent_gate_queries_in_flight{query_sel})",
                        "{{instance}}"),)),
                Graph("Store DNS failures", "percentunit",
                      ((f"sum by (cluster) (rate(thanos_query_store_apis_dns_failures_total{query_sel}[{WINDOW}])) / "
                        f"sum by (cluster) (rate(thanos_query_store_apis_dns_lookups_total{query_sel}[{WINDOW}]))",
                        "{{cluster}}"),))]),
            ("Resources", _resources(QUERY)),
        ]),
        "thanos-query-frontend": ("Thanos / Query Frontend", [
            ("Requests", _red("Frontend", QUERY_FRONTEND, "query-frontend")),
            ("Results cache", [
                Graph("Queries by operation", "reqps",
                      ((f"sum by (cluster, op) (rate(thanos_query_frontend_queries_total{_sel(QUERY_FRONTEND)}[{WINDOW}]))",
                        "{{cluster}} {{op}}"),)),
                Graph("Cache hit ratio", "percentunit",
                      ((f"sum by (cluster, tripperware) (rate(cortex_cache_hits_total{_sel(QUERY_FRONTEND)}[{WINDOW}])) / "
                        f"sum by (cluster, tripperware) (rate(cortex_cache_fetched_keys_total{_sel(QUERY_FRONTEND)}"
                        f"[{WINDOW}]))", "{{cluster}} {{tripperware}}"),))]),
            ("Resources", _resources(QUERY_FRONTEND)),
        ]),
        "thanos-store": ("Thanos / Store", [
            ("gRPC", _grpc("Store", STORE)),
            ("Object storage", _bucket(STORE)),
            ("Blocks and index cache", [
                Graph("Block loads and drops", "ops",
                      ((f"sum by (cluster) (rate(thanos_bucket_store_block_loads_total{store_sel}[{WINDOW}]))", "loads {{cluster}}"),
                       (f"sum by (cluster) (rate(thanos_bucket_store_block_drops_total{store_sel}[{WINDOW}]))", "drops {{cluster}}"))),
                Graph("Index cache hit ratio", "percentunit",
                      ((f"sum by (cluster, item_type) (rate(thanos_store_index_cache_hits_total{store_sel}[{WINDOW}])) / "
                        f"sum by (cluster, item_type) (rate(thanos_store_index_cache_requests_total{store_sel}[{WINDOW}]))",
                        "{{cluster}} {{item_type}}"),)),
                Graph("Series gate wait p99", "s",
                      ((f"histogram_quantile(0.99, sum by (cluster, le) "
                        f"(rate(thanos_bucket_store_series_gate_duration_seconds_bucket{store_sel}[{WINDOW}])))", "{{cluster}}"),))]),
            ("Resources", _resources(STORE)),
        ]),
        "thanos-sidecar": ("Thanos / Sidecar", [
            ("Prometheus and uploads", [
                Graph("Prometheus reachable", "short",
                      ((f"min by (cluster, instance) (thanos_sidecar_prometheus_up{_sel(SIDECAR)})", "{{instance}}"),)),
                Graph("Blocks shipped", "short",
                      ((f"sum by (cluster, instance) (increase(thanos_shipper_uploads_total{_sel(SIDECAR)}[1h]))", "{{instance}}"),)),
                Graph("Upload failures", "short",
                      ((f"sum by (cluster, instance) (increase(thanos_shipper_upload_failures_total{_sel(SIDECAR)}[1h]))",
                        "{{instance}}"),))]),
            ("gRPC", _grpc("Sidecar", SIDECAR)),
            ("Object storage", _bucket(SIDECAR)),
            ("Resources", _resources(SIDECAR)),
        ]),
        "thanos-compactor": ("Thanos / Compactor", [
            ("Compaction", [
                Single("Halted", "short", f"max(thanos_compact_halted{compact_sel})"),
                Graph("Compactions", "ops",
                      ((f"sum by (cluster) (rate(thanos_compact_group_compactions_total{compact_sel}[{WINDOW}]))", "{{cluster}}"),
                       (f"sum by (cluster) (rate(thanos_compact_group_compactions_failures_total{compact_sel}[{WINDOW}]))",
                        "failures {{cluster}}"))),
                Graph("Downsampling", "ops",
                      ((f"sum by (cluster) (rate(thanos_compact_downsample_total{compact_sel}[{WINDOW}]))", "{{cluster}}"),
                       (f"sum by (cluster) (rate(thanos_compact_downsample_failed_total{compact_sel}[{WINDOW}]))",
                        "failures {{cluster}}"))),
                Graph("Blocks marked for deletion", "short",
                      ((f"sum by (cluster) (increase(thanos_compact_blocks_marked_for_deletion_total{compact_sel}[1h]))",
                        "{{cluster}}"),)),
                Graph("Hours since last upload", "h",
                      ((f"(time() - max by (cluster) (thanos_objstore_bucket_last_successful_upload_time{compact_sel})) / 3600",
                        "{{cluster}}"),))]),
            ("Object storage", _bucket(COMPACTOR)),
            ("Resources", _resources(COMPACTOR)),
        ]),
        "thanos-receive": ("Thanos / Receive", [
            ("Remote write", _red("Remote write", receive, "receive")),
            ("Replication", [
                Graph("Replication errors", "percentunit",
                      ((f'sum by (cluster) (rate(thanos_receive_replications_total{receive_errors}[{WINDOW}])) / '
                        f"sum by (cluster) (rate(thanos_receive_replications_total{_sel(receive)}[{WINDOW}]))", "{{cluster}}"),)),
                Graph("Forward errors", "percentunit",
                      ((f'sum by (cluster) (rate(thanos_receive_forward_requests_total{receive_errors}[{WINDOW}])) / '
                        f"sum by (cluster) (rate(thanos_receive_forward_requests_total{_sel(receive)}[{WINDOW}]))", "{{cluster}}"),)),
                Graph("Hashring nodes", "short",
                      ((f"max by (cluster) (thanos_receive_hashring_nodes{_sel(receive)})", "{{cluster}}"),))]),
            ("Object storage", _bucket(RECEIVE)),
            ("Resources", _resources(receive)),
        ]),
        "thanos-ruler": ("Thanos / Ruler", [
            ("Evaluation", [
                Graph("Evaluations", "ops",
                      ((f"sum by (cluster, rule_group) (rate(prometheus_rule_evaluations_total{ruler_sel}[{WINDOW}]))",
                        "{{cluster}} {{rule_group}}"),)),
                Graph("Evaluation failures", "ops",
                      ((f"sum by (cluster, rule_group) (rate(prometheus_rule_evaluation_failures_total{ruler_sel}[{WINDOW}]))",
                        "{{cluster}} {{rule_group}}"),)),
                Graph("Group duration over interval", "percentunit",
                      ((f"max by (cluster, rule_group) (prometheus_rule_group_last_duration_seconds{ruler_sel}) / "
                        f"max by (cluster, rule_group) (prometheus_rule_group_interval_seconds{ruler_sel})",
                        "{{cluster}} {{rule_group}}"),))]),
            ("Alerts sent", [
                Graph("Alerts sent", "ops",
                      ((f"sum by (cluster, alertmanager) (rate(thanos_alert_sender_alerts_sent_total{ruler_sel}[{WINDOW}]))",
                        "{{cluster}} {{alertmanager}}"),)),
                Graph("Alerts dropped", "ops",
                      ((f"sum by (cluster) (rate(thanos_alert_sender_alerts_dropped_total{ruler_sel}[{WINDOW}]))",
                        "sender {{cluster}}"),
                       (f"sum by (cluster) (rate(thanos_alert_queue_alerts_dropped_total{ruler_sel}[{WINDOW}]))",
                        "queue {{cluster}}")))]),
            ("Resources", _resources(RULER)),
        ]),
        "thanos-alerting": ("Thanos / Alertmanager", [
            ("Notifications", [
                Graph("Notifications", "ops",
                      ((f"sum by (cluster, integration) (rate(alertmanager_notifications_total{_sel(ALERTMANAGER)}[{WINDOW}]))",
                        "{{cluster}} {{integration}}"),)),
                Graph("Failed notifications", "ops",
                      ((f"sum by (cluster, integration) (rate(alertmanager_notifications_failed_total{_sel(ALERTMANAGER)}"
                        f"[{WINDOW}]))", "{{cluster}} {{integration}}"),)),
                Graph("Cluster members", "short",
                      ((f"min by (cluster) (alertmanager_cluster_members{_sel(ALERTMANAGER)})", "{{cluster}}"),))]),
        ]),
        "thanos-caches": ("Thanos / Caches", [
            ("Memcached", [
                Graph("Hit ratio", "percentunit",
                      ((f'sum by (cluster, job) (rate(memcached_commands_total{cache_hits}[{WINDOW}])) / '
                        f'sum by (cluster, job) (rate(memcached_commands_total{cache_gets}[{WINDOW}]))',
                        "{{cluster}} {{job}}"),)),
                Graph("Memory used", "bytes",
                      ((f'sum by (cluster, job) (memcached_current_bytes{caches})', "{{cluster}} {{job}}"),
                       (f'sum by (cluster, job) (memcached_limit_bytes{caches})', "limit {{cluster}} {{job}}"))),
                Graph("Evictions", "ops",
                      ((f'sum by (cluster, job) (rate(memcached_items_evicted_total{caches}[{WINDOW}]))',
                        "{{cluster}} {{job}}"),))]),
        ]),
        "thanos-kubernetes": ("Thanos / Kubernetes resources", [
            ("Pods", [
                Graph("CPU by pod", "short",
                      ((f"sum by (cluster, pod) (namespace_pod:container_cpu_usage_seconds:rate5m{{{SCOPE}}})",
                        "{{cluster}} {{pod}}"),)),
                Graph("Memory by pod", "bytes",
                      ((f"sum by (cluster, pod) (namespace_pod:container_memory_working_set_bytes:sum{{{SCOPE}}})",
                        "{{cluster}} {{pod}}"),)),
                Graph("Restarts", "short",
                      ((f"sum by (cluster, pod) (increase(kube_pod_container_status_restarts_total{{{SCOPE}}}[1h]))",
                        "{{cluster}} {{pod}}"),)),
                Graph("Volume usage", "percentunit",
                      ((f"max by (cluster, persistentvolumeclaim) (kubelet_volume_stats_used_bytes{{{SCOPE}}} / "
                        f"kubelet_volume_stats_capacity_bytes{{{SCOPE}}})", "{{cluster}} {{persistentvolumeclaim}}"),))]),
            ("Nodes", [
                Graph("Node CPU busy", "percentunit",
                      (('1 - avg by (cluster, instance) (rate(node_cpu_seconds_total{mode="idle", cluster=~"$cluster"}'
                        f"[{WINDOW}]))", "{{cluster}} {{instance}}"),)),
                Graph("Node memory available", "percentunit",
                      (('max by (cluster, instance) (node_memory_MemAvailable_bytes{cluster=~"$cluster"} / '
                        'node_memory_MemTotal_bytes{cluster=~"$cluster"})', "{{cluster}} {{instance}}"),))]),
        ]),
    }


def _panel(item: Panel, panel_id: int) -> Builder[dashboard_model.Panel]:
    datasource = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    if isinstance(item, Single):
        return (stat.Panel().id(panel_id).title(item.title).unit(item.unit).datasource(datasource).span(8).height(8)
                .with_target(prometheus.Dataquery().expr(item.query).ref_id("A").instant()))
    panel = timeseries.Panel().id(panel_id).title(item.title).unit(item.unit).datasource(datasource).span(8).height(8)
    for index, (expr, legend) in enumerate(item.queries):
        panel = panel.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + index)))
    return panel


def build_dashboard(uid: str, title: str, rows: list[tuple[str, list[Panel]]]) -> dict:
    """One dashboard as Grafana's JSON model."""
    datasource = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
    builder = (dashboard.Dashboard(title).uid(uid).tags(["thanos"]).refresh("1m").time("now-6h", "now").readonly()
               .with_variable(dashboard.QueryVariable("cluster").label("Cluster").datasource(datasource)
                              .query("label_values(up, cluster)").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                              .multi(True).include_all(True).all_value(".*"))
               .with_variable(dashboard.QueryVariable("namespace").label("Namespace").datasource(datasource)
                              .query('label_values(up{cluster=~"$cluster"}, namespace)')
                              .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True)
                              .all_value(".*")))
    panel_id = 1
    for row_title, panels in rows:
        builder = builder.with_row(dashboard.Row(row_title).id(panel_id))
        panel_id += 1
        for item in panels:
            builder = builder.with_panel(_panel(item, panel_id))
            panel_id += 1
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def all_dashboards() -> dict[str, dict]:
    """uid -> dashboard JSON model, the overview first."""
    boards = {"thanos-overview": build_dashboard("thanos-overview", "Thanos / Overview", overview())}
    for uid, (title, rows) in component_dashboards().items():
        boards[uid] = build_dashboard(uid, title, rows)
    return boards


def panel_queries(board: dict) -> list[str]:
    """Every PromQL expression of a dashboard's panels and variables."""
    exprs = [t["expr"] for p in board.get("panels", []) for t in p.get("targets", []) if t.get("expr")]
    return exprs + [v["query"] for v in board.get("templating", {}).get("list", []) if v.get("type") == "query"]
