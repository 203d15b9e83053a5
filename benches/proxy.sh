#!/usr/bin/env bash
# Benchmark of teal's local proxy next to nginx, over the same two backends.
#
#   benches/proxy.sh            # writes docs/PROXY-BENCHMARK.md and prints it
#
# One run measures three targets with the same load generator (wrk), the same
# settings and the same two backends (instances of `teal demo-app`):
#
#   direct  wrk -> backend A                     (the ceiling: no proxy at all)
#   teal    wrk -> `teal local serve` (50/50)   -> backends A and B
#   nginx   wrk -> nginx weighted upstream 50/50 -> backends A and B
#
# The targets take turns, ROUNDS times, so a noisy minute hurts all three
# alike; the table gives the median round of each. nginx gets its best
# config: one worker per core, keep-alive to the upstream, no access log.
# teal runs as shipped, gates on (every request is recorded in the window).
#
# Settings (environment): DURATION (10s), CONNECTIONS (64), THREADS (2),
# ROUNDS (3), OUT (docs/PROXY-BENCHMARK.md). nginx, wrk and curl are
# installed from the distribution when missing (apt-get; root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-docs/PROXY-BENCHMARK.md}

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "== release build"
cargo build --release --locked --quiet
TEAL="$PWD/target/release/teal"

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Found while all three probes are bound, so they differ.
read -r PROXY ADMIN NGINX_PORT < <(python3 -c '
import socket
held = [socket.socket() for _ in range(3)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')

cat > "$work/teal.toml" <<TOML
[service]
name = "bench"

[fleet]
kind = "local"
command = ["$TEAL", "demo-app", "--port", "{port}", "--revision", "{revision}"]
instances = 1
health_path = "/healthz"

[router]
kind = "local"
listen = "127.0.0.1:$PROXY"
admin = "127.0.0.1:$ADMIN"

[gates.local]
max_5xx_percent = 5
max_p99 = "500ms"
min_requests = 20
window = "10s"

[strategy]
name = "canary-10-5m"
TOML

echo "== teal local serve, blue and green side by side at 50/50"
"$TEAL" local serve --config "$work/teal.toml" --initial-revision v1 > "$work/serve.log" 2>&1 &
pids+=($!)
admin="http://127.0.0.1:$ADMIN"
for _ in $(seq 100); do curl -sf "$admin/v1/instances" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "$admin/v1/fleets/b" -d '{"revision":"v1","desired":1}' >/dev/null
for _ in $(seq 100); do
    healthy=$(curl -sf "$admin/v1/instances" | python3 -c 'import json,sys; print(sum(i["healthy"] for i in json.load(sys.stdin)))')
    [ "$healthy" = 2 ] && break
    sleep 0.1
done
[ "$healthy" = 2 ] || { echo "backends did not become healthy"; cat "$work/serve.log"; exit 1; }
curl -sf -X PUT "$admin/v1/weights" -d '{"a":50,"b":50}' >/dev/null
read -r A B < <(curl -sf "$admin/v1/instances" | python3 -c 'import json,sys; print(*[i["port"] for i in json.load(sys.stdin)])')
echo "backends on 127.0.0.1:$A and 127.0.0.1:$B; teal proxy on :$PROXY"

echo "== nginx, weighted upstream over the same backends"
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream backends {
        server 127.0.0.1:$A weight=50;
        server 127.0.0.1:$B weight=50;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NGINX_PORT/" >/dev/null && break; sleep 0.1; done

declare -A url=(
    [direct]="http://127.0.0.1:$A/"
    [teal]="http://127.0.0.1:$PROXY/"
    [nginx]="http://127.0.0.1:$NGINX_PORT/"
)
for target in direct teal nginx; do
    curl -sf "${url[$target]}" >/dev/null || { echo "$target does not answer"; exit 1; }
    wrk -t1 -c8 -d2s "${url[$target]}" >/dev/null # warm-up
done
for round in $(seq "$ROUNDS"); do
    for target in direct teal nginx; do
        echo "== round $round/$ROUNDS: $target"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${url[$target]}" > "$work/$target.$round.txt"
        grep -E "Requests/sec|^ +(50|99)%" "$work/$target.$round.txt"
    done
done
# Every request the proxy saw during the runs, per slot: both backends served.
curl -sf "$admin/v1/stats" > "$work/stats.json"

python3 - "$work" "$ROUNDS" "$OUT" "$DURATION" "$CONNECTIONS" "$THREADS" <<'PY'
import json, os, platform, re, statistics, subprocess, sys
work, rounds, out, duration, conns, threads = sys.argv[1:]
rounds = int(rounds)

def ms(text):
    n, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

def parse(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", t, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", t, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return rps, p50, p99, errors

rows = {}
for target in ["direct", "teal", "nginx"]:
    runs = [parse(f"{work}/{target}.{r}.txt") for r in range(1, rounds + 1)]
    rows[target] = {
        "rps": statistics.median(r[0] for r in runs),
        "p50": statistics.median(r[1] for r in runs),
        "p99": statistics.median(r[2] for r in runs),
        "errors": sum(r[3] for r in runs),
        "all": [round(r[0]) for r in runs],
    }

def sh(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except Exception:
        return "?"

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
stats = json.load(open(f"{work}/stats.json"))
split = ", ".join(f"slot {s['slot']}: {s['requests']:,}" for s in stats)
t, n = rows["teal"], rows["nginx"]
lines = [
    "# Proxy benchmark: teal's local proxy next to nginx",
    "",
    "Reproduce with `benches/proxy.sh` (installs nginx, wrk and curl from the distribution when",
    "missing, builds teal in release mode, writes this file). Numbers from one run, on this machine:",
    "",
    f"- CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
    f"- {sh('nginx', '-v')}; {sh('wrk', '-v')}; teal {sh('git', 'describe', '--always', '--dirty')}",
    f"- load: `wrk -t{threads} -c{conns} -d{duration} --latency`, GET /, {rounds} rounds, the three targets taking turns; median round shown",
    "- backends: two `teal demo-app` processes; teal and nginx both split 50/50 between them",
    "- everything (load generator, proxy, backends) shares the same cores, as it would on one host",
    "",
    "| target | requests/s | p50 | p99 | errors | requests/s per round |",
    "|---|---:|---:|---:|---:|---|",
]
for target, label in [("direct", "straight to one backend"), ("teal", "teal local proxy, 50/50"), ("nginx", "nginx upstream, 50/50")]:
    r = rows[target]
    lines.append(f"| {label} | {r['rps']:,.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['errors']} | {', '.join(f'{x:,}' for x in r['all'])} |")
lines += [
    "",
    f"teal / nginx: throughput {t['rps'] / n['rps']:.2f}x, p99 {t['p99'] / n['p99']:.2f}x (below 1 is better for p99).",
    f"Requests teal's proxy routed during the run, per slot: {split}.",
    "",
]
text = "\n".join(lines)
open(out, "w").write(text)
print(text)
PY
