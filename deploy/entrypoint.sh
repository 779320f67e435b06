#!/usr/bin/env bash
# The Conversa image's entrypoint.
#   head               wait for PostgreSQL, migrate, `ray start --head` (dashboard on 0.0.0.0),
#                      then `conversa run` attached to that cluster (RAY_ADDRESS): it starts the
#                      shared actors and deploys the Serve app onto it, and stays in the
#                      foreground (SIGTERM deletes the app)
#   worker             `ray start --address=$RAY_HEAD_ADDRESS --block`
#   healthcheck ROLE   exit 0 when the head serves /healthz, or the worker's raylet is alive
#   anything else      run as a command (e.g. `conversa migrate`, `bash`)
# Both Ray roles start with the environment `conversa ray-env` prints (Serve's HAProxy ingress
# flags) and offer the conversation slots it prints, so both read the same Conversa settings.
set -euo pipefail

RAY_GCS_PORT=6379
METRICS_EXPORT_PORT="${METRICS_EXPORT_PORT:-8090}" # fixed, so it can be firewalled
# Ray keeps its object store in /dev/shm; compose gives the container shm_size 1gb.
OBJECT_STORE_BYTES="${OBJECT_STORE_BYTES:-536870912}"

log() { echo "conversa-entrypoint: $*" >&2; }

ray_env() {
	# `export KEY=VALUE` lines plus CONVERSA_RAY_RESOURCES; every Ray process inherits them.
	eval "$(conversa ray-env)"
}

wait_for_postgres() {
	local timeout_s="${POSTGRES_WAIT_S:-120}"
	log "waiting up to ${timeout_s}s for PostgreSQL"
	python - "$timeout_s" <<'PY'
import asyncio, os, sys, time
import asyncpg

url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        asyncio.run(asyncio.wait_for(asyncpg.connect(url), 5)).terminate()
        break
    except Exception as e:  # not up yet: refused, starting up, DNS not ready
        if time.monotonic() > deadline:
            sys.exit(f"PostgreSQL did not accept connections: {e!r}")
        time.sleep(1)
PY
}

start_head() {
	: "${DATABASE_URL:?DATABASE_URL must be set: there is no embedded PostgreSQL in a container}"
	wait_for_postgres
	conversa migrate
	ray_env
	log "starting the Ray head"
	# RAY_ADDRESS is for `conversa run` below; `ray start --head` must not see it.
	env -u RAY_ADDRESS ray start --head \
		--port="$RAY_GCS_PORT" \
		--dashboard-host=0.0.0.0 --dashboard-port="${DASHBOARD_PORT:-8265}" \
		--metrics-export-port="$METRICS_EXPORT_PORT" \
		--object-store-memory="$OBJECT_STORE_BYTES" \
		--resources="$CONVERSA_RAY_RESOURCES" \
		${RAY_NUM_CPUS:+--num-cpus="$RAY_NUM_CPUS"} \
		--disable-usage-stats
	export RAY_ADDRESS="${RAY_ADDRESS:-127.0.0.1:$RAY_GCS_PORT}"
	exec conversa run
}

start_worker() {
	: "${RAY_HEAD_ADDRESS:?RAY_HEAD_ADDRESS (host:port of the Ray head) must be set}"
	ray_env
	log "joining the Ray cluster at $RAY_HEAD_ADDRESS"
	exec env -u RAY_ADDRESS ray start --address="$RAY_HEAD_ADDRESS" \
		--metrics-export-port="$METRICS_EXPORT_PORT" \
		--object-store-memory="$OBJECT_STORE_BYTES" \
		--resources="$CONVERSA_RAY_RESOURCES" \
		${RAY_NUM_CPUS:+--num-cpus="$RAY_NUM_CPUS"} \
		--disable-usage-stats --block
}

healthcheck() {
	case "${1:-}" in
	head) # HAProxy -> an Ingress replica: the app is deployed and answering.
		exec python -c 'import os, urllib.request
port = os.environ.get("HTTP_PORT", "8000")
urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)' ;;
	worker) # `ray start --block` exits (and the container with it) when the node dies.
		exec python -c 'import psutil, sys
sys.exit(0 if any(p.info["name"] == "raylet" for p in psutil.process_iter(["name"])) else 1)' ;;
	*)
		log "usage: healthcheck head|worker"
		exit 2
		;;
	esac
}

case "${1:-head}" in
head) start_head ;;
worker) start_worker ;;
healthcheck) healthcheck "${2:-}" ;;
*) exec "$@" ;;
esac
