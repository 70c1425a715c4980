"""Mutation check: apply curated one-line mutations to production code in a temporary copy, run the tests that should
notice, and print which mutations were killed. Every mutation in the list must be killed; a new rule or builder adds
its own. Run: `./run mutate [-j N] [ID ...]` (not part of `./run tests`: it takes minutes).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY_TESTS = ("tests/test_policies.py", "tests/test_policy_incidents.py", "tests/test_third_party.py")


@dataclass(frozen=True)
class Mutation:
    """One deliberate defect: `edits` are (file, exact text, replacement), each text found exactly once."""

    id: str
    why: str
    edits: tuple[tuple[str, str, str], ...]
    tests: tuple[str, ...]


def one(id: str, why: str, path: str, old: str, new: str, *tests: str) -> Mutation:
    """A mutation of one line."""
    return Mutation(id, why, ((path, old, new),), tests)


MUTATIONS = [
    # What the test audit found (issue 14), one mutation each.
    one("silence-s3-encryption", "a never-fired policy message disabled",
        "policies/thanos_policies/platform.py", 'if not _by_bucket(resources, "aws:s3/bucketServerSideEncryptionConfiguration:"',
        'if False and not _by_bucket(resources, "aws:s3/bucketServerSideEncryptionConfiguration:"', *POLICY_TESTS),
    one("tls-deny-every-request", "the TLS-only bucket policy denies TLS requests instead",
        "components/storage/aws.py", '"Condition": {"Bool": {"aws:SecureTransport": "false"}}',
        '"Condition": {"Bool": {"aws:SecureTransport": "true"}}', "tests/test_storage.py"),
    one("kms-key-ignored", "a configured KMS key is ignored (SSE-S3 instead)",
        "components/storage/aws.py", 'return {"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",',
        'return {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256",', "tests/test_storage.py"),
    Mutation("deprecated-flag-unchecked", "the builders' flag check accepts anything and store emits a deprecated flag",
             (("components/thanos/flags.py", "    problems = [p for p in (flag_problem(command, f) for f in flags) if p]",
               "    problems = []"),
              ("components/thanos/store.py", 'f"--store.limits.request-samples={spec.samples_limit}"',
               'f"--store.grpc.series-sample-limit={spec.samples_limit}"')),
             ("tests/test_artifacts.py",)),
    one("hashring-empty", "the receive hashring lists no endpoint",
        "components/thanos/receive.py",
        '    return [{"hashring": "default", "tenants": [], "algorithm": "ketama", "endpoints": endpoints}]',
        '    return [{"hashring": "default", "tenants": [], "algorithm": "ketama", "endpoints": []}]',
        "tests/test_artifacts.py", "tests/test_workloads.py"),
    one("violation-without-level", "a violation record loses its level",
        "preflight/policy.py", 'return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}',
        'return {"policy": self.policy, "urn": self.urn, "message": self.message}', "tests/test_policy_incidents.py"),
    one("policy-not-served", "the pack stops serving the platform policies",
        "policies/thanos_policies/__init__.py",
        "*ha.POLICIES, *thanos.POLICIES, *platform.POLICIES, *wiring.POLICIES,",
        "*ha.POLICIES, *thanos.POLICIES, *wiring.POLICIES,",
        *POLICY_TESTS),
    one("unknowns-skipped", "a value computed at apply skips the rule again (the engine's advisory note)",
        "policies/thanos_policies/preview.py", 'if (args.get_config() or {}).get(UNKNOWN_VALUES) == "note":',
        "if True:", *POLICY_TESTS),
    one("misspelled-manifest-field", "a manifest field the Kubernetes schema does not have",
        "components/platform/common.py", 'spec.update(clusterIP="None", publishNotReadyAddresses=False)',
        'spec.update(clusterIP="None", publishNotReadyAdresses=False)', "tests/test_artifacts.py"),
    one("incident-message-changed", "an incident's message says something else",
        "policies/thanos_policies/thanos.py", '"produces overlapping blocks and halts compaction."',
        '"produces overlapping blocks."', *POLICY_TESTS),
    # One per policy domain.
    one("ha-zone-spread-ignored", "ha: any workload counts as zone-spread",
        "policies/thanos_policies/ha.py", "    return ZONE in terms", "    return True", *POLICY_TESTS),
    one("ha-pdb-blocking-accepted", "ha: a PDB that allows no disruption passes",
        "policies/thanos_policies/ha.py", 'if spec.get("maxUnavailable") == 0 or', 'if spec.get("maxUnavailable") == -1 or',
        *POLICY_TESTS),
    one("retention-floor-ignored", "retention: the raw floor is not enforced",
        "policies/thanos_policies/thanos.py", "        if raw and raw < floor:", "        if raw and raw < floor / 100:",
        *POLICY_TESTS),
    one("compactor-two-replicas-allowed", "compactor: two replicas pass",
        "policies/thanos_policies/thanos.py", "        if replicas(args.props) > 1:", "        if replicas(args.props) > 2:",
        *POLICY_TESTS),
    one("replica-labels-unchecked", "producers: query may miss a replica label",
        "policies/thanos_policies/thanos.py", "        missing = sorted(producers.get(provider_of(query), set()) - labels)",
        "        missing = []", *POLICY_TESTS),
    one("store-gap-accepted", "store: a gap between time partitions passes",
        "policies/thanos_policies/thanos.py", "if older[1] is None or newer[0] is None or newer[0] <= older[1]:",
        "if older[1] is None or newer[0] is None:", *POLICY_TESTS),
    one("receive-spare-ignored", "producers: no spare ingestor passes",
        "policies/thanos_policies/thanos.py", "            elif endpoints < int(factor[0]) + spare:",
        "            elif endpoints < int(factor[0]):", *POLICY_TESTS),
    one("deprecated-flags-accepted", "flags: deprecated flags pass",
        "policies/thanos_policies/thanos.py", "            elif base in known[\"deprecated\"]:",
        "            elif base in []:", *POLICY_TESTS),
    one("storage-versioning-unchecked", "storage: an unversioned S3 bucket passes",
        "policies/thanos_policies/platform.py", 'for v in versioning):', 'for v in versioning) or True:', *POLICY_TESTS),
    one("identity-store-may-delete", "identity: a non-compactor role that deletes passes",
        "policies/thanos_policies/platform.py", 'if component and component != "compactor" and any(a in DELETE_ACTIONS',
        'if component and component == "nobody" and any(a in DELETE_ACTIONS', *POLICY_TESTS),
    one("static-keys-accepted", "identity: static cloud keys in a Secret pass",
        "policies/thanos_policies/platform.py", "if cloud and any(config.get(k) for k in STATIC_KEYS):",
        "if cloud and any(config.get(k) for k in ()):", *POLICY_TESTS),
    one("hardening-writable-root", "hardening: a writable root filesystem passes",
        "policies/thanos_policies/platform.py", 'if not ctx.get("readOnlyRootFilesystem") or',
        'if False and not ctx.get("readOnlyRootFilesystem") or', *POLICY_TESTS),
    one("placeholder-accepted", "wiring: an unfilled <PLACEHOLDER> address passes",
        "policies/thanos_policies/wiring.py", "                if _PLACEHOLDER.search(address):",
        "                if False:", *POLICY_TESTS),
    one("replicate-onto-itself", "wiring: tools bucket replicate onto its own source passes",
        "policies/thanos_policies/wiring.py", "                if source and source == target_bucket:",
        "                if source and source != source:", *POLICY_TESTS),
    one("stacked-query-unseen", "exposure: a query over other clusters is taken for a local one",
        "policies/thanos_policies/exposure.py", '        if "." in host.rstrip(".") and ".svc" not in host:',
        '        if "." in host.rstrip(".") and ".svc" in host:', *POLICY_TESTS),
    one("health-path-opens-everything", "exposure: any Exact path passes as a health check",
        "policies/thanos_policies/exposure.py", "HEALTH_PATHS = {\"/-/ready\", \"/-/healthy\"}",
        "HEALTH_PATHS = {\"/-/ready\", \"/-/healthy\", \"*\"}", *POLICY_TESTS),
    one("alerts-sent-nowhere", "alerting: a ruler with alerting rules and no Alertmanager passes",
        "policies/thanos_policies/alerting.py", "        if alerts and not addresses and not pairs:", "        if False:",
        *POLICY_TESTS),
    one("dangling-alertmanager", "alerting: an Alertmanager address the stack does not create passes",
        "policies/thanos_policies/alerting.py", "            if shown and service not in shown:", "            if False:",
        *POLICY_TESTS),
    one("receiver-secret-in-config-map", "alerting: a receiver's literal credential in a ConfigMap passes",
        "policies/thanos_policies/alerting.py", "            if key in CREDENTIAL_KEYS and isinstance(value, str) and value:",
        "            if False:", *POLICY_TESTS),
    one("query-endpoints-loose", "the plan's queries list their StoreAPIs without strict (a dead one vanishes silently)",
        "components/thanos/query.py", 'return {"endpoints": [{"address": address, "strict": True} for address in endpoints]}',
        'return {"endpoints": [{"address": address} for address in endpoints]}', "tests/test_policies.py"),
    one("receive-dedup-penalty-accepted", "answers: a query deduplicating only receive copies with penalty passes",
        "policies/thanos_policies/answers.py", "        if function == \"penalty\" and receive_only:", "        if False:",
        *POLICY_TESTS),
    one("store-cache-headless-accepted", "wiring: memcached addresses over a headless Service pass",
        "policies/thanos_policies/wiring.py",
        '    return service is None or (service.props.get("spec") or {}).get("clusterIP") == "None"',
        "    return service is None", *POLICY_TESTS),
    one("vertical-compaction-everywhere", "the compactor of every stream deduplicates receive replicas (vertical "
        "compaction merges overlaps in Prometheus streams too)", "components/thanos/compactor.py",
        'shards = [(NAME, "compactor", [], shard_selector(receive=False) if dedup_replica_labels else None)]',
        'shards = [(NAME, "compactor", dedup_replica_labels, shard_selector(receive=False) if dedup_replica_labels else None)]',
        "tests/test_workloads.py"),
    one("monitors-from-every-namespace", "operator mode takes ServiceMonitors from every namespace again",
        "components/observability/operator.py",
        '"serviceMonitorSelector": selected, "serviceMonitorNamespaceSelector": own_namespace,',
        '"serviceMonitorSelector": selected, "serviceMonitorNamespaceSelector": {},', *POLICY_TESTS),
    one("store-cache-srv", "the plan's cache clients go back to SRV over the headless Service (no cache pod: no start)",
        "components/thanos/memcached.py",
        'return [f"{pool_name(pool)}-{i}.{namespace}.svc.cluster.local:{MEMCACHED_PORT}" for i in range(spec.replicas)]',
        'return [f"dnssrv+_memcached._tcp.{pool_name(pool)}.{namespace}.svc.cluster.local"]',
        "tests/test_workloads.py"),
    # Observability: thresholds, inhibition, deduplicated alerts, dashboard scoping.
    one("alert-threshold-drift", "a rule's threshold changes (receive forward failures at 40%)",
        "components/observability/rules.py", '_rate("thanos_receive_forward_requests_total", receive), "job", 0.2),',
        '_rate("thanos_receive_forward_requests_total", receive), "job", 0.4),', "tests/test_observability.py"),
    one("inhibition-dropped", "criticals no longer mute the warnings of the same cluster and job",
        "components/observability/alertmanager.py", "for i, stronger in enumerate(SEVERITIES[:-1])]",
        "for i, stronger in enumerate(SEVERITIES[:0])]", "tests/test_observability.py"),
    one("replica-label-on-alerts", "the Prometheus pair sends its alerts with the replica label (each one twice)",
        "components/thanos/prometheus.py",
        '"alert_relabel_configs": [{"action": "labeldrop", "regex": PROMETHEUS_REPLICA_LABEL}],',
        '"alert_relabel_configs": [],', "tests/test_observability.py"),
    one("dashboard-unscoped", "dashboard queries ignore the cluster variable",
        "components/observability/dashboards.py", """SCOPE = 'cluster=~"$cluster", namespace=~"$namespace"'""",
        """SCOPE = 'namespace=~"$namespace"'""", "tests/test_observability.py"),
    # Day 2: the switch order, the upgrade order, the validation script.
    one("compactor-moves-first", "the compactor no longer waits for the replication stream to stop",
        "components/cluster.py", "depends_on=stage + list(self._access.switch_after)), self._child())]",
        "depends_on=stage), self._child())]", "tests/test_day2.py"),
    one("replication-left-on", "the S3 replication rule stays enabled after a switch to the DR copy",
        "components/storage/aws.py", '"status": "Enabled" if enabled else "Disabled"', '"status": "Enabled"',
        "tests/test_day2.py"),
    one("azure-replication-left-on", "the Azure replication rule keeps matching every blob after a switch",
        "components/storage/azure.py", '"filters": {"prefix_match": [] if running else [PAUSED_PREFIX]}}',
        '"filters": {"prefix_match": []}}', "tests/test_day2.py"),
    one("store-before-compactor", "the store gateway no longer waits for the compactor on an upgrade",
        "components/cluster.py",
        'StoreArgs(ctx, thanos.store, thanos.caches, pod_labels, depends_on=stage)',
        'StoreArgs(ctx, thanos.store, thanos.caches, pod_labels, depends_on=self.ready)',
        "tests/test_day2.py"),
    one("errored-stores-count", "the validation counts a StoreAPI with an error as healthy",
        "components/operations/validate_deploy.py", '        healthy = [e for e in entries if not e.get("lastError")]',
        "        healthy = entries", "tests/test_day2.py"),
    # The reading layer every rule shares (anyone's Thanos).
    one("flag-value-form-unread", "`--flag value` is read as two flags again",
        "policies/thanos_policies/workloads.py", "            if takes or (takes is None and not following.startswith(\"-\")):",
        "            if False:", *POLICY_TESTS),
    one("pod-name-fieldref-unread", "a replica label from a fieldRef to the pod's name is not recognised",
        "policies/thanos_policies/workloads.py", "            values[name] = POD_NAME", "            values[name] = name",
        *POLICY_TESTS),
    one("secret-env-unread", "an objstore config from a Secret through env counts as inline again",
        "policies/thanos_policies/platform.py", 'if any(not value.startswith("$(") for value in flag(flags, "objstore.config")):',
        'if any(True for value in flag(flags, "objstore.config")):', *POLICY_TESTS),
    one("bitnami-image-invisible", "Thanos is recognised only by the quay.io image path again",
        "policies/thanos_policies/workloads.py", '    return last.split(":", 1)[0] == "thanos"',
        '    return (image or "").startswith("quay.io/thanos/thanos:")', *POLICY_TESTS),
    one("unsharded-store-gap", "an unsharded store beside hash shards is read as a coverage gap",
        "policies/thanos_policies/thanos.py", "            if (1, 0) in shard_list:", "            if False:",
        *POLICY_TESTS),
    one("deprecations-of-another-release", "flags of another release are judged with v0.42.4's table",
        "policies/thanos_policies/thanos.py", "            if version != PINNED:", "            if False:",
        *POLICY_TESTS),
    one("chunk-pool-unchecked", "a chunk pool above the memory limit passes",
        "policies/thanos_policies/thanos.py", "        if limit and _thanos_bytes(pool) >= _bytes(limit):",
        "        if False:", *POLICY_TESTS),
    one("findings-repeated", "one problem is reported once per occurrence again",
        "policies/thanos_policies/workloads.py", "            if (message, urn) in seen:", "            if False:",
        *POLICY_TESTS),
    # Builders, config and the tools around them.
    one("compactor-scaled", "the compactor StatefulSet runs two replicas",
        "components/thanos/compactor.py", 'kind="StatefulSet", replicas=1,', 'kind="StatefulSet", replicas=2,',
        "tests/test_workloads.py"),
    one("gcs-writer-cannot-delete", "GCS writers lose delete (a failed upload is never replaced)",
        "components/storage/gcp.py", '"storage.objects.create", "storage.objects.delete", "storage.objects.get",',
        '"storage.objects.create", "storage.objects.get",',
        "tests/test_storage.py"),
    one("zone-spread-best-effort", "zone spread defaults to ScheduleAnyway",
        "config/thanos.py", 'zone_spread: Literal["DoNotSchedule", "ScheduleAnyway"] = "DoNotSchedule"',
        'zone_spread: Literal["DoNotSchedule", "ScheduleAnyway"] = "ScheduleAnyway"', "tests/test_workloads.py"),
    one("azure-deletes-accepted", "Azure silently accepts replicate-deletes again",
        "config/storage.py", 'if self.replication and "replicate_deletes" in self.replication.model_fields_set:',
        "if False:", "tests/test_config.py"),
    one("manifests-dir-unchecked", "preflight writes into a directory it did not create",
        "preflight/manifests.py", "    if directory.is_dir() and any(directory.iterdir()) and owned_files(directory) is None:",
        "    if False:", "tests/test_preflight.py"),
    one("stale-user-file-removed", "preflight removes files it did not write",
        "preflight/manifests.py", "    for stale in previous - set(planned):",
        "    for stale in set(directory.rglob('*.md')) | (previous - set(planned)):", "tests/test_preflight.py"),
    one("conformance-blind", "the conformance check accepts unknown nested properties",
        "preflight/conformance.py", "            if prop is None:\n                if key not in ignore:",
        "            if prop is None:\n                if False:", "tests/test_conformance.py"),
    one("capacity-no-slack", "the planner forgets that retention deletes whole blocks",
        "capacity/planner.py", "n * per_day[name] * (days + c.block_slack_days),",
        "n * per_day[name] * days,", "tests/test_capacity.py"),
    one("capacity-too-small-accepted", "an explicit size below the capacity plan passes",
        "config/capacity.py", "        elif have < need:", "        elif have < need / 10:", "tests/test_capacity.py"),
    one("invoke-default-provider", "the Azure invoke goes to the default provider again",
        "components/storage/azure.py",
        "client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(provider=provider))",
        "client = azure.authorization.get_client_config_output()", "tests/test_conformance.py"),
    one("preview-blind", "a preview that cannot see an objstore config stays silent",
        "policies/thanos_policies/wiring.py", "            if where:\n", "            if False:\n",
        *POLICY_TESTS),
    one("secret-keys-hidden", "a Secret's whole stringData becomes one secret again (unknown keys in a preview)",
        "components/platform/kube.py", "        elif (api_version, kind) == (\"v1\", \"Secret\"):",
        "        elif False:", "tests/test_real_engine.py"),
    one("workload-before-serviceaccount", "workloads no longer wait for their ServiceAccounts and Secrets",
        "components/platform/kube.py", "            needs += [(namespace, k, n) for k, n in sorted(pod_references(manifest))]",
        "            needs += []", "tests/test_workloads.py"),
    one("claim-template-replaces", "a bigger claim template replaces the StatefulSet again",
        "components/platform/kube.py", 'ignore_changes=["spec.volumeClaimTemplates"] if claims else None',
        "ignore_changes=None", "tests/test_real_engine.py"),
    # Issue 21: who gets in where.
    one("one-ca-for-all", "a leaf accepts the writers' CA again (a remote writer reads every series)",
        "components/global_view/leaves.py", 'return tuple(server_tls_flags("readers"))',
        'return tuple(server_tls_flags("writers"))', "tests/test_global_view.py", "tests/test_real_dev.py"),
    one("writers-write-marks", "S3 writers may write deletion-mark.json again",
        "components/storage/aws.py", "    if role == WRITER:  # a deletion mark", "    if False:  # a deletion mark",
        "tests/test_policies.py"),
    one("dr-unlocked", "the DR copy loses its Object Lock",
        "components/storage/aws.py", "        if lock_days:  # enabled", "        if False:  # enabled",
        "tests/test_policies.py", "tests/test_storage.py"),
    one("namespace-open", "every pod of a namespace reaches every server again",
        "components/platform/namespace.py", '                       egress=[{"to": [{"podSelector": {}}], "ports": internal}]),',
        '                       ingress=[{"from": [{"podSelector": {}}], "ports": internal}],\n'
        '                       egress=[{"to": [{"podSelector": {}}], "ports": internal}]),', "tests/test_workloads.py"),
    one("node-exporter-open", "node-exporter answers anyone again",
        "components/observability/collection.py", 'f"--web.config.file={NODE_EXPORTER_WEB_DIR}/web-config.yml",', "",
        "tests/test_observability.py", "tests/test_real_node_exporter.py"),
    Mutation("admin-api-on", "the compactor and store gateways mark blocks for deletion for anyone on their HTTP port",
             (("components/thanos/compactor.py", '             "--disable-admin-operations"]', "             ]"),
              ("components/thanos/store.py", '             "--disable-admin-operations"]', "             ]")),
             ("tests/test_real_admin_api.py", "tests/test_policies.py")),
]


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


def problems_in(mutation: Mutation, root: Path = ROOT) -> list[str]:
    """Why a mutation cannot be applied (its text missing or ambiguous): the list has gone stale."""
    found = []
    for path, old, _ in mutation.edits:
        count = (root / path).read_text().count(old)
        if count != 1:
            found.append(f"{mutation.id}: {path} has the text {count} times, not once")
    return found


def run_one(mutation: Mutation, copy: Path, python: str) -> tuple[Mutation, str, float]:
    """Apply, test, restore; the verdict is killed, survived or stale."""
    if problems_in(mutation, copy):
        return mutation, "stale", 0.0
    originals = {path: (copy / path).read_text() for path, _, _ in mutation.edits}
    for path, old, new in mutation.edits:
        (copy / path).write_text((copy / path).read_text().replace(old, new))
    start = time.perf_counter()
    try:
        proc = subprocess.run([python, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *mutation.tests],
                              cwd=copy, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        verdict = "killed" if proc.returncode not in (0, 5) else "survived"
    finally:
        for path, text in originals.items():
            (copy / path).write_text(text)
    return mutation, verdict, time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./run mutate", description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="only these mutations (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutations tested at once (one copy each)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.ids or m.id in args.ids]
    unknown = set(args.ids) - {m.id for m in MUTATIONS}
    if unknown:
        print(f"no mutation named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        copies = []
        for i in range(max(1, args.jobs)):
            copies.append(Path(tmp) / f"copy{i}")
            copy_project(copies[-1])
        queues = [chosen[i::len(copies)] for i in range(len(copies))]

        def work(index: int) -> list[tuple[Mutation, str, float]]:
            return [run_one(m, copies[index], sys.executable) for m in queues[index]]

        with ThreadPoolExecutor(len(copies)) as pool:
            results = [r for batch in pool.map(work, range(len(copies))) for r in batch]
    results.sort(key=lambda r: chosen.index(r[0]))
    width = max(len(m.id) for m in chosen)
    print(f"{'mutation':<{width}}  verdict   seconds  what it breaks")
    for mutation, verdict, seconds in results:
        print(f"{mutation.id:<{width}}  {verdict:<8}  {seconds:7.1f}  {mutation.why}")
    killed = sum(v == "killed" for _, v, _ in results)
    print(f"{killed} of {len(results)} mutations killed")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
