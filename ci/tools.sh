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
# The real Pulumi engine. The CLI is the newest the Go proxy serves (v3.272.0, the Python SDK's version on PyPI here,
# is not); a CLI newer than the SDK is what users run too.
PULUMI_VERSION=3.274.1
# The Python language host left the sdk/v3 module after v3.79.0 and its own module is not served: v3.79.0 is the last
# host that can be built here. Its exec script comes from the current sdk/v3 module.
PULUMI_LANGUAGE_PYTHON_VERSION=3.79.0
# The only provider/v4 version the proxy serves (main of 2026-01-15); it reports the SDK version users install.
PULUMI_KUBERNETES_MODULE_VERSION=v4.0.0-20260115033456-f47bc2d6f199
PULUMI_KUBERNETES_VERSION=4.34.2
KUBERNETES_VERSION=1.34.2
ETCD_VERSION=3.6.5
KWOK_VERSION=0.7.0
# The entry point's auth proxy, at the release the plan pins (its main package is the module root).
OAUTH2_PROXY_VERSION=7.15.6
# The tenant gate behind the entry point, at the release the plan pins.
CADDY_VERSION=2.11.9
# MinIO's client, for the planned make-bucket and user Jobs: the only version the proxy serves (master of 2025-03-13,
# a month before the RELEASE.2025-04-16T18-13-26Z image the plan pins).
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
# The node exporter, at the release the plan pins (its main package is the module root).
NODE_EXPORTER_VERSION=1.9.1
# The blackbox exporter, at the release the plan pins: it probes the TLS endpoints and reports their certificates'
# expiry (its main package is the module root; the proxy refuses the version list, this exact version is served).
BLACKBOX_EXPORTER_VERSION=0.27.0
# CustomResourceDefinitions the stacks' objects need, from the upstream modules (plain files in the module zips).
GATEWAY_API_VERSION=1.6.3
PROMETHEUS_OPERATOR_VERSION=0.85.0   # also the operator itself (azure's operator mode), built from the same module

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
    pulumi) echo "$PULUMI_VERSION" ;;
    pulumi-language-python) echo "$PULUMI_LANGUAGE_PYTHON_VERSION" ;;
    pulumi-resource-kubernetes) echo "$PULUMI_KUBERNETES_VERSION" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler) echo "$KUBERNETES_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    oauth2-proxy) echo "$OAUTH2_PROXY_VERSION" ;;
    caddy) echo "$CADDY_VERSION" ;;
    node-exporter) echo "$NODE_EXPORTER_VERSION" ;;
    blackbox-exporter) echo "$BLACKBOX_EXPORTER_VERSION" ;;
    mc) echo "$MC_VERSION" ;;
    prometheus-operator|prometheus-config-reloader) echo "$PROMETHEUS_OPERATOR_VERSION" ;;
    crds) echo "gateway-api-$GATEWAY_API_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" ;;
    *) echo "tools: no version for '${2:-}'" >&2; exit 2 ;;
  esac
  exit 0
fi

# built DIR BINARY RECIPE: the cache already holds BINARY, built by exactly RECIPE.
built() {
  [ -x "$1/$2" ] && [ "$(cat "$1/RECIPE" 2>/dev/null)" = "$3" ]
}

