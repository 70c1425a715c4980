"""The Thanos mixin's dashboards, as the pinned Thanos release renders them (components/observability/mixin/dashboards/,
copied by ci/vendor-mixin.sh, never edited by hand), made into what Grafana 11.6 shows and pointed at this platform.

Taken, with their upstream titles and uids (on-call knows them): Overview, Compact, Query, Query Frontend, Receive,
Rule, Sidecar and Store; a component's only where the plan runs it, the overview always. Left out: Bucket Replicate
(this platform runs `thanos tools bucket replicate` as a CronJob, which is not scraped, so the dashboard would stay
empty; ThanosBucketReplicationLagging watches the CronJob through kube-state-metrics).

What changes from upstream, all in code here:
- FIXES: the store dashboard's four quantile queries read their histograms' `_bucket` series (as rendered they name
  series that do not exist, so the panels stay empty).
- The job selectors: the mixin matches jobs by regular expression (`.*thanos-query.*` also matches the
  query-frontend); here each names the platform's exact jobs (mixin.SELECTORS, and the query-frontend's own job).
- A `cluster` variable (every series carries the `cluster` external label of the Prometheus that scraped it) and
  `cluster="$cluster"` in every selector, as the mixin does itself when configured with a cluster target group: one
  cluster at a time, the global view's other clusters one click away.
- No `datasource` variable: every panel, query and variable reads the provisioned Thanos datasource.
- The legacy model (schemaVersion 14: rows with span and height, angular `graph` and `table` panels) is migrated the
  way Grafana 11.6 migrates it when it loads one (public/app/features/dashboard/state/DashboardMigrator.ts and its
  backend twin apps/dashboard/pkg/migration/schemaversion): rows become row panels and grid positions (16), panel
  links URLs (19), datasource names references (33, 36), legacy query-variable fields go (28, 29), so does the time
  picker's `time_options` (41); then, as angular panels are off in Grafana 11, `graph` becomes `timeseries`
  (public/app/plugins/panel/timeseries/migrations.ts, graphToTimeseriesOptions) and the angular `table` (`table-old`
  since schema 24) the React `table` (public/app/plugins/panel/table/migrations.ts, tablePanelChangedHandler).
  Left out where the v11.6 dashboard schema has no place for it and Grafana reads it nowhere these panels use: the
  field config's `nullValueMode` (legend calculations and axis range only; no legend values, axes start at 0),
  the queries' `step` (ignored since Grafana 5) and grafonnet's stray `legendLink`, `logBase`, `min`, `max`.
- A panel link to another mixin dashboard goes to its uid, not to its title's slug (`dashboard/db/<slug>`, what the
  migration writes): the project's own dashboards have the same titles, in another folder.
"""

import copy
import json
import math
import re
from collections.abc import Collection
from typing import Any

from components.observability.dashboards import DATASOURCE_UID
from components.observability.mixin import MIXIN_DIR, SELECTORS
from components.platform import names

DASHBOARDS_DIR = MIXIN_DIR / "dashboards"
JOBS = {**SELECTORS,
        names.QUERY_FRONTEND: ('job=~".*thanos-query-frontend.*"', f'job="{names.QUERY_FRONTEND}"')}
"""Per component (its scrape job): the mixin dashboards' job selector, and the platform's."""
SKIPPED = {"bucket-replicate.json": "the replication CronJob is not scraped; kube-state-metrics watches it"}
"""Upstream dashboards not taken, with why."""
FIXES = {
    # histogram_quantile over the histogram's name instead of its _bucket series: Thanos exports these as classic
    # histograms only (pkg/store/bucket.go), so as rendered the store's quantile panels stay empty.
    "store.json": tuple((f"(rate({metric}{{", f"(rate({metric}_bucket{{") for metric in (
        "thanos_bucket_store_series_blocks_queried", "thanos_bucket_store_series_data_fetched",
        "thanos_bucket_store_series_data_touched", "thanos_bucket_store_series_result_series")),
}
"""Upstream dashboards' expressions that cannot work as rendered, with the change that makes them: (text,
replacement), each found at least once."""
SCHEMA_VERSION = 41
"""Grafana 11.6's dashboard schema version."""
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
CLUSTER = {"type": "query", "name": "cluster", "label": "cluster", "datasource": DATASOURCE,
           "query": "label_values(up, cluster)", "refresh": 2, "sort": 1, "hide": 0, "includeAll": False,
           "multi": False, "options": []}
