"""The Thanos mixin's alerts, as the pinned Thanos release renders them (components/observability/mixin/alerts.yaml,
copied by ci/vendor-mixin.sh, never edited by hand), with their selectors set to this platform's scrape jobs. On-call
keeps the names and runbook links it knows, and a Thanos upgrade brings the mixin's fixes with it.

What changes from upstream: the job selectors, and the FIXES below. The mixin matches jobs by regular expression
(`.*thanos-query.*` also matches the query-frontend); here each names the platform's exact jobs. Left out: the
bucket-replicate group (this platform runs `thanos tools bucket replicate` as a CronJob, which is not scraped:
ThanosBucketReplicationLagging watches it through kube-state-metrics)."""

from pathlib import Path
from typing import Any

import yaml

from components.platform import names

MIXIN_DIR = Path(__file__).parent / "mixin"
RUNBOOK = "https://github.com/thanos-io/thanos/tree/main/mixin/runbook.md"
"""Where the mixin's runbook_url annotations point (one section per alert)."""

SELECTORS = {
    names.COMPACTOR: ('job=~".*thanos-compact.*"', f'job="{names.COMPACTOR}"'),
    names.QUERY: ('job=~".*thanos-query.*"', f'job="{names.QUERY}"'),
    names.RECEIVE: ('job=~".*thanos-receive.*"', f'job=~"{names.RECEIVE}|{names.RECEIVE_ROUTER}"'),
    # The team rulers (team rules) are rulers too: the mixin's ruler alerts watch them under their own job.
    names.RULER: ('job=~".*thanos-rule.*"', f'job=~"{names.RULER}|{names.TEAM_RULER}"'),
    names.SIDECAR: ('job=~".*thanos-sidecar.*"', f'job="{names.SIDECAR}"'),
    names.STORE: ('job=~".*thanos-store.*"', f'job="{names.STORE}"'),
}
"""Per component (its scrape job): the mixin's selector, and the platform's."""
GROUPS = {"thanos-compact": names.COMPACTOR, "thanos-query": names.QUERY, "thanos-receive": names.RECEIVE,
          "thanos-rule": names.RULER, "thanos-sidecar": names.SIDECAR, "thanos-store": names.STORE}
"""The mixin's groups of one component each; `thanos-component-absent` holds one alert per component."""
SKIPPED_GROUPS = ("thanos-bucket-replicate",)
FIXES = {
    # `and` without `on (job)` between a series with every target label and a `sum by (job)`: no label set ever
    # matches, so as rendered it can never fire (a router's series carries instance, namespace, service, pod).
    "ThanosReceiveHighReplicationFailures": ("thanos_receive_replication_factor > 1\n  and\n",
                                             "thanos_receive_replication_factor > 1\n  and on (job)\n"),
}
"""Upstream alerts that cannot work as rendered, with the one change that makes them: (text, replacement)."""


def mixin_version() -> str:
    """The Thanos release the vendored mixin comes from."""
    return (MIXIN_DIR / "VERSION").read_text().strip()


def _component_of(rule: dict[str, Any]) -> str:
    """The component an upstream alert is about: the one whose selector its expression uses."""
    found = [component for component, (upstream, _) in SELECTORS.items() if upstream in rule["expr"]]
    if len(found) != 1:
        raise ValueError(f"mixin alert {rule['alert']} selects {found or 'no known job'}: map it in SELECTORS")
    return found[0]


def mixin_alerts() -> dict[str, list[dict[str, Any]]]:
    """The mixin's alerting rules by the component (scrape job) they are about, selectors rewritten, in upstream
    order."""
    groups = yaml.safe_load((MIXIN_DIR / "alerts.yaml").read_text())["groups"]
    by_component: dict[str, list[dict[str, Any]]] = {component: [] for component in SELECTORS}
    for group in groups:
        if group["name"] in SKIPPED_GROUPS:
            continue
        for rule in group["rules"]:
            component = GROUPS.get(group["name"]) or _component_of(rule)
            upstream, platform = SELECTORS[component]
            expr = rule["expr"].replace(upstream, platform)
            if rule["alert"] in FIXES:
                old, new = FIXES[rule["alert"]]
                if old not in expr:
                    raise ValueError(f"mixin alert {rule['alert']} changed upstream: review its entry in FIXES")
                expr = expr.replace(old, new)
            by_component[component].append({**rule, "expr": expr})
    return by_component
