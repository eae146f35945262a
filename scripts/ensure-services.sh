#!/usr/bin/env bash
# Start the local services the scaled-out tests use (PostgreSQL, Redis, RabbitMQ) when they are not running.
# The embedded default (`make run`) needs none of them. Each check is a real connection attempt on loopback.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
  echo "ensure-services: $name did not come up on port $port" >&2
  return 1
}

need_root_cmd() { if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

status=0
if ! port_open 5432; then
  echo "ensure-services: starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null; then
    need_root_cmd apt-get update -qq && need_root_cmd apt-get install -y -qq postgresql >/dev/null
  fi
  ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -z "$ver" ]; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    need_root_cmd pg_createcluster "$ver" main >/dev/null
  fi
  need_root_cmd pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_port 5432 PostgreSQL || status=1
fi
if ! port_open 6379; then
  echo "ensure-services: starting Redis"
  command -v redis-server >/dev/null || { need_root_cmd apt-get update -qq && need_root_cmd apt-get install -y -qq redis-server >/dev/null; }
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_port 6379 Redis || status=1
fi
if ! port_open 5672; then
  echo "ensure-services: starting RabbitMQ"
  command -v rabbitmq-server >/dev/null || { need_root_cmd apt-get update -qq && need_root_cmd apt-get install -y -qq rabbitmq-server >/dev/null; }
  need_root_cmd rabbitmq-server -detached || true
  wait_port 5672 RabbitMQ || status=1
fi
exit $status