"""The cluster variable: one cluster at a time, its values read on every time range change."""
CLUSTER_MATCHER = 'cluster="$cluster"'

# Grafana's grid (public/app/core/constants.ts; schemaversion/v16.go).
GRID_COLUMNS = 24
CELL_HEIGHT = 30
CELL_MARGIN = 8
MIN_PANEL_HEIGHT = CELL_HEIGHT * 3
DEFAULT_ROW_HEIGHT = 250
DEFAULT_SPAN = 4

KEPT_PANEL_FIELDS = ("id", "type", "title", "description", "datasource", "targets", "links", "timeFrom", "timeShift",
                     "interval", "maxDataPoints", "transformations", "repeat", "gridPos")
"""What a panel keeps when Grafana changes its plugin (schemaversion/angular_migration.go, mustKeepProperties);
options and field config come from the new plugin's migration."""
DROPPED_TARGET_FIELDS = ("step", "legendLink", "logBase", "min", "max")
"""Query fields Grafana no longer reads (`step`) or never did (grafonnet writes the others onto targets)."""
STACKING_GROUP = "A"
"""The timeseries panel's default stacking group (public/app/plugins/panel/timeseries/config.ts)."""


def _number(value: Any) -> float | int | None:
    """lodash's isNumber, or a string that parses as one (migrations.ts validNumber)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if v is not None}


def platform_expr(expr: str) -> str:
    """An upstream expression (or variable query) with the platform's jobs and the cluster matcher in every
    selector."""
    for upstream, platform in JOBS.values():
        expr = expr.replace(upstream, platform)
    return re.sub(r"\{(\s*\})?", lambda m: f"{{{CLUSTER_MATCHER}}}" if m.group(1) else f"{{{CLUSTER_MATCHER}, ", expr)


def component_of(board: dict[str, Any]) -> str | None:
    """The component (scrape job) an upstream dashboard is about, by its `job` variable's selector; None for one
    without (the overview)."""
    queries = [v["query"] for v in board["templating"]["list"] if v["name"] == "job"]
    if not queries:
        return None
    found = [component for component, (upstream, _) in JOBS.items() if upstream in queries[0]]
    if len(found) != 1:
        raise ValueError(f"mixin dashboard {board['title']} selects {queries[0]}: map its job in JOBS")
    return found[0]


class _RowArea:
    """The cells a legacy row's panels fill, per column (DashboardMigrator.ts RowArea)."""

    def __init__(self, height: int, y: int):
        self.area = [0] * GRID_COLUMNS
        self.y = y
        self.height = height

    def position(self, width: int, wrap: bool = True) -> tuple[int, int]:
        start = end = None
        for i in range(GRID_COLUMNS - 1, -1, -1):
            if self.height - self.area[i] <= 0:
                break
            if end is None:
                end = i
            elif i < GRID_COLUMNS - 1 and self.area[i] <= self.area[i + 1]:
                start = i
            else:
                break
        if start is not None and end is not None and end - start >= width - 1:
            return start, max(self.area[start:])
        if not wrap:
            raise ValueError(f"no room for a panel {width} wide")
        self.y += self.height
        self.area = [0] * GRID_COLUMNS
        return self.position(width, wrap=False)

    def add(self, pos: dict[str, int]) -> None:
        for i in range(pos["x"], pos["x"] + pos["w"]):
            self.area[i] = max(self.area[i], pos["y"] + pos["h"] - self.y)


def _grid_height(height: str | int | None) -> int:
    pixels = int(str(height).removesuffix("px")) if height else DEFAULT_ROW_HEIGHT
    return math.ceil(max(pixels, MIN_PANEL_HEIGHT) / (CELL_HEIGHT + CELL_MARGIN))


