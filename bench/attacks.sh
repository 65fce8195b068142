#!/usr/bin/env bash
# Slowloris and unauthenticated bodies (issue 11 items 12 and 13) against emupanel, the plain-C
# libmicrohttpd anchor (bench/http_anchor.c: the library's own behaviour) and, when given, an
# older emupanel binary, all in one run. Prints /health latency under the slowloris attack and
# the server's RSS under 512 connections sending 1 MiB bodies.
# Usage: bench/attacks.sh [OLD_EMUPANEL_BINARY]   (DURATION=seconds of attack, default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
out=bench/out/attacks
rm -rf "$out" && mkdir -p "$out"
cc -O2 -o "$out/http_anchor" bench/http_anchor.c $(pkg-config --cflags --libs libmicrohttpd)
swift build -c release --product emupanel >/dev/null
targets=("emupanel=.build/release/emupanel" "C-anchor=c:$out/http_anchor")
[ $# -ge 1 ] && targets+=("before=$1")
# 512 sockets for the attack plus the server's own.
ulimit -n 4096
exec python3 bench/attacks.py "$out" "$DURATION" "${targets[@]}"
