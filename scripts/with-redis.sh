#!/usr/bin/env bash
# Runs a command with a reachable Redis. Uses REDIS_URL (default redis://127.0.0.1:6379) when something
# answers there; otherwise starts a private redis-server on a free port (installing it with apt-get when
# missing), exports REDIS_URL for the command and stops that server afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

redis_answers() {
  node -e '
    const net = require("net");
    const u = new URL(process.argv[1]);
    const s = net.connect({ host: u.hostname || "127.0.0.1", port: Number(u.port || 6379) });
    const t = setTimeout(() => process.exit(1), 1500);
    s.on("connect", () => s.write("PING\r\n"));
    s.on("data", (d) => { clearTimeout(t); s.destroy(); process.exit(/^(\+PONG|-NOAUTH)/.test(String(d)) ? 0 : 1); });
    s.on("error", () => process.exit(1));
  ' "$1"
}

if redis_answers "$REDIS_URL"; then
  exec "$@"
fi

echo "[with-redis] nothing answers at ${REDIS_URL}; starting a local redis-server" >&2
if ! command -v redis-server >/dev/null 2>&1; then
  echo "[with-redis] redis-server not installed; installing it with apt-get" >&2
  SUDO=""; if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq redis-server >/dev/null
fi
PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
DIR="$(mktemp -d -t comfy-relay-redis-XXXXXX)"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" --daemonize yes \
  --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log"
cleanup() { redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT
export REDIS_URL="redis://127.0.0.1:${PORT}"
for _ in $(seq 1 50); do redis_answers "$REDIS_URL" && break; sleep 0.1; done
echo "[with-redis] using ${REDIS_URL}" >&2
"$@"
