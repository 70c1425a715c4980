"""Mutation check: apply curated defects to production code in a temporary copy, run the tests that should notice, and
print which mutations were killed. Every mutation must be killed; a new rule or builder adds its own. Run:
`./run mutate [-j N] [--rules | --curated] [--diff] [ID ...]` (not part of `./run tests`: it takes minutes).

A mutation names the definition it breaks (a function, method, class or module-level name, found by parsing the
product packages wherever it lives now), not a file, and changes only inside it, matched by syntax where it can (an
expression or statement compared as a tree, so reformatting does not matter). Besides the curated list, every policy
the pack serves gets a generated mutation "rule <name> never reports", so a new rule is covered without an edit here.
"""

import argparse
import ast
import difflib
import functools
import inspect
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("capacity", "components", "config", "preflight", "recovery", "policies/thanos_policies")
"""Where mutated definitions are looked up (the product code; the pack's modules by their own package name)."""
PACK = "policies/thanos_policies"
"""The policy pack's package: its `__init__.py` serves `POLICIES`, each with a unique `.name`."""


@dataclass(frozen=True)
class TestGroup:
    """Test files named once: a split or move of test files changes one line here."""

    __test__ = False  # not a pytest class
    name: str
    """What the group is called in the table and in errors."""
    patterns: tuple[str, ...]
    """Globs relative to the project (a directory's tests as `tests/dir/test_*.py`); the group is what they match."""

    def files(self, root: Path = ROOT) -> list[str]:
        """The test files that exist now, in pattern order; none at all is an error."""
        found = [str(p.relative_to(root)) for pattern in self.patterns for p in sorted(root.glob(pattern)) if p.is_file()]
        if not found:
            raise MutationError(f"test group {self.name} matches no file ({', '.join(self.patterns)})")
        return list(dict.fromkeys(found))


def group(name: str, *patterns: str) -> TestGroup:
    return TestGroup(name, patterns)


# The test groups mutations name.
POLICY_TESTS = group("POLICY_TESTS", "tests/policies/test_*.py", "tests/test_policies.py",
                     "tests/test_policy_incidents.py", "tests/test_third_party.py")
POLICY_INCIDENT_TESTS = group("POLICY_INCIDENT_TESTS", "tests/test_policy_incidents.py")
STORAGE_TESTS = group("STORAGE_TESTS", "tests/test_storage.py")
ARTIFACT_TESTS = group("ARTIFACT_TESTS", "tests/test_artifacts.py")
WORKLOAD_TESTS = group("WORKLOAD_TESTS", "tests/test_workloads.py")
OBSERVABILITY_TESTS = group("OBSERVABILITY_TESTS", "tests/test_observability.py")
DAY2_TESTS = group("DAY2_TESTS", "tests/test_day2.py")
GLOBAL_VIEW_TESTS = group("GLOBAL_VIEW_TESTS", "tests/test_global_view.py")
CONFIG_TESTS = group("CONFIG_TESTS", "tests/test_config.py")
PREFLIGHT_TESTS = group("PREFLIGHT_TESTS", "tests/test_preflight.py")
CONFORMANCE_TESTS = group("CONFORMANCE_TESTS", "tests/test_conformance.py")
CAPACITY_TESTS = group("CAPACITY_TESTS", "tests/test_capacity.py")
REAL_ENGINE_TESTS = group("REAL_ENGINE_TESTS", "tests/test_real_engine.py")
DESTRUCTIVE_TESTS = group("DESTRUCTIVE_TESTS", "tests/test_destructive_edits.py")
REAL_DEV_TESTS = group("REAL_DEV_TESTS", "tests/test_real_dev.py")
REAL_ADMIN_API_TESTS = group("REAL_ADMIN_API_TESTS", "tests/test_real_admin_api.py")
REAL_NODE_EXPORTER_TESTS = group("REAL_NODE_EXPORTER_TESTS", "tests/test_real_node_exporter.py")
REAL_TENANCY_TESTS = group("REAL_TENANCY_TESTS", "tests/test_real_tenancy.py")
TRACING_TESTS = group("TRACING_TESTS", "tests/test_tracing.py")
REAL_DISTRIBUTED_TESTS = group("REAL_DISTRIBUTED_TESTS", "tests/test_real_distributed.py")


class MutationError(Exception):
    """A mutation that cannot be applied to the current code (its definition or text missing or ambiguous)."""


@dataclass(frozen=True)
class Edit:
    """One change inside one definition, found by name wherever it lives (see `where`)."""

    where: str
    """The definition: `name`, `Class.method`, `outer.inner`, with `module:` before it where a name alone is
    ambiguous (`module` is the dotted module name or its last parts, e.g. `aws:` or `storage.aws:`). Module-level
    and class-level assigned names count (`HEALTH_PATHS`, `ThanosSpec.zone_spread`). For the pack operators
    (silence, unserve) the policy name or name prefix."""
    kind: str
    """expr (a node compared as a tree, replaced by `new`), text (whitespace-insensitive text, exactly once),
    returns (the body becomes `return new`), drop (a list, tuple, set or call element removed), silence or unserve."""
    old: str = ""
    """What is matched: an expression or statement (expr), text (text), an element (drop); unused by returns."""
    new: str = ""
    """The replacement source (expr, text) or the returned expression (returns)."""