def grid_layout(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Schema 16 (upgradeToGridLayout): a row panel per row (every upstream row shows its title), its panels
    placed left to right in 24 columns, a collapsed row's panels inside it; sorted by position as Grafana keeps
    them."""
    panels: list[dict[str, Any]] = []
    next_id = max(p["id"] for row in rows for p in row["panels"]) + 1
    show_rows = any(row.get("collapse") or row.get("showTitle") or row.get("repeat") for row in rows)
    y = 0
    for row in (r for r in rows if not r.get("repeatIteration")):
        height = _grid_height(row.get("height"))
        collapsed = bool(row.get("collapse"))
        row_panel: dict[str, Any] | None = None
        if show_rows:
            row_panel = _without_nulls({"type": "row", "id": next_id, "title": row.get("title"),
                                        "collapsed": collapsed, "repeat": row.get("repeat") or None, "panels": [],
                                        "gridPos": {"x": 0, "y": y, "w": GRID_COLUMNS, "h": height}})
            next_id += 1
            y += 1
        area = _RowArea(height, y)
        for panel in row["panels"]:
            width = math.floor(panel.get("span") or DEFAULT_SPAN) * GRID_COLUMNS // 12
            x, dy = area.position(width)
            y = area.y
            placed = {k: v for k, v in panel.items() if k != "span"}
            placed["gridPos"] = {"x": x, "y": y + dy, "w": width,
                                 "h": _grid_height(panel["height"]) if panel.get("height") else height}
            area.add(placed["gridPos"])
            (row_panel["panels"] if row_panel and collapsed else panels).append(placed)
        if row_panel:
            panels.append(row_panel)
        if not (row_panel and collapsed):
            y += height
    return sorted(panels, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))


def _axis(axis: dict[str, Any] | None) -> dict[str, Any]:
    """A legacy y axis as field config (migrations.ts getFieldConfigFromOldAxis)."""
    if not axis:
        return {}
    custom: dict[str, Any] = {"axisPlacement": "auto" if axis.get("show") else "hidden"}
    if axis.get("label"):
        custom["axisLabel"] = axis["label"]
    if axis.get("logBase") in (2, 10):
        custom["scaleDistribution"] = {"type": "log", "log": axis["logBase"]}
    return _without_nulls({"unit": axis.get("format"), "decimals": _number(axis.get("decimals")),
                           "min": _number(axis.get("min")), "max": _number(axis.get("max")), "custom": custom})


def _fixed_color(color: str) -> dict[str, Any]:
    return {"id": "color", "value": {"mode": "fixed", "fixedColor": color}}


def _series_override(override: dict[str, Any]) -> dict[str, Any]:
    """One legacy series override as a field override; only what upstream uses (a new use fails here, to be read
    against migrations.ts)."""
    alias = override["alias"]
    properties = []
    for key, value in override.items():
        if key == "alias":
            continue
        if key == "color":
            properties.append(_fixed_color(value))
        elif key == "fill":
            properties.append({"id": "custom.fillOpacity", "value": value * 10})
        elif key == "fillGradient":
            if value:  # as written there: an id no field config has, then the opacity
                properties += [{"id": "custom.fillGradient", "value": "opacity"},
                               {"id": "custom.fillOpacity", "value": value * 10}]
        else:
            raise ValueError(f"series override {key!r} of {alias!r}: migrate it as graphToTimeseriesOptions does")
    regex = re.fullmatch(r"([/~@;%#'])(.*?)\1([gimsuy]*)", alias) is not None
    return {"matcher": {"id": "byRegexp" if regex else "byName", "options": alias}, "properties": properties}


def _threshold_color(threshold: dict[str, Any]) -> str:
    if threshold.get("colorMode") == "custom":
        return threshold.get("fillColor") or threshold.get("lineColor") or "red"
    return {"critical": "red", "warning": "orange"}.get(threshold.get("colorMode") or "", "red")


def _thresholds(thresholds: list[dict[str, Any]], defaults: dict[str, Any]) -> None:
    """Legacy graph thresholds as threshold steps and their style (graphToTimeseriesOptions)."""
    steps: list[dict[str, Any]] = []
    ordered = sorted(thresholds, key=lambda t: t["value"])
    for index, threshold in enumerate(ordered):
        after = ordered[index + 1] if index + 1 < len(ordered) else None
        if threshold["op"] == "gt":
            steps.append({"value": threshold["value"], "color": _threshold_color(threshold)})
        if threshold["op"] == "lt":
            if not steps:
                steps.append({"value": None, "color": _threshold_color(threshold)})
            later = _threshold_color(after) if after and after["op"] == "lt" else "transparent"
            steps.append({"value": threshold["value"], "color": later})
    if steps and steps[0]["value"] is not None:
        steps.insert(0, {"value": None, "color": "transparent"})  # -Infinity, which JSON writes as null
    area, line = any(t.get("fill") for t in thresholds), any(t.get("line") for t in thresholds)
    defaults["custom"]["thresholdsStyle"] = {"mode": "line+area" if area and line else "area" if area else "line"}
    defaults["thresholds"] = {"mode": "absolute", "steps": steps}


def timeseries(panel: dict[str, Any]) -> dict[str, Any]:
    """A legacy `graph` panel as Grafana 11 migrates it to `timeseries`: its options and field config."""
    defaults = _axis((panel.get("yaxes") or [None])[0])
    overrides = [{"matcher": {"id": "byName", "options": alias}, "properties": [_fixed_color(color)]}
                 for alias, color in (panel.get("aliasColors") or {}).items() if color]
    overrides += [o for o in map(_series_override, (s for s in panel.get("seriesOverrides") or [] if s.get("alias")))
                  if o["properties"]]
    custom = defaults.setdefault("custom", {})
    custom["drawStyle"] = "bars" if panel.get("bars") else "line" if panel.get("lines") else "points"
    if panel.get("points"):
        custom["showPoints"] = "always"
        if _number(panel.get("pointradius")) is not None:
            custom["pointSize"] = 2 + panel["pointradius"] * 2
    elif custom["drawStyle"] != "points":
        custom["showPoints"] = "never"
    if panel.get("linewidth") is not None:
        custom["lineWidth"] = panel["linewidth"]
    if panel.get("dashes"):
        custom["lineStyle"] = {"fill": "dash", "dash": [panel.get("dashLength", 10), panel.get("spaceLength", 10)]}
    if _number(panel.get("fill")) is not None:
        custom["fillOpacity"] = panel["fill"] * 10  # 0-10 then, 0-100 now
    if (_number(panel.get("fillGradient")) or 0) > 0:
        custom["gradientMode"] = "opacity"
        custom["fillOpacity"] = panel["fillGradient"] * 10
    custom["spanNulls"] = panel.get("nullPointMode") == "connected"
    if panel.get("steppedLine"):
        custom["lineInterpolation"] = "stepAfter"
    if custom["drawStyle"] == "bars":
        custom["fillOpacity"] = 100
    if panel.get("stack"):
        custom["stacking"] = {"mode": "normal", "group": STACKING_GROUP}
    legend = panel.get("legend") or {}
    if legend.get("values") or legend.get("hideZero") or legend.get("hideEmpty"):
        raise ValueError(f"panel {panel['title']!r}: migrate its legend values as graphToTimeseriesOptions does")
    tooltip = panel.get("tooltip") or {}
    options = {"legend": _without_nulls({"displayMode": "table" if legend.get("alignAsTable") else "list",
                                         "showLegend": bool(legend.get("show", True)),
                                         "placement": "right" if legend.get("rightSide") else "bottom", "calcs": [],
                                         "width": legend.get("sideWidth")}),
               "tooltip": {"mode": "multi" if tooltip.get("shared") else "single",
                           "sort": {1: "asc", 2: "desc"}.get(tooltip.get("sort") or 0, "none")
                           if tooltip.get("shared") else "none"}}
    if panel.get("thresholds"):
        _thresholds(panel["thresholds"], defaults)
    xaxis = panel.get("xaxis") or {}
    if xaxis.get("show") is False and xaxis.get("mode") == "time":
        overrides.append({"matcher": {"id": "byType", "options": "time"},
                          "properties": [{"id": "custom.axisPlacement", "value": "hidden"}]})
    return {"type": "timeseries", "options": options, "fieldConfig": {"defaults": defaults, "overrides": overrides}}


TABLE_TRANSFORMS = {"timeseries_to_rows": "seriesToRows", "timeseries_to_columns": "seriesToColumns",
                    "timeseries_aggregations": "reduce", "table": "merge"}
TABLE_COLOR_MODES = {"cell": "color-background", "row": "color-background", "value": "color-text"}


def _table_style(style: dict[str, Any]) -> dict[str, Any]:
    """One angular table column style as a field override (table/migrations.ts migrateTableStyleToOverride)."""
    regex = re.fullmatch(r"/.*/", style["pattern"]) is not None
    properties: list[dict[str, Any]] = []
    if style.get("alias"):
        properties.append({"id": "displayName", "value": style["alias"]})
    if style.get("unit"):
        properties.append({"id": "unit", "value": style["unit"]})
    if style.get("decimals") is not None:
        properties.append({"id": "decimals", "value": style["decimals"]})
    if style.get("type") == "date":
        properties.append({"id": "unit", "value": f"time: {style['dateFormat']}"})
    if style.get("type") == "hidden":
        properties.append({"id": "custom.hidden", "value": True})
    if style.get("link"):
        properties.append({"id": "links", "value": [{"title": style.get("linkTooltip", ""),
                                                     "url": style.get("linkUrl", ""),
                                                     "targetBlank": style.get("linkTargetBlank", False)}]})
    if style.get("colorMode"):
        properties.append({"id": "custom.cellOptions", "value": {"type": TABLE_COLOR_MODES[style["colorMode"]]}})
    if style.get("align"):
        properties.append({"id": "custom.align", "value": None if style["align"] == "auto" else style["align"]})
    if style.get("thresholds") and style.get("colors"):
        raise ValueError(f"table style {style['pattern']!r}: migrate its thresholds as migrateTableStyleToOverride does")
    return {"matcher": {"id": "byRegexp" if regex else "byName", "options": style["pattern"]}, "properties": properties}


def table(panel: dict[str, Any]) -> dict[str, Any]:
    """An angular `table` panel (with styles: `table-old` since schema 24) as Grafana 11 migrates it to the React
    `table`: its transformations, field config and the plugin's default options."""
    # Schema 22 set every style's alignment to auto.
    styles = [{**style, "align": "auto"} for style in panel.get("styles") or []]
    default = next((s for s in styles if s["pattern"] == "/.*/"), None)
    custom: dict[str, Any] = {"align": "auto", "inspect": False}  # the migration's null alignment: the default
    defaults: dict[str, Any] = {"custom": custom}
    if default:
        if default.get("thresholds") or default.get("colorMode"):
            raise ValueError(f"table {panel['title']!r}: migrate its default style as migrateDefaults does")
        defaults.update(_without_nulls({"unit": default.get("unit"), "decimals": default.get("decimals"),
                                        "displayName": default.get("alias")}))
    transform = panel.get("transform")
    if transform == "timeseries_aggregations":
        raise ValueError(f"table {panel['title']!r}: migrate its columns as migrateTransformations does")
    return {"type": "table",
            "transformations": ([{"id": TABLE_TRANSFORMS[transform], "options": {"reducers": []}}]
                                if transform in TABLE_TRANSFORMS else []),
            "options": {"frameIndex": 0, "showHeader": True},
            "fieldConfig": {"defaults": defaults,
                            "overrides": [_table_style(s) for s in styles if s["pattern"] != "/.*/"]}}


def _target(target: dict[str, Any], ref_id: str) -> dict[str, Any]:
    kept = {k: v for k, v in target.items() if k not in DROPPED_TARGET_FIELDS}
    return {**kept, "refId": ref_id, "expr": platform_expr(target["expr"]),
            "datasource": DATASOURCE}


def _link(link: dict[str, Any], uids: dict[str, str]) -> dict[str, Any]:
    """A legacy panel link (schema 19), to the linked mixin dashboard by uid, keeping time range and variables as
    asked; also a complete dashboard link, which is how the v11.6 schema types panel links."""
    if link.get("url") or link.get("type") != "dashboard":
        raise ValueError(f"panel link {link}: migrate it as upgradePanelLink does")
    query = [q for q, wanted in (("$__url_time_range", link.get("keepTime")),
                                 ("$__all_variables", link.get("includeVars"))) if wanted]
    url = f"/d/{uids[link['dashboard']]}" + ("?" + "&".join(query) if query else "")
    return {"title": link["title"], "type": "link", "url": url, "icon": "external link", "tooltip": "", "tags": [],
            "asDropdown": False, "targetBlank": bool(link.get("targetBlank")),
            "includeVars": bool(link.get("includeVars")), "keepTime": bool(link.get("keepTime"))}


def migrate_panel(panel: dict[str, Any], uids: dict[str, str]) -> dict[str, Any]:
    """One legacy panel as Grafana 11.6 keeps it once loaded, pointed at the platform's datasource and jobs."""
    if panel["type"] == "row":
        return {**panel, "panels": [migrate_panel(p, uids) for p in panel["panels"]]}
    migrated = {"graph": timeseries, "table": table}.get(panel["type"])
    if migrated is None:
        raise ValueError(f"panel {panel['title']!r} is a {panel['type']}: migrate it as Grafana does")
    kept = _without_nulls({k: panel.get(k) for k in KEPT_PANEL_FIELDS})
    # Schema 7: a query without a refId gets the first letter no other query uses.
    letters = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in {t.get("refId") for t in panel["targets"]})
    targets = [_target(t, t.get("refId") or next(letters)) for t in panel["targets"]]
    links = [_link(link, uids) for link in panel.get("links") or []]
    return {**kept, **migrated(panel), "datasource": DATASOURCE, "targets": targets, "links": links}


