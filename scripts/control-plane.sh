#!/usr/bin/env bash
# A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) for the
# `cluster` test tier, built from source with Go: no Docker, no kind, no binary downloads.
#
# The only route to the binaries here is the Go module proxy, so they are compiled from the
# published modules pinned in scripts/control-plane/{kubernetes,etcd}/go.mod (versions in
# scripts/control-plane/versions.env). The first build takes a long time on a small machine
# (see docs/kubernetes.md for the measured time and memory); the result is cached OUTSIDE the
# work tree, keyed by version, and reused by every later run and every worktree.
#
# Usage:
#   scripts/control-plane.sh build     build (or reuse) the binaries; prints their directory
#   scripts/control-plane.sh bin-dir   prints the directory; exit 1 if it is not built yet
#   scripts/control-plane.sh up [DIR]  builds, then runs a control plane in the foreground
#                                       (state and kubeconfig in DIR; Ctrl-C stops it)
# Environment: RECSYS_CONTROL_PLANE_CACHE overrides the cache root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/scripts/control-plane"
# shellcheck source=control-plane/versions.env
source "$SRC/versions.env"

CACHE_ROOT="${RECSYS_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/recsys-control-plane}"
# The key includes a hash of the go.mod/go.sum files, so any dependency change rebuilds.
MOD_HASH="$(cat "$SRC"/kubernetes/go.mod "$SRC"/kubernetes/go.sum "$SRC"/etcd/go.mod \
  "$SRC"/etcd/go.sum | sha256sum | cut -c1-12)"
BIN_DIR="$CACHE_ROOT/${KUBERNETES_VERSION}-etcd${ETCD_VERSION}-${MOD_HASH}"
BINARIES=(etcd kube-apiserver kube-controller-manager)

log() { printf 'control-plane: %s\n' "$*" >&2; }

built() {
  [[ -f "$BIN_DIR/SHA256SUMS" ]] && (cd "$BIN_DIR" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1)
}

build() {
  if built; then
    log "reusing $BIN_DIR"
    echo "$BIN_DIR"
    return
  fi
  command -v go >/dev/null || { log "go is not installed (needs Go >= 1.26)"; exit 1; }
  mkdir -p "$CACHE_ROOT"
  # One build at a time (parallel worktrees, CI): the second waits and then reuses.
  exec 9>"$CACHE_ROOT/.build.lock"
  flock 9
  if built; then
    log "reusing $BIN_DIR (built by a concurrent run)"
    echo "$BIN_DIR"
    return
  fi
  # (global, not local: the EXIT trap runs after the function returns)
  tmp="$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # -mod=mod: go.sum is committed, but let go fill what a newer toolchain wants to record.
  # GOTOOLCHAIN=local: etcd's go.mod names a newer patch toolchain; never download one.
  export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  local major="${KUBERNETES_VERSION#v}" minor
  minor="${major#*.}"
  minor="${minor%%.*}"
  major="${major%%.*}"
  local ver_ld=""
  # What upstream's hack/lib/version.sh stamps: helm and kubectl read the server version.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ver_ld+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major"
    ver_ld+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    ver_ld+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  log "building kube-apiserver, kube-controller-manager $KUBERNETES_VERSION and etcd $ETCD_VERSION"
  log "(the first build takes 20-40 min on 2 cores; cached in $BIN_DIR afterwards)"
  local start=$SECONDS
  (cd "$SRC/kubernetes" && go build -trimpath -ldflags="-s -w $ver_ld" -o "$tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
  (cd "$SRC/etcd" && go build -trimpath -ldflags="-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
  (cd "$tmp" && sha256sum "${BINARIES[@]}" >SHA256SUMS)
  {
    echo "KUBERNETES_VERSION=$KUBERNETES_VERSION"
    echo "ETCD_VERSION=$ETCD_VERSION"
    echo "GO_VERSION=$(go env GOVERSION)"
    echo "BUILD_SECONDS=$((SECONDS - start))"
  } >"$tmp/BUILD_INFO"
  rm -rf "$BIN_DIR"
  mv "$tmp" "$BIN_DIR"
  trap - EXIT
  log "built in $((SECONDS - start)) s:"
  sed 's/^/  /' "$BIN_DIR/SHA256SUMS" >&2
  echo "$BIN_DIR"
}

case "${1:-build}" in
  build) build ;;
  bin-dir)
    built || { log "not built yet: run scripts/control-plane.sh build"; exit 1; }
    echo "$BIN_DIR"
    ;;
  up)
    dir="$(build)"
    exec "$ROOT/.venv/bin/python" -m tests.cluster.controlplane --bin-dir "$dir" \
      --state-dir "${2:-$ROOT/.cache/control-plane}"
    ;;
  *)
    log "usage: $0 build|bin-dir|up [DIR]"
    exit 2
    ;;
esac