def expr(where: str, old: str, new: str) -> Edit:
    """The one expression or statement in `where` that parses the same as `old` becomes `new` (formatting ignored)."""
    return Edit(where, "expr", old, new)


def text(where: str, old: str, new: str) -> Edit:
    """The one occurrence of `old` in `where` (runs of whitespace and line breaks around punctuation ignored) becomes
    `new`: for what is not one expression (a keyword argument, a comment)."""
    return Edit(where, "text", old, new)


def returns(where: str, value: str) -> Edit:
    """The function's body becomes `return value` (its docstring kept)."""
    return Edit(where, "returns", new=value)


def drop(where: str, element: str) -> Edit:
    """The one element of a list, tuple, set or call in `where` that parses the same as `element` is removed."""
    return Edit(where, "drop", element)


def silence(policy: str) -> Edit:
    """The pack's policy of this name validates nothing (whichever module defines it)."""
    return Edit(policy, "silence")


def unserve(prefix: str) -> Edit:
    """The pack no longer serves the policies whose names start with `prefix`."""
    return Edit(prefix, "unserve")


@dataclass(frozen=True)
class Mutation:
    """One deliberate defect, made of `edits`, that one of `tests` must notice."""

    id: str
    why: str
    edits: tuple[Edit, ...]
    tests: tuple[TestGroup, ...]


def one(id: str, why: str, edit: Edit, *tests: TestGroup) -> Mutation:
    """A mutation of one edit."""
    return Mutation(id, why, (edit,), tests)