# build_go NAME VERSION MODULE MODVERSION PACKAGE BINARY TAGS [LDFLAGS] [LOCAL_VERSION]
# TAGS are the build tags of the tool's own release build (its .promu.yml): Thanos needs `slicelabels`, or its
# zero-copy label conversions read Prometheus' labels with the wrong layout and the sidecar panics serving gRPC.
# Through a throwaway wrapper module that requires the tool's module. Go ignores a dependency's replace directives,
# so the wrapper restates the tool's own (read from its go.mod with `go mod edit -json`); a local-path replace is
# left to the require of the real module at the matching version, or, given LOCAL_VERSION, replaced by the module
# released at that version (Kubernetes' staging modules: `k8s.io/api => ./staging/...` becomes `k8s.io/api@v0.34.2`).
build_go() {
  local name=$1 version=$2 module=$3 modversion=$4 package=$5 binary=$6 tags=$7 ldflags=${8:-} local_version=${9:-}
  local out="$CACHE/$name-$version"
  local recipe="$module@$modversion $package tags=$tags ldflags=$ldflags local=$local_version"
  if [ -z "$local_version" ]; then recipe="$module@$modversion $package tags=$tags ldflags=$ldflags"; fi
  built "$out" "$binary" "$recipe" && return 0
  local start wrapper gomod
  start=$(date +%s)
  echo "tools: building $name $version ($package) ..." >&2
  wrapper=$(mktemp -d)
  (
    cd "$wrapper"
    go mod init tools.local/wrapper >/dev/null 2>&1
    gomod=$(go mod download -json "$module@$modversion" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    go mod edit -json "$gomod" | LOCAL_VERSION="$local_version" python3 -c '
import json, os, sys
local_version = os.environ["LOCAL_VERSION"]
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]
    if not new.get("Version"):
        if local_version and not new["Path"].endswith("FORBIDDEN_DEPENDENCY"):
            path = r["Old"]["Path"]
            print(f"-replace={path}={path}@{local_version}")
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

# The kubernetes provider's repository does not ship the embedded schema and mapping files its main package needs;
# its own build generates them (`VERSION=... go run ./generate.go` in cmd/pulumi-resource-kubernetes). So it is
# built from a writable copy of the module, as its main module (its replaces apply; the local `sdk/v4 => ../sdk`
# one is dropped for the released sdk/v4 it requires).
build_pulumi_kubernetes() {
  local out="$CACHE/pulumi-resource-kubernetes-$PULUMI_KUBERNETES_VERSION"
  local module=github.com/pulumi/pulumi-kubernetes/provider/v4
  local recipe="$module@$PULUMI_KUBERNETES_MODULE_VERSION generate.go VERSION=$PULUMI_KUBERNETES_VERSION"
  built "$out" pulumi-resource-kubernetes "$recipe" && return 0
  local start copy dir
  start=$(date +%s)
  echo "tools: building pulumi-resource-kubernetes $PULUMI_KUBERNETES_VERSION ($module@$PULUMI_KUBERNETES_MODULE_VERSION) ..." >&2
  copy=$(mktemp -d)
  dir=$(go mod download -json "$module@$PULUMI_KUBERNETES_MODULE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$dir/." "$copy/"
  chmod -R u+w "$copy"
  (
    cd "$copy"
    go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4
    # The released sdk/v4 at the version the provider requires, with its go.sum lines (the copy had none for it).
    go get "github.com/pulumi/pulumi-kubernetes/sdk/v4@$(go list -m -f '{{.Version}}' github.com/pulumi/pulumi-kubernetes/sdk/v4)" \
      2>&1 | grep -v '^go: \(downloading\|added\|upgraded\|found\)' >&2 || true
    (cd cmd/pulumi-resource-kubernetes && VERSION="$PULUMI_KUBERNETES_VERSION" go run ./generate.go)
    mkdir -p "$out.partial"
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $module/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
      -o "$out.partial/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes
    echo "$recipe" > "$out.partial/RECIPE"
  )
  rm -rf "$copy" "$out"
  mv "$out.partial" "$out"
  echo "tools: built pulumi-resource-kubernetes in $(( $(date +%s) - start )) s" >&2
}

# The language host runs `pulumi-language-python-exec` from beside itself or PATH: the script of the current sdk/v3.
add_python_exec_script() {
  local out="$CACHE/pulumi-language-python-$PULUMI_LANGUAGE_PYTHON_VERSION" dir
  [ -x "$out/pulumi-language-python-exec" ] && return 0
  dir=$(cd "$(mktemp -d)" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  install -m 0755 "$dir/python/cmd/pulumi-language-python-exec" "$out/pulumi-language-python-exec"
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
    pulumi)
      build_go pulumi "$PULUMI_VERSION" github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi "" \
        "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
      ;;
    pulumi-language-python)
      build_go pulumi-language-python "$PULUMI_LANGUAGE_PYTHON_VERSION" github.com/pulumi/pulumi/sdk/v3 \
        "v$PULUMI_LANGUAGE_PYTHON_VERSION" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python \
        pulumi-language-python "" \
        "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_LANGUAGE_PYTHON_VERSION"
      add_python_exec_script
      ;;
    pulumi-resource-kubernetes)
      build_pulumi_kubernetes
      ;;
    kube-apiserver|kube-controller-manager|kube-scheduler)
      local v="v$KUBERNETES_VERSION" staging="v0.${KUBERNETES_VERSION#1.}"
      build_go "$1" "$KUBERNETES_VERSION" k8s.io/kubernetes "$v" "k8s.io/kubernetes/cmd/$1" "$1" "" \
        "-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${KUBERNETES_VERSION#1.} -X k8s.io/client-go/pkg/version.gitVersion=$v" \
        "$staging"
      ;;
    etcd)
      build_go etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "v$ETCD_VERSION" go.etcd.io/etcd/server/v3 etcd ""
      ;;
    kwok)
      build_go kwok "$KWOK_VERSION" sigs.k8s.io/kwok "v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok kwok "" \
        "-X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION"
      ;;
    oauth2-proxy)
      build_go oauth2-proxy "$OAUTH2_PROXY_VERSION" github.com/oauth2-proxy/oauth2-proxy/v7 "v$OAUTH2_PROXY_VERSION" \
        github.com/oauth2-proxy/oauth2-proxy/v7 oauth2-proxy "" \
        "-X github.com/oauth2-proxy/oauth2-proxy/v7/pkg/version.VERSION=v$OAUTH2_PROXY_VERSION"
      ;;
    caddy)
      build_go caddy "$CADDY_VERSION" github.com/caddyserver/caddy/v2 "v$CADDY_VERSION" \
        github.com/caddyserver/caddy/v2/cmd/caddy caddy "" \
        "-X github.com/caddyserver/caddy/v2.CustomVersion=v$CADDY_VERSION"
      ;;
    mc)
      build_go mc "$MC_VERSION" github.com/minio/mc "$MC_VERSION" github.com/minio/mc mc ""
      ;;
    node-exporter)
      build_go node-exporter "$NODE_EXPORTER_VERSION" github.com/prometheus/node_exporter "v$NODE_EXPORTER_VERSION" \
        github.com/prometheus/node_exporter node-exporter netgo \
        "-X github.com/prometheus/common/version.Version=$NODE_EXPORTER_VERSION"
      ;;
    blackbox-exporter)
      build_go blackbox-exporter "$BLACKBOX_EXPORTER_VERSION" github.com/prometheus/blackbox_exporter \
        "v$BLACKBOX_EXPORTER_VERSION" github.com/prometheus/blackbox_exporter blackbox-exporter netgo \
        "-X github.com/prometheus/common/version.Version=$BLACKBOX_EXPORTER_VERSION"
      ;;
    prometheus-operator)
      build_go prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator \
        "v$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator/cmd/operator \
        prometheus-operator "" "-X github.com/prometheus/common/version.Version=$PROMETHEUS_OPERATOR_VERSION"
      ;;
    prometheus-config-reloader)   # the operator's reloader container (a ThanosRuler's, for team rules)
      build_go prometheus-config-reloader "$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator \
        "v$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader \
        prometheus-config-reloader "" "-X github.com/prometheus/common/version.Version=$PROMETHEUS_OPERATOR_VERSION"
      ;;
    crds)
      local out="$CACHE/crds-gateway-api-$GATEWAY_API_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" gw po
      [ -f "$out/crds/RECIPE" ] && return 0
      gw=$(cd "$(mktemp -d)" && go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
      po=$(cd "$(mktemp -d)" && go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
      rm -rf "$out" && mkdir -p "$out/crds"
      # Only the CustomResourceDefinitions (the gateway-api folder also holds a ValidatingAdmissionPolicy).
      cp "$gw"/config/crd/standard/gateway.networking.k8s.io_{gatewayclasses,gateways,httproutes,grpcroutes,referencegrants}.yaml \
        "$po"/example/prometheus-operator-crd/*.yaml "$out/crds/"
      chmod u+w "$out"/crds/*
      echo "gateway-api@v$GATEWAY_API_VERSION prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION" > "$out/crds/RECIPE"
      ;;
    memcached)
      command -v memcached >/dev/null && return 0
      echo "tools: installing memcached (Debian) ..." >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends memcached >&2
      ;;
    *)
      echo "tools: unknown tool '$1' (thanos, prometheus, alertmanager, minio, memcached, pulumi," \
        "pulumi-language-python, pulumi-resource-kubernetes, kube-apiserver, kube-controller-manager, kube-scheduler," \
        "etcd, kwok, oauth2-proxy, caddy, node-exporter, blackbox-exporter, mc, prometheus-operator, prometheus-config-reloader, crds)" >&2
      exit 2
      ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- thanos prometheus alertmanager minio memcached pulumi pulumi-language-python pulumi-resource-kubernetes \
    etcd kube-apiserver kube-controller-manager kube-scheduler kwok oauth2-proxy caddy node-exporter blackbox-exporter mc prometheus-operator prometheus-config-reloader crds
fi
for tool in "$@"; do
  build "$tool"
done
