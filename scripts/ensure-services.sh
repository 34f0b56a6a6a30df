#!/usr/bin/env bash
# Make sure the services the test suite talks to are installed and running:
# Redis (127.0.0.1:6379), PostgreSQL (127.0.0.1:5432, user postgres, database test)
# and RabbitMQ (127.0.0.1:5672, guest/guest). Installs missing Debian packages
# with apt-get and starts what is stopped; never stops or restarts a running one.
#
# Usage: scripts/ensure-services.sh [redis] [postgres] [rabbitmq]   (default: all)
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(redis postgres rabbitmq)

log() { printf '[services] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_updated=0
install_packages() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get not found: install $* by hand"; return 1
  fi
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local name=$1 port=$2
  for _ in $(seq 1 120); do
    port_open "$port" && { log "$name is up on 127.0.0.1:$port"; return 0; }
    sleep 0.5
  done
  log "$name did not come up on 127.0.0.1:$port"; return 1
}

ensure_redis() {
  port_open 6379 && { log "redis is up"; return 0; }
  command -v redis-server >/dev/null || install_packages redis-server
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/segue-tests.log
  wait_port redis 6379
}

ensure_postgres() {
  if ! port_open 5432; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      install_packages postgresql
    fi
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then
      version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
      as_root pg_createcluster "$version" main >/dev/null
    fi
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if [ -f "$hba" ] && ! grep -q "segue-tests" "$hba"; then
      # Tests connect as postgres over TCP without a password, like the CI machines.
      as_root sed -i '1i host all all 127.0.0.1/32 trust # segue-tests\nlocal all all trust # segue-tests' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port postgres 5432
  else
    log "postgres is up"
  fi
  if command -v psql >/dev/null; then
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" \
        | grep -q 1; then
      psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test" || true
    fi
  fi
}

ensure_rabbitmq() {
  port_open 5672 && { log "rabbitmq is up"; return 0; }
  command -v rabbitmq-server >/dev/null || install_packages rabbitmq-server
  as_root rabbitmq-server -detached
  wait_port rabbitmq 5672
}

for service in "${want[@]}"; do
  case "$service" in
    redis) ensure_redis ;;
    postgres) ensure_postgres ;;
    rabbitmq) ensure_rabbitmq ;;
    *) log "unknown service '$service' (known: redis postgres rabbitmq)"; exit 2 ;;
  esac
done