CURATED = [
    # What the test audit found (issue 14), one mutation each.
    one("silence-s3-encryption", "a never-fired policy message disabled",
        text("validate_bucket_safety", 'if not _by_bucket(resources, "aws:s3/bucketServerSideEncryptionConfiguration:"',
             'if False and not _by_bucket(resources, "aws:s3/bucketServerSideEncryptionConfiguration:"'), POLICY_TESTS),
    one("tls-deny-every-request", "the TLS-only bucket policy denies TLS requests instead",
        expr("tls_only_bucket_policy", '{"Bool": {"aws:SecureTransport": "false"}}',
             '{"Bool": {"aws:SecureTransport": "true"}}'), STORAGE_TESTS),
    one("kms-key-ignored", "a configured KMS key is ignored (SSE-S3 instead)",
        expr("encryption_rule", '"aws:kms"', '"AES256"'), STORAGE_TESTS),
    Mutation("deprecated-flag-unchecked", "the builders' flag check accepts anything and store emits a deprecated flag",
             (expr("thanos_args", "[p for p in (flag_problem(command, f) for f in flags) if p]", "[]"),
              expr("store_args", 'f"--store.limits.request-samples={spec.samples_limit}"',
                   'f"--store.grpc.series-sample-limit={spec.samples_limit}"')),
             (ARTIFACT_TESTS,)),
    one("hashring-empty", "the receive hashring lists no endpoint",
        expr("hashring", '{"hashring": ring.name, "tenants": list(ring.tenants), "algorithm": "ketama", '
                         '"endpoints": endpoints}',
             '{"hashring": ring.name, "tenants": list(ring.tenants), "algorithm": "ketama", "endpoints": []}'),
        ARTIFACT_TESTS, WORKLOAD_TESTS),
    one("violation-without-level", "a violation record loses its level",
        returns("Violation.to_json", '{"policy": self.policy, "urn": self.urn, "message": self.message}'),
        POLICY_INCIDENT_TESTS),
    one("policy-not-served", "the pack stops serving the storage policies", unserve("thanos-storage-"), POLICY_TESTS),
    one("unknowns-skipped", "a value computed at apply skips the rule again (the engine's advisory note)",
        expr("judge_unknowns", '(args.get_config() or {}).get(UNKNOWN_VALUES) == "note"', "True"), POLICY_TESTS),
    one("misspelled-manifest-field", "a manifest field the Kubernetes schema does not have",
        expr("service_spec", 'spec.update(clusterIP="None", publishNotReadyAddresses=False)',
             'spec.update(clusterIP="None", publishNotReadyAdresses=False)'), ARTIFACT_TESTS),
    one("incident-message-changed", "an incident's message says something else",
        text("validate_compactor", '"produces overlapping blocks and halts compaction."',
             '"produces overlapping blocks."'), POLICY_TESTS),
    # One per policy domain.
    one("ha-zone-spread-ignored", "ha: any workload counts as zone-spread", returns("_spreads_zones", "True"),
        POLICY_TESTS),
    one("ha-pdb-blocking-accepted", "ha: a PDB that allows no disruption passes",
        expr("validate_pdb", 'spec.get("maxUnavailable") == 0', 'spec.get("maxUnavailable") == -1'), POLICY_TESTS),
    one("retention-floor-ignored", "retention: the raw floor is not enforced",
        expr("validate_retention", "raw < floor", "raw < floor / 100"), POLICY_TESTS),
    one("compactor-two-replicas-allowed", "compactor: two replicas pass",
        expr("validate_compactor", "replicas(args.props) > 1", "replicas(args.props) > 2"), POLICY_TESTS),
    one("replica-labels-unchecked", "producers: query may miss a replica label",
        expr("validate_replica_labels", "missing = sorted(producers.get(provider_of(query), set()) - labels)",
             "missing = []"), POLICY_TESTS),
    one("store-gap-accepted", "store: a gap between time partitions passes",
        expr("validate_store_coverage", "older[1] is None or newer[0] is None or newer[0] <= older[1]",
             "older[1] is None or newer[0] is None"), POLICY_TESTS),
    one("receive-spare-ignored", "producers: no spare ingestor passes",
        expr("validate_receive_ring", "endpoints < int(factor[0]) + spare", "endpoints < int(factor[0])"),
        POLICY_TESTS),
    one("deprecated-flags-accepted", "flags: deprecated flags pass",
        expr("validate_flags", 'base in known["deprecated"]', "base in []"), POLICY_TESTS),
    one("storage-versioning-unchecked", "storage: an unversioned S3 bucket passes",
        expr("validate_bucket_safety",
             'not any((v.props.get("versioningConfiguration") or {}).get("status") == "Enabled" for v in versioning)',
             "False"), POLICY_TESTS),
    one("identity-store-may-delete", "identity: a non-compactor role that deletes passes",
        expr("validate_only_compactor_deletes",
             'component and component != "compactor" and any(a in DELETE_ACTIONS for a in granted)', "False"),
        POLICY_TESTS),
    one("static-keys-accepted", "identity: static cloud keys in a Secret pass",
        expr("validate_objstore_secrecy", "any(config.get(k) for k in STATIC_KEYS)", "any(config.get(k) for k in ())"),
        POLICY_TESTS),
    one("hardening-writable-root", "hardening: a writable root filesystem passes",
        expr("validate_hardening",
             'not ctx.get("readOnlyRootFilesystem") or ctx.get("allowPrivilegeEscalation") is not False', "False"),
        POLICY_TESTS),
    one("placeholder-accepted", "wiring: an unfilled <PLACEHOLDER> address passes",
        expr("validate_references", "_PLACEHOLDER.search(address)", "False"), POLICY_TESTS),
    one("ingestor-router-unlimited", "limits: a RouterIngestor (hashrings-file and a local endpoint) passes without limits",
        expr("validate_receive_limits",
             'command != "receive" or not (flag(flags, "receive.hashrings") or flag(flags, "receive.hashrings-file"))',
             'command != "receive" or not flag(flags, "receive.hashrings")'), POLICY_TESTS),
    one("workload-scrape-unlimited", "limits: a job over every namespace's pods passes without sample_limit",
        returns("_scrapes_workloads", "False"), POLICY_TESTS),
    one("head-series-above-request-accepted", "config: a request-series limit above head-series passes",
        expr("limit_problems", "limits.head_series and limits.request_series > limits.head_series", "False"),
        CONFIG_TESTS),
    one("replicate-onto-itself", "wiring: tools bucket replicate onto its own source passes",
        expr("validate_references", "source and source == target_bucket", "source and source != source"),
        POLICY_TESTS),
    one("stacked-query-unseen", "exposure: a query over other clusters is taken for a local one",
        expr("_stacked", '".svc" not in host', '".svc" in host'), POLICY_TESTS),
    one("health-path-opens-everything", "exposure: any Exact path passes as a health check",
        expr("HEALTH_PATHS", '{"/-/ready", "/-/healthy"}', '{"/-/ready", "/-/healthy", "*"}'), POLICY_TESTS),
    one("alerts-sent-nowhere", "alerting: a ruler with alerting rules and no Alertmanager passes",
        expr("validate_alertmanagers", "alerts and not addresses and not pairs", "False"), POLICY_TESTS),
    one("dangling-alertmanager", "alerting: an Alertmanager address the stack does not create passes",
        expr("validate_alertmanagers", "shown and service not in shown", "False"), POLICY_TESTS),
    one("receiver-secret-in-config-map", "alerting: a receiver's literal credential in a ConfigMap passes",
        expr("_credentials", "key in CREDENTIAL_KEYS and isinstance(value, str) and value", "False"), POLICY_TESTS),
    one("query-endpoints-loose", "the plan's queries list their StoreAPIs without strict (a dead one vanishes silently)",
        expr("endpoint_sd_config", '{"address": address, "strict": True}', '{"address": address}'), POLICY_TESTS),
    one("receive-dedup-penalty-accepted", "answers: a query deduplicating only receive copies with penalty passes",
        expr("validate_dedup_func", 'function == "penalty" and receive_only', "False"), POLICY_TESTS),
    one("store-cache-headless-accepted", "wiring: memcached addresses over a headless Service pass",
        expr("_waits_for_a_ready_pod", 'service is None or (service.props.get("spec") or {}).get("clusterIP") == "None"',
             "service is None"), POLICY_TESTS),
    one("vertical-compaction-everywhere", "the compactor of every stream deduplicates receive replicas (vertical "
        "compaction merges overlaps in Prometheus streams too)",
        expr("build_compactor", '(NAME, "compactor", [], shard_selector(receive=False) if dedup_replica_labels else None)',
             '(NAME, "compactor", dedup_replica_labels, shard_selector(receive=False) if dedup_replica_labels else None)'),
        WORKLOAD_TESTS),
    one("monitors-from-every-namespace", "operator mode takes ServiceMonitors from every namespace again",
        text("prometheus_resource", '"serviceMonitorNamespaceSelector": own_namespace,',
             '"serviceMonitorNamespaceSelector": {},'), POLICY_TESTS),
    one("store-cache-srv", "the plan's cache clients go back to SRV over the headless Service (no cache pod: no start)",
        returns("memcached_addresses", '[f"dnssrv+_memcached._tcp.{pool_name(pool)}.{namespace}.svc.cluster.local"]'),
        WORKLOAD_TESTS),
    # Observability: thresholds, inhibition, deduplicated alerts, dashboard scoping.
    one("alert-threshold-drift", "a rule's threshold changes (query-frontend errors at 50%)",
        expr("_component_alerts", """_ratio(_rate("http_requests_total", f'job="{QUERY_FRONTEND}", code=~"5.."'),
                                          _rate("http_requests_total", f'job="{QUERY_FRONTEND}"'), "job", 0.05)""",
             """_ratio(_rate("http_requests_total", f'job="{QUERY_FRONTEND}", code=~"5.."'),
                   _rate("http_requests_total", f'job="{QUERY_FRONTEND}"'), "job", 0.5)"""),
        OBSERVABILITY_TESTS),
    one("mixin-selectors-kept", "the mixin's alerts keep upstream's job regexes (the query's match the query-frontend)",
        expr("mixin_alerts", "rule['expr'].replace(upstream, platform)", "rule['expr']"), OBSERVABILITY_TESTS),
    one("inhibition-dropped", "criticals no longer mute the warnings of the same cluster and job",
        expr("alertmanager_config", "SEVERITIES[:-1]", "SEVERITIES[:0]"), OBSERVABILITY_TESTS),
    one("replica-label-on-alerts", "the Prometheus pair sends its alerts with the replica label (each one twice)",
        drop("prometheus_config", '{"action": "labeldrop", "regex": PROMETHEUS_REPLICA_LABEL}'), OBSERVABILITY_TESTS),
    one("dashboard-unscoped", "dashboard queries ignore the cluster variable",
        expr("dashboards:SCOPE", """'cluster=~"$cluster", namespace=~"$namespace"'""", """'namespace=~"$namespace"'"""),
        OBSERVABILITY_TESTS),
    # Day 2: the switch order, the upgrade order, the validation script.
    one("compactor-moves-first", "the compactor no longer waits for the replication stream to stop",
        expr("ThanosCluster", "stage + list(self._access.switch_after)", "stage"), DAY2_TESTS),
    one("replication-left-on", "the S3 replication rule stays enabled after a switch to the DR copy",
        expr("replication_rule", '"Enabled" if enabled else "Disabled"', '"Enabled"'), DAY2_TESTS),
    one("azure-replication-left-on", "the Azure replication rule keeps matching every blob after a switch",
        expr("AzureObjectStore", "[] if running else [PAUSED_PREFIX]", "[]"), DAY2_TESTS),
    one("store-before-compactor", "the store gateway no longer waits for the compactor on an upgrade",
        expr("ThanosCluster", "StoreArgs(ctx, thanos.store, thanos.caches, pod_labels, depends_on=stage)",
             "StoreArgs(ctx, thanos.store, thanos.caches, pod_labels, depends_on=self.ready)"), DAY2_TESTS),
    one("errored-stores-count", "the validation counts a StoreAPI with an error as healthy",
        expr("check_stores", '[e for e in entries if not e.get("lastError")]', "entries"), DAY2_TESTS),
    # The reading layer every rule shares (anyone's Thanos).
    one("flag-value-form-unread", "`--flag value` is read as two flags again",
        expr("normalise_flags", 'takes or (takes is None and not following.startswith("-"))', "False"),
        POLICY_TESTS),
    one("pod-name-fieldref-unread", "a replica label from a fieldRef to the pod's name is not recognised",
        expr("_workloads:environment", "values[name] = POD_NAME", "values[name] = name"), POLICY_TESTS),
    one("secret-env-unread", "an objstore config from a Secret through env counts as inline again",
        expr("validate_objstore_secrecy", 'not value.startswith("$(")', "True"), POLICY_TESTS),
    one("bitnami-image-invisible", "Thanos is recognised only by the quay.io image path again",
        returns("_is_thanos_image", '(image or "").startswith("quay.io/thanos/thanos:")'), POLICY_TESTS),
    one("unsharded-store-gap", "an unsharded store beside hash shards is read as a coverage gap",
        expr("validate_store_coverage", "(1, 0) in shard_list", "False"), POLICY_TESTS),
    one("deprecations-of-another-release", "flags of another release are judged with v0.42.4's table",
        expr("validate_flags", "version != PINNED", "False"), POLICY_TESTS),
    one("chunk-pool-unchecked", "a chunk pool above the memory limit passes",
        expr("validate_store_limits", "limit and _thanos_bytes(pool) >= _bytes(limit)", "False"), POLICY_TESTS),
    one("findings-repeated", "one problem is reported once per occurrence again",
        expr("deduplicated", "(message, urn) in seen", "False"), POLICY_TESTS),
    # Builders, config and the tools around them.
    one("compactor-scaled", "the compactor StatefulSet runs two replicas",
        text("build_compactor", 'kind="StatefulSet", replicas=1,', 'kind="StatefulSet", replicas=2,'), WORKLOAD_TESTS),
    one("gcs-writer-cannot-delete", "GCS writers lose delete (a failed upload is never replaced)",
        drop("WRITER_PERMISSIONS", '"storage.objects.delete"'), STORAGE_TESTS),
    one("zone-spread-best-effort", "zone spread defaults to ScheduleAnyway",
        expr("ThanosSpec.zone_spread", 'zone_spread: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"',
             'zone_spread: Literal["DoNotSchedule", "ScheduleAnyway"] = "ScheduleAnyway"'), WORKLOAD_TESTS),
    one("azure-deletes-accepted", "Azure silently accepts replicate-deletes again",
        expr("AzureStorage._no_delete_replication",
             'self.replication and "replicate_deletes" in self.replication.model_fields_set', "False"), CONFIG_TESTS),
    one("manifests-dir-unchecked", "preflight writes into a directory it did not create",
        expr("check_manifest_dir",
             "directory.is_dir() and any(directory.iterdir()) and owned_files(directory) is None", "False"),
        PREFLIGHT_TESTS),
    one("stale-user-file-removed", "preflight removes files it did not write",
        expr("write_manifests", "previous - set(planned)", "set(directory.rglob('*.md')) | (previous - set(planned))"),
        PREFLIGHT_TESTS),
    one("conformance-blind", "the conformance check accepts unknown nested properties",
        expr("Walker.object", "key not in ignore", "False"), CONFORMANCE_TESTS),
    one("capacity-no-slack", "the planner forgets that retention deletes whole blocks",
        expr("bucket_plan", "n * per_day[name] * (days + c.block_slack_days)", "n * per_day[name] * days"),
        CAPACITY_TESTS),
    one("capacity-too-small-accepted", "an explicit size below the capacity plan passes",
        expr("apply_capacity", "have < need", "have < need / 10"), CAPACITY_TESTS),
    one("invoke-default-provider", "the Azure invoke goes to the default provider again",
        expr("AzureObjectStore", "azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions("
             "provider=args.provider))", "azure.authorization.get_client_config_output()"), CONFORMANCE_TESTS),
    one("preview-blind", "a preview that cannot see an objstore config stays silent",
        text("validate_preview_coverage", "if where:", "if False:"), POLICY_TESTS),
    one("secret-keys-hidden", "a Secret's whole stringData becomes one secret again (unknown keys in a preview)",
        expr("kube:register", '(api_version, kind) == ("v1", "Secret")', "False"), REAL_ENGINE_TESTS),
    one("workload-before-serviceaccount", "workloads no longer wait for their ServiceAccounts and Secrets",
        expr("kube:register", "needs += [(namespace, k, n) for k, n in sorted(pod_references(manifest))]", "needs += []"),
        WORKLOAD_TESTS),
    one("claim-template-replaces", "a bigger claim template replaces the StatefulSet again",
        expr("kube:register", '["spec.volumeClaimTemplates"] if claims else None', "None"), REAL_ENGINE_TESTS),
    # Issue 21: who gets in where.
    one("one-ca-for-all", "a leaf accepts the writers' CA again (a remote writer reads every series)",
        expr("leaf_flags", 'server_tls_flags("readers")', 'server_tls_flags("writers")'),
        GLOBAL_VIEW_TESTS, REAL_DEV_TESTS),
    one("writers-write-marks", "S3 writers may write deletion-mark.json again",
        expr("component_policy", "role == WRITER", "False"), POLICY_TESTS),
    one("dr-unlocked", "the DR copy loses its Object Lock", text("S3Bucket", "if lock_days:", "if False:"),
        POLICY_TESTS, STORAGE_TESTS),
    one("namespace-open", "every pod of a namespace reaches every server again",
        text("baseline_policies", 'egress=[{"to": [{"podSelector": {}}], "ports": internal}]',
             'ingress=[{"from": [{"podSelector": {}}], "ports": internal}], '
             'egress=[{"to": [{"podSelector": {}}], "ports": internal}]'), WORKLOAD_TESTS),
    one("node-exporter-open", "node-exporter answers anyone again",
        drop("build_node_exporter", 'f"--web.config.file={NODE_EXPORTER_WEB_DIR}/web-config.yml"'),
        OBSERVABILITY_TESTS, REAL_NODE_EXPORTER_TESTS),
    Mutation("admin-api-on", "the compactor and store gateways mark blocks for deletion for anyone on their HTTP port",
             (drop("compactor_args", '"--disable-admin-operations"'), drop("store_args", '"--disable-admin-operations"')),
             (REAL_ADMIN_API_TESTS, POLICY_TESTS)),
    # Issue 34: the hashring follows its pods.
    one("ring-before-ingestors", "the hashring ConfigMap no longer waits for the ingestors (a grown ring lists pending pods)",
        expr("Receive", "[*args.depends_on, *(self.objects[f\"StatefulSet/{o['metadata']['name']}\"] for o in ingestors)]",
             "args.depends_on"), DAY2_TESTS, REAL_ENGINE_TESTS),
    one("routers-blind-to-ring", "the routers no longer restart on a new hashring",
        expr("build_receive", "ring_hash(ring)", "''"), WORKLOAD_TESTS),
    one("one-step-shrink-passes", "preflight lets a ring lose endpoints in the step their pods go",
        returns("_goes", "False"), DESTRUCTIVE_TESTS),
    # Issue 34: tenants.
    one("tenant-from-header", "the routers take the tenant from the header the writer sends again",
        expr("router_args", '[f"--receive.tenant-certificate-field={TENANT_CERTIFICATE_FIELD}"] if tenants else []', "[]"),
        GLOBAL_VIEW_TESTS, REAL_TENANCY_TESTS),
    one("tenants-unenforced", "the global query-frontend reads the global query directly again",
        expr("GlobalTier.__init__", 'service_url("http", QUERY_TENANTS, ns, HTTP_PORT)', "None"), GLOBAL_VIEW_TESTS),
    one("scraped-tenant-default", "a workload's scraped series carry the default tenant whatever its namespace",
        expr("tenant_relabelling", "job_name in WORKLOAD_JOBS", "False"), OBSERVABILITY_TESTS, REAL_TENANCY_TESTS),
    # Issue 35: the query engine, distributed mode, tracing.
    one("distributed-on-prometheus-engine", "distributed mode is accepted with the Prometheus engine configured",
        expr("_global_view_problems", 'view.query.promql_engine != "thanos"', "False"), GLOBAL_VIEW_TESTS),
    one("distributed-ruler-as-store", "distributed mode lists the global ruler's StoreAPI directly (its series vanish)",
        expr("global_sd_config", 'view.ruler.enabled and view.mode == "distributed"', "False"), GLOBAL_VIEW_TESTS),
    one("distributed-ruler-unpartitioned", "with the global ruler on, distributed mode partitions by cluster alone",
        expr("GlobalViewSpec.query_partition_labels", "self.ruler.enabled", "False"), GLOBAL_VIEW_TESTS,
        REAL_DISTRIBUTED_TESTS),
    one("distributed-highest-mint", "distributed mode takes a leaf's highest MinTime (an empty TSDB empties answers)",
        drop("global_query_flags", '"--query.distributed-with-overlapping-interval"'), GLOBAL_VIEW_TESTS,
        REAL_DISTRIBUTED_TESTS),
    one("engine-unrendered", "query.promql-engine thanos is not rendered",
        expr("query_args", 'spec.promql_engine != "prometheus"', "False"), GLOBAL_VIEW_TESTS),
    one("untraced", "no container gets --tracing.config", returns("traced", "pod"), TRACING_TESTS),
    one("tracing-egress-missing", "the Thanos pods may not reach the collector",
        expr("baseline_policies", "ctx.tracing is not None", "False"), TRACING_TESTS),
    one("tracing-endpoint-scheme", "an endpoint with a scheme is refused for another reason than its scheme",
        expr("TracingSpec._host_port", '"://" in value', "False"), TRACING_TESTS),
    one("distributed-store-only-endpoints", "a distributed query listing a ruler directly passes",
        expr("validate_distributed_endpoints", 'served and "query" not in served', "False"), POLICY_TESTS),
    one("distributed-unpartitioned-producers", "a distributed query whose leaf reads a ruler outside every partition passes",
        expr("validate_distributed_partitions", "labels and not labels & partition", "False"), POLICY_TESTS),
]


