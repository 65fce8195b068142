#!/usr/bin/env bash
# HTTP throughput: emupanel's /api/v1/health against a plain-C libmicrohttpd server with the
# same flags, pool size and body, measured with wrk in the same run. Prints both and the ratio.
# Goal (issue 2): emupanel >= 0.95 x C, p99 < 5 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-2}
out=bench/out
mkdir -p "$out"

command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)"; exit 1; }
cc -O2 -o "$out/http_anchor" bench/http_anchor.c $(pkg-config --cflags --libs libmicrohttpd)
swift build -c release --product emupanel >/dev/null

"$out/http_anchor" 18090 2 & c_pid=$!
EMUPANEL_TOKEN=bench-token-123456 .build/release/emupanel serve --listen 127.0.0.1:18091 \
    --data-dir "$out/data" --log-level warning >"$out/emupanel.log" 2>&1 & e_pid=$!
trap 'kill $c_pid $e_pid 2>/dev/null; wait 2>/dev/null' EXIT
for port in 18090 18091; do
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.1; done
done

run() { # port -> "req/s p99_ms"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$1/api/v1/health" | awk '
        /Requests\/sec/ { rps = $2 }
        /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; p99 = v }
        END { printf "%s %s\n", rps, p99 }'
}

# Alternate the two so drift on a noisy machine hits both alike; keep each one's best round.
best_c=0; best_e=0; p99_c=0; p99_e=0
for round in $(seq "$ROUNDS"); do
    read -r rps p99 < <(run 18090); echo "round $round  C libmicrohttpd  $rps req/s  p99 ${p99} ms"
    if awk "BEGIN{exit !($rps > $best_c)}"; then best_c=$rps; p99_c=$p99; fi
    read -r rps p99 < <(run 18091); echo "round $round  emupanel         $rps req/s  p99 ${p99} ms"
    if awk "BEGIN{exit !($rps > $best_e)}"; then best_e=$rps; p99_e=$p99; fi
done
ratio=$(awk "BEGIN{printf \"%.3f\", $best_e / $best_c}")
echo "C libmicrohttpd: $best_c req/s (p99 $p99_c ms)"
echo "emupanel:        $best_e req/s (p99 $p99_e ms)"
echo "ratio emupanel/C: $ratio   (goal >= 0.95, p99 < 5 ms)"
