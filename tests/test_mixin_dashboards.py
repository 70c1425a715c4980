"""The Thanos mixin's dashboards as the plan provisions them: every one upstream ships for what the plan runs, by its
upstream title and uid, in every Grafana; migrated to what Grafana 11.6 keeps (its dashboard, panel and query
schemas); reading only the platform's jobs, datasource and metrics."""

import json
import re

import promql_parser
import pytest
import yaml

from components.observability import mixin_dashboards as mixin
from components.observability.dashboards import DATASOURCE_UID
from components.observability.grafana import MIXIN_DASHBOARDS_DIR, MIXIN_FOLDER
from components.platform import names

from tests.support.stacks import STACKS
from .test_observability import dashboard_problems, every_rule_group, known_metrics, load, metric_names

TAKEN = {
    "overview.json": ("Thanos / Overview", "0cb8830a6e957978796729870f560cda", None),
    "compact.json": ("Thanos / Compact", "651943d05a8123e32867b4673963f42b", names.COMPACTOR),
    "query.json": ("Thanos / Query", "af36c91291a603f1d9fbdabdd127ac4a", names.QUERY),
    "query-frontend.json": ("Thanos / Query Frontend", "7c68ed2ef2355474f058dd27f0471f7a", names.QUERY_FRONTEND),
    "receive.json": ("Thanos / Receive", "916a852b00ccc5ed81056644718fa4fb", names.RECEIVE),
    "rule.json": ("Thanos / Rule", "35da848f5f92b2dc612e0c3a0577b8a1", names.RULER),
    "sidecar.json": ("Thanos / Sidecar", "b19644bfbf0ec1e108027cce268d99f7", names.SIDECAR),
    "store.json": ("Thanos / Store", "e832e8f26403d95fac0ea1c59837588b", names.STORE),
}
"""Every upstream dashboard taken: (title, uid, the component it is about; None: always)."""
LEFT_OUT = {"bucket-replicate.json"}
CONFIG_MAP_LIMIT = 1024 * 1024


def all_panels(board: dict) -> list[dict]:
    """Every panel, a collapsed row's too, rows aside."""
    return [p for top in board["panels"] for p in (top.get("panels", []) if top["type"] == "row" else [top])]


def expressions(board: dict) -> list[str]:
    return [t["expr"] for p in all_panels(board) for t in p["targets"]] + \
        [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]


def overlaps(panels: list[dict]) -> list[tuple[int, int]]:
    """Pairs of panel ids whose grid rectangles share a cell (a row takes one line, as Grafana's grid lays it out,
    whatever height the migration gave it)."""
    def cells(p: dict) -> set[tuple[int, int]]:
        g = p["gridPos"]
        height = 1 if p["type"] == "row" else g["h"]
        return {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + height)}
    return [(a["id"], b["id"]) for i, a in enumerate(panels) for b in panels[i + 1:] if cells(a) & cells(b)]


def layout_problems(board: dict) -> list[str]:
    """What a broken grid migration leaves: a panel off the 24 columns, overlapping another, or outside its row."""
    problems = []
    for panel in (p for top in board["panels"] for p in [top, *top.get("panels", [])]):
        g = panel["gridPos"]
        if not (g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24):
            problems.append(f"{panel['title']}: {g}")
    # Top-level panels (a collapsed row's panels stay inside it) never overlap; nor do a collapsed row's own.
    problems += [f"overlap {pair}" for pair in overlaps(board["panels"])]
    problems += [f"overlap {pair}" for top in board["panels"] for pair in overlaps(top.get("panels", []))]
    row_y = -1
    for panel in board["panels"]:
        if panel["type"] == "row":
            row_y = panel["gridPos"]["y"]
        elif panel["gridPos"]["y"] <= row_y:
            problems.append(f"{panel['title']} above its row")
    return problems


def test_the_vendored_dashboards_are_the_ones_listed_here():
    """A dashboard renamed, added or dropped upstream (a new pinned release) fails here until this list is read again."""
    assert {p.name for p in mixin.DASHBOARDS_DIR.glob("*.json")} == set(TAKEN) | LEFT_OUT
    assert set(mixin.SKIPPED) == LEFT_OUT
    upstream = mixin.upstream_dashboards()
    assert {name: (b["title"], b["uid"], mixin.component_of(b)) for name, b in upstream.items()} == TAKEN