def _variable(variable: dict[str, Any]) -> dict[str, Any]:
    """A query or interval variable: the legacy query-variable fields gone (schema 28), options emptied and refresh
    on load at least (29), the platform's datasource, jobs and cluster."""
    if variable["type"] == "interval":
        return _without_nulls(variable)
    if variable["type"] != "query":
        raise ValueError(f"variable {variable['name']!r} is a {variable['type']}: migrate it as Grafana does")
    kept = {k: v for k, v in variable.items() if k not in ("tags", "tagsQuery", "tagValuesQuery", "useTags")}
    return _without_nulls({**kept, "datasource": DATASOURCE, "query": platform_expr(variable["query"]),
                           "refresh": variable.get("refresh") if variable.get("refresh") in (1, 2) else 1,
                           "options": []})


def migrate(board: dict[str, Any], uids: dict[str, str]) -> dict[str, Any]:
    """An upstream dashboard as Grafana 11.6 keeps it once loaded (schema 41), reading the platform's datasource
    and jobs, one cluster at a time."""
    board = copy.deepcopy(board)
    variables = [v for v in board["templating"]["list"] if v["type"] != "datasource"]
    kept = {k: v for k, v in board.items() if k not in ("rows", "style", "hideControls", "gnetId", "timepicker")}
    return {**kept, "schemaVersion": SCHEMA_VERSION,
            "timepicker": {k: v for k, v in board.get("timepicker", {}).items() if k != "time_options"},
            "templating": {"list": [CLUSTER, *map(_variable, variables)]},
            "panels": [migrate_panel(p, uids) for p in grid_layout(board["rows"])]}


