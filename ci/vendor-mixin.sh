#!/usr/bin/env bash
# Copies the Thanos mixin's rendered alerts and dashboards, as the pinned Thanos release ships them
# (examples/alerts/alerts.yaml and examples/dashboards/*.json of its Go module), into components/observability/mixin/.
# Run it after changing THANOS_IMAGE (config/thanos.py); tests/test_observability.py fails while the copy and the
# pinned release differ.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^THANOS_IMAGE = "quay.io\/thanos\/thanos:\(v[0-9.]*\)"$/\1/p' config/thanos.py)
[ -n "$version" ] || { echo "vendor-mixin: no THANOS_IMAGE in config/thanos.py" >&2; exit 1; }
dir=$(go mod download -json "github.com/thanos-io/thanos@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
out=components/observability/mixin
cp "$dir/examples/alerts/alerts.yaml" "$out/alerts.yaml"
chmod 644 "$out/alerts.yaml"
rm -rf "$out/dashboards"
mkdir -p "$out/dashboards"
cp "$dir"/examples/dashboards/*.json "$out/dashboards/"
chmod 644 "$out"/dashboards/*.json
echo "$version" > "$out/VERSION"
echo "vendor-mixin: the Thanos $version mixin's alerts and dashboards in $out" >&2
