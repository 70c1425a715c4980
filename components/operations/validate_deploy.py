"""Post-deploy validation, run as a Kubernetes Job that `pulumi up` waits for (the operations guide's deployment
validation script). Standard library only: it runs from a ConfigMap in a plain Python image.

Reads a JSON plan (argument or $VALIDATE_PLAN) of what must be true:
  {"bucket_web": [url], "queries": [{"url", "store_types": {"sidecar": 1, ...}, "clusters": [...]}],
   "rulers": [url], "alertmanagers": [{"url", "peers": 3}], "attempts": 30, "interval": 10}
and checks, retrying until `attempts` run out (a fresh deploy needs a while to settle):
  - object storage is reachable: bucket web lists the bucket's blocks;
  - every query lists at least the expected StoreAPIs of each type, none with an error;
  - `count by (cluster) (up)` through every query returns a series from each expected cluster;
  - every ruler has loaded rule groups;
  - every Alertmanager answers and, with replicas, sees all its gossip peers.
Prints one line per check, exits 0 when all pass, 1 with the failures otherwise."""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def read(url: str, timeout: float = 10) -> dict:
    """A JSON response."""
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (in-cluster http URLs)
        return json.loads(response.read())


def get(url: str, timeout: float = 10) -> dict:
    """A Thanos/Prometheus API response's `data`, or raises with the reason."""
    body = read(url, timeout)
    if body.get("status") != "success":
        raise ValueError(f"{url}: status {body.get('status')!r}: {body.get('error')}")
    return body.get("data")


def check_bucket(url: str) -> str | None:
    data = get(f"{url}/api/v1/blocks")
    if not isinstance(data, dict) or "blocks" not in data:
        return f"bucket web {url}: no block list (object storage unreachable?)"
    return None


def check_stores(query: dict) -> str | None:
    data = get(f"{query['url']}/api/v1/stores") or {}
    problems = []
    for store_type, minimum in sorted(query.get("store_types", {}).items()):
        entries = data.get(store_type) or []
        healthy = [e for e in entries if not e.get("lastError")]
        if len(healthy) < minimum:
            errors = sorted({e.get("lastError") for e in entries if e.get("lastError")})
            problems.append(f"{store_type}: {len(healthy)} healthy of {minimum} expected"
                            + (f" ({'; '.join(errors)})" if errors else ""))
    return f"query {query['url']}: " + ", ".join(problems) if problems else None


def check_clusters(query: dict) -> str | None:
    expr = urllib.parse.quote("count by (cluster) (up)")
    result = get(f"{query['url']}/api/v1/query?query={expr}") or {}
    seen = {r.get("metric", {}).get("cluster") for r in result.get("result") or []}
    missing = sorted(set(query.get("clusters", [])) - seen)
    return f"query {query['url']}: no series from cluster {', '.join(missing)}" if missing else None


def check_ruler(url: str) -> str | None:
    groups = (get(f"{url}/api/v1/rules") or {}).get("groups") or []
    return None if groups else f"ruler {url}: no rule groups loaded"


def check_alertmanager(alertmanager: dict) -> str | None:
    """Alertmanager's v2 status: with several replicas, its gossip cluster is ready with every peer."""
    cluster = read(f"{alertmanager['url']}/api/v2/status").get("cluster") or {}
    expected = int(alertmanager.get("peers", 1))
    peers = len(cluster.get("peers") or [])
    if expected > 1 and (cluster.get("status") != "ready" or peers < expected):
        return (f"alertmanager {alertmanager['url']}: gossip {cluster.get('status')!r} with {peers} of {expected} "
                "peers")
    return None


def checks(plan: dict) -> list[tuple[str, callable]]:
    """(name, check) for everything the plan asks."""
    found = [(f"bucket {u}", lambda u=u: check_bucket(u)) for u in plan.get("bucket_web", [])]
    for q in plan.get("queries", []):
        found.append((f"stores {q['url']}", lambda q=q: check_stores(q)))
        if q.get("clusters"):
            found.append((f"clusters {q['url']}", lambda q=q: check_clusters(q)))
    found += [(f"rules {u}", lambda u=u: check_ruler(u)) for u in plan.get("rulers", [])]
    found += [(f"alertmanager {a['url']}", lambda a=a: check_alertmanager(a)) for a in plan.get("alertmanagers", [])]
    return found


def run(plan: dict, out=sys.stdout) -> int:
    """Every check until it passes or attempts run out; 0 when all passed."""
    pending = checks(plan)
    attempts, interval = int(plan.get("attempts", 30)), float(plan.get("interval", 10))
    failures: dict[str, str] = {}
    for attempt in range(1, attempts + 1):
        still = []
        for name, check in pending:
            try:
                problem = check()
            except (OSError, ValueError, urllib.error.URLError) as err:
                problem = f"{name}: {err}"
            if problem:
                failures[name] = problem
                still.append((name, check))
            else:
                failures.pop(name, None)
                print(f"ok   {name}", file=out)
        pending = still
        if not pending:
            print(f"deployment valid: {len(checks(plan))} checks passed", file=out)
            return 0
        if attempt < attempts:
            time.sleep(interval)
    for problem in failures.values():
        print(f"FAIL {problem}", file=out)
    return 1


if __name__ == "__main__":
    source = sys.argv[1] if len(sys.argv) > 1 else os.environ["VALIDATE_PLAN"]
    with open(source) as stream:
        sys.exit(run(json.load(stream)))
