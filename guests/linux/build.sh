#!/usr/bin/env bash
# Builds the Linux guest from Debian packages: a kernel from linux-source-6.1 with
# gcc-riscv64-linux-gnu (tinyconfig + kernel.config) and an initramfs holding init.c.
# The result goes to a cache outside the source tree,
#   ${EMUPANEL_CACHE:-~/.cache/emupanel}/linux/<key>/{Image,initramfs.cpio,kernel.config}
# where <key> names the inputs: the packages' versions and the hash of the files here.
# A cache hit costs nothing; nothing built here is ever committed.
#
#   build.sh              build when missing, print the directory
#   build.sh --print-dir  print the directory without building (exit 1 when not built)
#   build.sh --packages   print the Debian packages the build needs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
packages=(linux-source-6.1 gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu make gcc libc6-dev flex bison bc xz-utils)
if [ "${1:-}" = "--packages" ]; then echo "${packages[*]}"; exit 0; fi

cache=${EMUPANEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/emupanel}/linux
inputs=("$here/build.sh" "$here/kernel.config" "$here/init.c")

versions() {
    dpkg-query -W -f='${Package}=${Version}\n' linux-source-6.1 gcc-12-riscv64-linux-gnu binutils-riscv64-linux-gnu 2>/dev/null
}
# linux-source's upstream version is part of the name, so a person sees what the cache holds.
source_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
key="${source_version:-none}-$( { versions; cat "${inputs[@]}"; } | sha256sum | cut -c1-16)"
out="$cache/$key"

if [ "${1:-}" = "--print-dir" ]; then
    echo "$out"
    [ -f "$out/Image" ] && [ -f "$out/initramfs.cpio" ]
    exit
fi
if [ -f "$out/Image" ] && [ -f "$out/initramfs.cpio" ]; then
    echo "$out"
    exit 0
fi

for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
        echo "linux guest: package $p is missing (run: make linux as root, or apt-get install ${packages[*]})" >&2
        exit 1
    }
done

start=$SECONDS
step() { printf '[linux %3ds] %s\n' $((SECONDS - start)) "$*" >&2; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-XXXXXXXX")
trap 'rm -rf "$work"' EXIT
log="$work/build.log"
failed() {
    echo "linux guest: $1 failed; the last lines of $log:" >&2
    tail -n 30 "$log" >&2
    trap - EXIT   # keep the log to read
    exit 1
}

tarball=/usr/src/linux-source-6.1.tar.xz
step "unpacking $tarball ($source_version)"
# Documentation is not needed beyond its Kconfig, nor other boards' device trees.
tar -xJf "$tarball" -C "$work" --exclude='*/Documentation/*' --exclude='*/tools/testing' \
    --exclude='*/arch/arm/boot/dts' --exclude='*/arch/arm64/boot/dts' >>"$log" 2>&1 || failed "unpacking"
tar -xJf "$tarball" -C "$work" --wildcards '*/Documentation/Kconfig' >>"$log" 2>&1 || failed "unpacking"
src=$(echo "$work"/linux-source-6.1)
obj="$work/obj"
kmake() { make -C "$src" O="$obj" ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu- "$@"; }
# The version banner the kernel prints names these instead of this host and this hour.
export KBUILD_BUILD_USER=emupanel KBUILD_BUILD_HOST=emupanel KBUILD_BUILD_TIMESTAMP="2026-01-01 00:00:00 UTC"

step "configuring: tinyconfig + kernel.config"
kmake tinyconfig >>"$log" 2>&1 || failed "tinyconfig"
"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$here/kernel.config" >>"$log" 2>&1 || failed "merging kernel.config"
kmake olddefconfig >>"$log" 2>&1 || failed "olddefconfig"
# Every option of the fragment must have survived: a dependency that silently dropped one
# would build a kernel that is not the one described.
while IFS= read -r line; do
    case "$line" in CONFIG_*=*) ;; *) continue ;; esac
    name=${line%%=*} value=${line#*=}
    got=$(grep -E "^$name=|^# $name is not set" "$obj/.config" || true)
    if [ "$value" = n ]; then
        [ -z "$got" ] || [ "$got" = "# $name is not set" ] || { echo "linux guest: $line did not hold ($got)" >&2; exit 1; }
    else
        [ "$got" = "$line" ] || { echo "linux guest: $line did not hold (${got:-unset})" >&2; exit 1; }
    fi
done <"$here/kernel.config"

jobs=$(nproc)
step "compiling the kernel with $jobs jobs (log: $log)"
compiled=0
kmake -j"$jobs" Image 2>&1 | while IFS= read -r line; do
    echo "$line" >>"$log"
    case "$line" in *" CC "*|*" AS "*) compiled=$((compiled + 1))
        [ $((compiled % 100)) -eq 0 ] && step "  $compiled files compiled" ;; esac
done || true
[ -f "$obj/arch/riscv/boot/Image" ] || failed "the kernel build"

step "building init (RV64IMAC, soft-float, no libc)"
riscv64-linux-gnu-gcc -march=rv64imac -mabi=lp64 -Os -Wall -Wextra -Werror -ffreestanding -fno-builtin \
    -fno-stack-protector -fno-pie -no-pie -nostdlib -static -o "$work/init" "$here/init.c" >>"$log" 2>&1 || failed "init"

step "packing the initramfs (newc cpio, uncompressed)"
gcc -O2 -o "$work/gen_init_cpio" "$src/usr/gen_init_cpio.c" >>"$log" 2>&1 || failed "gen_init_cpio"
cat >"$work/initramfs.list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /mnt 0755 0 0
file /init $work/init 0755 0 0
EOF
# A fixed mtime makes the archive a function of its inputs.
"$work/gen_init_cpio" -t 0 "$work/initramfs.list" >"$work/initramfs.cpio" 2>>"$log" \
    || failed "the initramfs"

result="$work/result"
mkdir "$result"
cp "$obj/arch/riscv/boot/Image" "$obj/System.map" "$work/initramfs.cpio" "$result/"
cp "$obj/.config" "$result/kernel.config"
cp "$log" "$result/build.log"
rm -rf "$out"
mv "$result" "$out"
step "done: $out ($(du -h "$out/Image" | cut -f1) kernel, $(du -h "$out/initramfs.cpio" | cut -f1) initramfs)"
echo "$out"