@dataclass(frozen=True)
class Definition:
    """A function, class or module- or class-level assigned name in the product code."""

    path: str
    """Its file, relative to the project."""
    module: str
    """Its dotted module name (the pack's modules as `thanos_policies.x`, the name they import themselves by)."""
    qualname: str
    """Its name inside the module: `f`, `Class.method`, `outer.inner`, `NAME`, `Class.field`."""
    node: ast.AST
    """Its syntax tree, positions in its file."""


@functools.lru_cache(maxsize=1024)
def _parsed(source: str) -> ast.Module:
    return ast.parse(source)


def _module_name(relative: Path, package: str) -> str:
    parts = relative.with_suffix("").parts[len(Path(package).parts) - 1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _defined_in(node: ast.AST, path: str, module: str, prefix: str = ""):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield Definition(path, module, prefix + child.name, child)
            yield from _defined_in(child, path, module, f"{prefix}{child.name}.")
        elif isinstance(child, (ast.Assign, ast.AnnAssign)) and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for target in child.targets if isinstance(child, ast.Assign) else [child.target]:
                if isinstance(target, ast.Name):
                    yield Definition(path, module, prefix + target.id, child)


def definitions(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES, texts: dict[str, str] | None = None
                ) -> list[Definition]:
    """Every definition in `packages` (`texts`: files' contents that differ from the disk, by relative path)."""
    found = []
    for package in packages:
        for file in sorted((root / package).rglob("*.py")):
            relative = str(file.relative_to(root))
            source = (texts or {}).get(relative)
            tree = _parsed(file.read_text() if source is None else source)
            found += _defined_in(tree, relative, _module_name(file.relative_to(root), package))
    return found


def _ends_with(dotted: str, suffix: str) -> bool:
    return dotted == suffix or dotted.endswith("." + suffix)


def resolve(where: str, found: list[Definition]) -> Definition:
    """The one definition `where` names (`[module:]qualified.name`, either part matched by its last dotted parts)."""
    module, _, name = where.rpartition(":")
    matches = [d for d in found if _ends_with(d.qualname, name) and (not module or _ends_with(d.module, module))]
    if len(matches) != 1:
        places = "; ".join(f"{d.module}:{d.qualname} ({d.path}:{d.node.lineno})" for d in matches)
        raise MutationError(f"{where} names {len(matches)} definitions, not one" + (f": {places}" if places else ""))
    return matches[0]


def _offsets(source: str):
    """A function from an AST position (line from 1, UTF-8 byte column) to an index into `source`."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def at(lineno: int, col: int) -> int:
        return starts[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode()) if lineno <= len(lines) else starts[-1]
    return at


def _parse_fragment(fragment: str, edit: Edit) -> ast.AST:
    try:
        return ast.parse(fragment.strip(), mode="eval").body
    except SyntaxError:
        pass
    try:
        body = ast.parse(fragment.strip()).body
    except SyntaxError as error:
        raise MutationError(f"{edit.where}: {fragment!r} is neither an expression nor a statement ({error.msg})") from None
    if len(body) != 1:
        raise MutationError(f"{edit.where}: {fragment!r} is {len(body)} statements, not one")
    return body[0]


def _loose(old: str) -> re.Pattern:
    """`old` with any whitespace between its tokens (at least some between two words, as Python needs)."""
    pattern, previous = "", ""
    for token in re.findall(r"\w+|[^\w\s]", old):
        if previous:
            pattern += r"\s+" if previous[-1:].isidentifier() and token[:1].isidentifier() else r"\s*"
        pattern += re.escape(token)
        previous = token
    return re.compile(pattern)


def _only(matches: list, edit: Edit, what: str):
    if len(matches) != 1:
        raise MutationError(f"{edit.where}: {what} found {len(matches)} times there, not once")
    return matches[0]


def _span(at, node: ast.AST) -> tuple[int, int]:
    return at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset)


def edited(edit: Edit, definition: Definition, source: str) -> str:
    """`source` (the definition's file) with the edit made inside the definition."""
    at = _offsets(source)
    start, end = _span(at, definition.node)
    if edit.kind == "text":
        matches = list(_loose(edit.old).finditer(source, start, end))
        match = _only(matches, edit, repr(edit.old))
        return source[:match.start()] + edit.new + source[match.end():]
    if edit.kind == "expr":
        wanted = ast.dump(_parse_fragment(edit.old, edit))
        node = _only([n for n in ast.walk(definition.node) if ast.dump(n) == wanted], edit, repr(edit.old))
        first, last = _span(at, node)
        return source[:first] + edit.new + source[last:]
    if edit.kind == "returns":
        if not isinstance(definition.node, ast.FunctionDef | ast.AsyncFunctionDef):
            raise MutationError(f"{edit.where} is not a function")
        body = definition.node.body
        docstring = ast.get_docstring(definition.node, clean=False) is not None and len(body) > 1
        first, _ = _span(at, body[1 if docstring else 0])
        _, last = _span(at, body[-1])
        return source[:first] + f"return {edit.new}" + source[last:]
    if edit.kind == "drop":
        wanted = ast.dump(ast.parse(f"[{edit.old.strip()}]", mode="eval").body.elts[0])
        found = [(n.elts, i) for n in ast.walk(definition.node) if isinstance(n, ast.List | ast.Tuple | ast.Set)
                 for i, element in enumerate(n.elts) if ast.dump(element) == wanted]
        elements, i = _only(found, edit, repr(edit.old))
        if i + 1 < len(elements):
            first, last = _span(at, elements[i])[0], _span(at, elements[i + 1])[0]
        elif i:
            first, last = _span(at, elements[i - 1])[1], _span(at, elements[i])[1]
        else:
            first, last = _span(at, elements[i])
        return source[:first] + source[last:]
    raise MutationError(f"{edit.where}: no edit kind {edit.kind!r}")


# Appended to the pack's __init__.py: found by the policy's name when the pack is imported, in whichever module the
# policy lives (the test process, preflight and the analyzer subprocesses all import the pack this way).
SILENCE = """

def _mutation_never_reports(args, report):
    return None


for _mutation_policy in POLICIES:
    if _mutation_policy.name == {name!r}:
        _mutation_policy.validate = _mutation_never_reports
"""
UNSERVE = """

POLICIES = [_mutation_policy for _mutation_policy in POLICIES if not _mutation_policy.name.startswith({name!r})]
"""


@functools.lru_cache(maxsize=1)
def served_policies() -> tuple[str, ...]:
    """The names of the policies the pack serves (imported from this project's pack)."""
    policies = str(ROOT / Path(PACK).parent)
    if policies not in sys.path:
        sys.path.insert(0, policies)
    from thanos_policies import POLICIES

    return tuple(p.name for p in POLICIES)


def mutated_files(mutation: Mutation, root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The files the mutation changes, with their mutated text (edits made in order); MutationError names the
    mutation when an edit no longer applies."""
    texts: dict[str, str] = {}
    try:
        for edit in mutation.edits:
            if edit.kind in ("silence", "unserve"):
                served = served_policies()
                count = sum(n == edit.where if edit.kind == "silence" else n.startswith(edit.where) for n in served)
                if count == 0 or (edit.kind == "silence" and count != 1):
                    raise MutationError(f"the pack serves {count} policies named {edit.where}")
                path = f"{PACK}/__init__.py"
                source = texts.get(path, (root / path).read_text())
                texts[path] = source + (SILENCE if edit.kind == "silence" else UNSERVE).format(name=edit.where)
                continue
            definition = resolve(edit.where, definitions(root, packages, texts))
            source = texts.get(definition.path, (root / definition.path).read_text())
            texts[definition.path] = edited(edit, definition, source)
            if texts[definition.path] == source:
                raise MutationError(f"{edit.where}: the edit changes nothing")
        for path, source in texts.items():
            try:
                ast.parse(source)
            except SyntaxError as error:
                raise MutationError(f"leaves {path} unparsable at line {error.lineno}: {error.msg}") from None
    except MutationError as error:
        raise MutationError(f"{mutation.id}: {error}") from None
    return texts


def rule_mutations() -> list[Mutation]:
    """One per policy the pack serves: that rule never reports, which the pack's tests must notice."""
    return [one(f"silent:{name}", f"rule {name} never reports", silence(name), POLICY_TESTS)
            for name in served_policies()]


def all_mutations() -> list[Mutation]:
    return CURATED + rule_mutations()


def problems_in(mutation: Mutation, root: Path = ROOT) -> list[str]:
    """Why a mutation cannot be applied to the current code or run (the list has gone stale)."""
    problems = []
    try:
        mutated_files(mutation, root)
    except MutationError as error:
        problems.append(str(error))
    for tests in mutation.tests:
        try:
            tests.files(root)
        except MutationError as error:
            problems.append(f"{mutation.id}: {error}")
    return problems


FIRST = "MUTATE_TESTS_FIRST"
"""Environment variable: tests whose source or id mentions this text run first (a rule's name: its own tests)."""


def pytest_collection_modifyitems(items) -> None:
    """Loaded by the mutation's pytest (`-p ci.mutate`): the tests most likely to kill it first, so `-x` stops early.
    The verdict is the same (every test still runs until one fails); only the order changes."""
    first = os.environ.get(FIRST)
    if first:
        items.sort(key=lambda item: not (first in item.nodeid or first in _source(item)))


def _source(item) -> str:
    try:
        return inspect.getsource(item.function)
    except (AttributeError, OSError, TypeError):
        return ""


def tracked_files() -> list[str]:
    """The project's files as git sees them (tracked, plus new ones not ignored)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


def copy_project(target: Path) -> None:
    for name in tracked_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination)


def run_one(mutation: Mutation, copy: Path, python: str) -> tuple[Mutation, str, float]:
    """Apply, test, restore; the verdict is killed, survived, timeout or stale."""
    try:
        texts = mutated_files(mutation, copy)
        tests = list(dict.fromkeys(f for group in mutation.tests for f in group.files(copy)))
    except MutationError as error:
        print(error, file=sys.stderr)
        return mutation, "stale", 0.0
    originals = {path: (copy / path).read_text() for path in texts}
    for path, source in texts.items():
        (copy / path).write_text(source)
    start = time.perf_counter()
    try:
        first = [e.where for e in mutation.edits if e.kind == "silence"]
        proc = subprocess.run([python, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-p", "ci.mutate",
                               *tests], cwd=copy, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", FIRST: first[0] if first else ""})
        verdict = "killed" if proc.returncode not in (0, 5) else "survived"
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    finally:
        for path, source in originals.items():
            (copy / path).write_text(source)
    return mutation, verdict, time.perf_counter() - start


def show(mutations: list[Mutation]) -> int:
    """Print what each mutation changes (to check a new one before running it)."""
    stale = 0
    for mutation in mutations:
        print(f"# {mutation.id}: {mutation.why}")
        try:
            texts = mutated_files(mutation)
        except MutationError as error:
            print(error)
            stale += 1
            continue
        for path, source in texts.items():
            sys.stdout.writelines(difflib.unified_diff((ROOT / path).read_text().splitlines(keepends=True),
                                                       source.splitlines(keepends=True), path, path, n=1))
    return 1 if stale else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./run mutate", description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="only these mutations (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutations tested at once (one copy each)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--curated", action="store_true", help="only the curated list")
    only.add_argument("--rules", action="store_true", help="only the generated rule-id set (each rule silenced)")
    parser.add_argument("--diff", action="store_true", help="print each mutation's diff instead of running it")
    args = parser.parse_args(argv)
    every = CURATED if args.curated else rule_mutations() if args.rules else all_mutations()
    chosen = [m for m in every if not args.ids or m.id in args.ids]
    unknown = set(args.ids) - {m.id for m in every}
    if unknown:
        print(f"no mutation named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.diff:
        return show(chosen)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        copies = []
        for i in range(max(1, args.jobs)):
            copies.append(Path(tmp) / f"copy{i}")
            copy_project(copies[-1])
        free: queue.Queue[Path] = queue.Queue()
        for copy in copies:
            free.put(copy)

        def work(mutation: Mutation) -> tuple[Mutation, str, float]:
            """On whichever copy is free (a slow real-tool mutation does not hold up a fixed share of the list)."""
            copy = free.get()
            try:
                return run_one(mutation, copy, sys.executable)
            finally:
                free.put(copy)

        with ThreadPoolExecutor(len(copies)) as pool:
            results = list(pool.map(work, chosen))
    width = max(len(m.id) for m in chosen)
    print(f"{'mutation':<{width}}  verdict   seconds  what it breaks")
    for mutation, verdict, seconds in results:
        print(f"{mutation.id:<{width}}  {verdict:<8}  {seconds:7.1f}  {mutation.why}")
    killed = sum(v == "killed" for _, v, _ in results)
    print(f"{killed} of {len(results)} mutations killed in {time.perf_counter() - began:.0f} s")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