def _fixed(name: str, text: str) -> str:
    """A vendored dashboard's text with its FIXES applied."""
    for old, new in FIXES.get(name, ()):
        if old not in text:
            raise ValueError(f"mixin dashboard {name} changed upstream: review its entry in FIXES")
        text = text.replace(old, new)
    return text


def upstream_dashboards() -> dict[str, dict[str, Any]]:
    """The vendored dashboards by file name, those left out aside, FIXES applied."""
    return {path.name: json.loads(_fixed(path.name, path.read_text())) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
            if path.name not in SKIPPED}


def mixin_dashboards(components: Collection[str] = tuple(JOBS)) -> dict[str, dict[str, Any]]:
    """The migrated dashboards by upstream file name: the overview, and each of `components` (scrape jobs; default
    every one the mixin has a dashboard for)."""
    upstream = upstream_dashboards()
    uids = {board["title"]: board["uid"] for board in upstream.values()}
    return {name: migrate(board, uids) for name, board in upstream.items()
            if component_of(board) in (None, *components)}


def stack_components(receive: bool) -> frozenset[str]:
    """What a stack runs somewhere, seen together by a global Grafana: every component (each region has its
    compactor), receive where enabled."""
    return frozenset(c for c in JOBS if receive or c != names.RECEIVE)
