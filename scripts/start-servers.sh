#!/usr/bin/env bash
# Make Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672) answer for the `[real]` tests.
#
# Installs Debian's redis-server and rabbitmq-server when they are missing (root or sudo
# needed), starts whichever is not answering, and waits until RabbitMQ accepts clients.
# Idempotent: servers that already answer (a developer's own, a CI service) are left alone.
# Exit status non-zero when a server could not be made to answer.
set -euo pipefail

log() { printf 'start-servers: %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 120); do
    port_open "$port" && { log "$name answers on $port"; return 0; }
    sleep 1
  done
  log "$name did not start on port $port"
  return 1
}

install_missing() {
  local packages=()
  command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
  command -v rabbitmq-server >/dev/null 2>&1 || packages+=(rabbitmq-server)
  [ ${#packages[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: install ${packages[*]} yourself"; return 1; }
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${packages[*]} from Debian's packages"
  $sudo apt-get update -q
  # policy-rc.d 101: the packages' post-install scripts must not start services through an
  # init system these machines do not run; this script starts them itself.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  # The packages: redis-server rabbitmq-server (only the missing ones).
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
  $sudo rm -f /usr/sbin/policy-rc.d
}

if port_open 6379 && port_open 5672; then
  log "Redis and RabbitMQ already answer"
  exit 0
fi
install_missing

if ! port_open 6379; then
  log "starting redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
wait_port redis 6379

if ! port_open 5672; then
  log "starting rabbitmq-server"
  rabbitmq-server -detached
fi
wait_port rabbitmq 5672
# The port opens before the broker accepts logins; wait until a client can connect.
for _ in $(seq 1 60); do
  rabbitmq-diagnostics -q check_running >/dev/null 2>&1 && { log "rabbitmq is running"; exit 0; }
  sleep 1
done
log "rabbitmq-server answers on 5672 but check_running never passed"
exit 1
