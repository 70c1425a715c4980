#!/usr/bin/env bash
# Builds the real tools the tests run, once per name and version, into a cache outside the clone:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/thanos-platform/tools/<name>-<version>/<binary>
# A fresh clone on a machine that built them before starts warm. Prints what it builds and how long it took.
#   ci/tools.sh            build every tool (no-op when cached)
#   ci/tools.sh thanos     build one
#   ci/tools.sh --dir      print the cache folder
#   ci/tools.sh --version NAME   print the version a tool is built at
set -euo pipefail

THANOS_VERSION=0.42.4
PROMETHEUS_MODULE_VERSION=v0.305.0   # = Prometheus v3.5.0
PROMETHEUS_VERSION=3.5.0
ALERTMANAGER_VERSION=0.28.1
# The only MinIO module version the proxy serves (a pseudo-version: the master commit of 2026-02-12).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/thanos-platform/tools"

if [ "${1:-}" = "--dir" ]; then
  echo "$CACHE"
  exit 0
fi
if [ "${1:-}" = "--version" ]; then   # ci/tools.sh --version NAME: the version its cache folder is keyed by
  case "${2:-}" in
    thanos) echo "$THANOS_VERSION" ;;
    prometheus|promtool) echo "$PROMETHEUS_VERSION" ;;
    alertmanager) echo "$ALERTMANAGER_VERSION" ;;
    minio) echo "$MINIO_VERSION" ;;
    *) echo "tools: no version for '${2:-}'" >&2; exit 2 ;;
  esac
  exit 0
fi

# build_go NAME VERSION MODULE MODVERSION PACKAGE BINARY TAGS [LDFLAGS]
# TAGS are the build tags of the tool's own release build (its .promu.yml): Thanos needs `slicelabels`, or its
# zero-copy label conversions read Prometheus' labels with the wrong layout and the sidecar panics serving gRPC.
# Through a throwaway wrapper module that requires the tool's module. Go ignores a dependency's replace directives,
# so the wrapper restates the tool's own (read from its go.mod with `go mod edit -json`); a local-path replace is
# left to the require of the real module at the matching version.
build_go() {
  local name=$1 version=$2 module=$3 modversion=$4 package=$5 binary=$6 tags=$7 ldflags=${8:-}
  local out="$CACHE/$name-$version"
  local recipe="$module@$modversion $package tags=$tags ldflags=$ldflags"
  if [ -x "$out/$binary" ] && [ "$(cat "$out/RECIPE" 2>/dev/null)" = "$recipe" ]; then
    return 0
  fi
  local start wrapper gomod
  start=$(date +%s)
  echo "tools: building $name $version ($package) ..." >&2
  wrapper=$(mktemp -d)
  (
    cd "$wrapper"
    go mod init tools.local/wrapper >/dev/null 2>&1
    gomod=$(go mod download -json "$module@$modversion" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    if not new.get("Version"):
        continue  # a local path: the require of the real module stands for it
    old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
    path, version = new["Path"], new["Version"]
    print(f"-replace={old}={path}@{version}")
' | xargs -r go mod edit
    go get "$package@$modversion" 2>&1 | grep -v '^go: \(downloading\|added\|upgraded\|found\)' >&2 || true
    mkdir -p "$out.partial"
    CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.partial/$binary" "$package"
    echo "$recipe" > "$out.partial/RECIPE"
  )
  rm -rf "$wrapper" "$out"
  mv "$out.partial" "$out"
  echo "tools: built $name $version in $(( $(date +%s) - start )) s ($(du -sh "$out/$binary" | cut -f1))" >&2
}

build() {
  case "$1" in
    thanos)
      build_go thanos "$THANOS_VERSION" github.com/thanos-io/thanos "v$THANOS_VERSION" \
        github.com/thanos-io/thanos/cmd/thanos thanos netgo,slicelabels \
        "-X github.com/prometheus/common/version.Version=$THANOS_VERSION"
      ;;
    prometheus)
      build_go prometheus "$PROMETHEUS_VERSION" github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" \
        github.com/prometheus/prometheus/cmd/prometheus prometheus netgo \
        "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
      build_go promtool "$PROMETHEUS_VERSION" github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" \
        github.com/prometheus/prometheus/cmd/promtool promtool netgo \
        "-X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION"
      ;;
    alertmanager)
      build_go alertmanager "$ALERTMANAGER_VERSION" github.com/prometheus/alertmanager "v$ALERTMANAGER_VERSION" \
        github.com/prometheus/alertmanager/cmd/alertmanager alertmanager netgo \
        "-X github.com/prometheus/common/version.Version=$ALERTMANAGER_VERSION"
      ;;
    minio)
      build_go minio "$MINIO_VERSION" github.com/minio/minio "$MINIO_VERSION" github.com/minio/minio minio kqueue
      ;;
    memcached)
      command -v memcached >/dev/null && return 0
      echo "tools: installing memcached (Debian) ..." >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends memcached >&2
      ;;
    *)
      echo "tools: unknown tool '$1' (thanos, prometheus, alertmanager, minio, memcached)" >&2
      exit 2
      ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- thanos prometheus alertmanager minio memcached
fi
for tool in "$@"; do
  build "$tool"
done