@pytest.mark.parametrize("stack", STACKS)
def test_every_grafana_has_every_mixin_dashboard_of_what_the_stack_runs(planned, stack):
    """Each planned Grafana provisions the mixin's dashboards from their own ConfigMap (compact JSON, well within a
    ConfigMap's 1 MiB) into the "Thanos mixin" folder, by upstream title and uid, beside the project's own."""
    plan, settings = planned[stack], load(stack)
    runs = mixin.stack_components(receive=settings.thanos.receive.enabled)
    expected = {(title, uid) for title, uid, component in TAKEN.values() if component in (None, *runs)}
    grafanas = [(cluster, g["metadata"]["namespace"]) for cluster in plan.clusters()
                for g in plan.objects("Deployment", cluster=cluster) if g["metadata"]["name"] == "thanos-grafana"]
    assert len(grafanas) == (2 if settings.global_view and settings.global_view.standby_cluster else 1)
    for cluster, namespace in grafanas:
        files = plan.files(cluster, namespace, "thanos-grafana-mixin-dashboards")
        boards = [json.loads(text) for text in files.values()]
        assert {(b["title"], b["uid"]) for b in boards} == expected, (cluster, namespace)
        assert all("\n" not in text for text in files.values())
        assert 100_000 < sum(len(name) + len(text.encode()) for name, text in files.items()) < CONFIG_MAP_LIMIT / 2
        own = plan.files(cluster, namespace, "thanos-grafana-dashboards")
        assert not {b["uid"] for b in boards} & {json.loads(t)["uid"] for t in own.values()}
        providers = yaml.safe_load(plan.files(cluster, namespace, "thanos-grafana-providers")["thanos.yaml"])
        folder = next(p for p in providers["providers"] if p.get("folder") == MIXIN_FOLDER)
        assert folder["options"]["path"] == MIXIN_DASHBOARDS_DIR and not folder["allowUiUpdates"]
        grafana = next(g for g in plan.objects("Deployment", cluster=cluster) if g["metadata"]["name"] == "thanos-grafana"
                       and g["metadata"]["namespace"] == namespace)
        pod = grafana["spec"]["template"]["spec"]
        volume = next(v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "thanos-grafana-mixin-dashboards")
        assert {"name": volume, "mountPath": MIXIN_DASHBOARDS_DIR, "readOnly": True} in pod["containers"][0]["volumeMounts"]


def test_a_component_not_run_has_no_dashboard():
    boards = mixin.mixin_dashboards(mixin.stack_components(receive=False))
    assert "receive.json" not in boards and {"overview.json", "store.json", "query-frontend.json"} <= set(boards)


def test_every_migrated_dashboard_validates_against_the_grafana_schemas():
    """The dashboard, each panel's options and field config (timeseries, table) and each query, against the v11.6
    schemas; the layout, variables and datasource of what Grafana keeps once it has migrated a schema-14 dashboard."""
    boards = mixin.mixin_dashboards()
    assert len(boards) == len(TAKEN)
    upstream = mixin.upstream_dashboards()
    for name, board in boards.items():
        assert dashboard_problems(board) == [], name
        assert board["schemaVersion"] == 41 and "rows" not in board and "time_options" not in board["timepicker"]
        assert (board["title"], board["uid"]) == TAKEN[name][:2]
        variables = [v["name"] for v in board["templating"]["list"]]
        assert variables[0] == "cluster" and "datasource" not in variables and "$datasource" not in json.dumps(board)
        panels = all_panels(board)
        assert len(panels) == sum(len(r["panels"]) for r in upstream[name]["rows"])
        assert {p["type"] for p in panels} <= {"timeseries", "table"}
        assert [p["title"] for p in board["panels"] if p["type"] == "row"] == [r["title"] for r in upstream[name]["rows"]]
        ids = [p["id"] for p in (p for top in board["panels"] for p in [top, *top.get("panels", [])])]
        assert len(ids) == len(set(ids))
        for panel in panels:
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
            assert all(t["datasource"] == panel["datasource"] and t["refId"] for t in panel["targets"])
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        assert layout_problems(board) == [], name
    counts = {name: len(all_panels(b)) for name, b in boards.items()}
    assert sum(counts.values()) == 158 and counts["store.json"] == 28


def test_the_migration_places_panels_as_grafana_does():
    """upgradeToGridLayout: a span is half a grid column count, a 250px row 7 cells (30px and an 8px margin each),
    a full row wraps, a collapsed row holds its panels and takes one line."""
    def panel(id_, span):
        return {"id": id_, "span": span}
    rows = [{"title": "a", "showTitle": True, "height": "250px", "panels": [panel(1, 4), panel(2, 4), panel(3, 4)]},
            {"title": "b", "showTitle": True, "collapse": True, "height": "250px", "panels": [panel(4, 12)]},
            {"title": "c", "showTitle": True, "height": "100px", "panels": [panel(5, 6), panel(6, 6), panel(7, 12)]}]
    laid = mixin.grid_layout(rows)
    assert [(p["id"], tuple(p["gridPos"].values())) for p in laid] == [
        (8, (0, 0, 24, 7)), (1, (0, 1, 8, 7)), (2, (8, 1, 8, 7)), (3, (16, 1, 8, 7)),
        (9, (0, 8, 24, 7)), (10, (0, 9, 24, 3)), (5, (0, 10, 12, 3)), (6, (12, 10, 12, 3)), (7, (0, 13, 24, 3))]
    assert [p["id"] for p in laid[4]["panels"]] == [4] and laid[4]["collapsed"]


