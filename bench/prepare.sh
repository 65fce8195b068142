# Sourced by snapshot.sh and migrate.sh, with BENCH naming the run: the settings both take
# (ROUNDS from $1, RUN_SECONDS, QEMU), a clean bench/out/$BENCH removed on exit, and a release
# build of emupanel in $BIN. Their Python half reads the same through benchlib.settings().
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
RUN_SECONDS=${RUN_SECONDS:-3}
QEMU=${QEMU:-qemu-system-riscv64}
OUT=bench/out/$BENCH
rm -rf "$OUT"; mkdir -p "$OUT"
trap 'rm -rf "$OUT"' EXIT

# EMUPANEL_BIN runs a binary built elsewhere (an A/B against another commit) instead.
if [ -n "${EMUPANEL_BIN:-}" ]; then
  BIN=$EMUPANEL_BIN
else
  swift build -c release --product emupanel >/dev/null
  BIN="$(swift build -c release --show-bin-path)/emupanel"
fi