def test_the_layout_check_catches_a_broken_migration():
    board = mixin.mixin_dashboards()["query.json"]
    assert layout_problems(board) == []
    panels = [p for p in board["panels"] if p["type"] != "row"]
    panels[0]["gridPos"]["w"] = 30
    panels[2]["gridPos"]["x"] = panels[1]["gridPos"]["x"]
    problems = layout_problems(board)
    assert any("'w': 30" in p for p in problems) and any(p.startswith("overlap") for p in problems)
    assert any("30" in p for p in dashboard_problems(board))


def test_a_graph_panel_becomes_the_timeseries_grafana_makes_of_it():
    """The Query dashboard's first panel (stacked, fill 10, line width 0, status code colours by regex), as
    graphToTimeseriesOptions migrates it."""
    rate = next(p for p in mixin.mixin_dashboards()["query.json"]["panels"] if p["id"] == 1)
    assert rate["options"] == {"legend": {"displayMode": "list", "showLegend": True, "placement": "bottom", "calcs": []},
                               "tooltip": {"mode": "single", "sort": "none"}}
    assert rate["fieldConfig"]["defaults"] == {
        "unit": "short", "min": 0,
        "custom": {"axisPlacement": "auto", "drawStyle": "line", "showPoints": "never", "lineWidth": 0,
                   "fillOpacity": 100, "spanNulls": False, "stacking": {"mode": "normal", "group": "A"}}}
    assert rate["fieldConfig"]["overrides"][4] == {"matcher": {"id": "byRegexp", "options": "/5../"}, "properties": [
        {"id": "color", "value": {"mode": "fixed", "fixedColor": "#C4162A"}}]}
    upload = next(p for p in all_panels(mixin.mixin_dashboards()["sidecar.json"]) if p["type"] == "table")
    assert upload["transformations"] == [{"id": "merge", "options": {"reducers": []}}]
    assert upload["fieldConfig"]["overrides"][0]["properties"][:2] == [{"id": "displayName", "value": "Time"},
                                                                        {"id": "custom.hidden", "value": True}]


def test_every_expression_reads_the_platforms_jobs_cluster_and_known_metrics():
    """Every query parses; every selector names the chosen cluster; none keeps the mixin's `.*thanos-` job regexes;
    each names only metrics the catalogue lists (what Thanos v0.42.4, its Go runtime and the Prometheus rule engine
    export); every quantile reads a histogram's buckets."""
    recorded = {r["record"] for g in every_rule_group() for r in g["rules"] if "record" in r}
    known = known_metrics(recorded)
    checked = 0
    for name, board in mixin.mixin_dashboards().items():
        for expr in expressions(board):
            assert ".*thanos-" not in expr and "$datasource" not in expr, (name, expr)
            concrete = expr.replace("$interval", "5m").replace("$job", "j").replace("$tenant", "t")
            metrics = metric_names(concrete)
            assert metrics and metrics <= known, (name, expr, metrics - known)
            if expr.startswith("label_values(") and "cluster" in expr.split(",")[-1]:
                continue  # the cluster variable's own query
            selectors = _selectors(concrete.replace("$cluster", "c"))
            assert selectors and all(("cluster", "Equal", "c") in s for s in selectors), (name, expr)
            if "histogram_quantile" in expr:
                assert all(m.endswith("_bucket") for m in metrics), (name, expr)
            checked += 1
    assert checked > 250


def _selectors(expr: str) -> list[set[tuple[str, str, str]]]:
    """Each vector selector's label matchers as (name, op, value)."""
    match = re.fullmatch(r"label_values\((.*),\s*\w+\)", expr)
    found: list[set[tuple[str, str, str]]] = []

    def walk(node):
        if isinstance(node, promql_parser.VectorSelector):
            found.append({(m.name, str(m.op).removeprefix("MatchOp."), m.value) for m in node.matchers.matchers})
        for attr in ("expr", "lhs", "rhs", "param", "args", "vector_selector"):
            value = getattr(node, attr, None)
            for child in value if isinstance(value, list) else [value] if value is not None else []:
                walk(child)

    walk(promql_parser.parse((match.group(1) if match else expr).replace("$__rate_interval", "5m")))
    return found
