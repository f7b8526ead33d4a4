#!/usr/bin/env bash
# The l64arm library proved on x86_64: tests/arm/driver.c calls every export with good
# and bad input, then serves the listener, under qemu-aarch64 with KX's l64arm libe.so
# and the stand-in q host (tests/host/qshim.c) built for aarch64 by zig cc;
# tests/arm/scrape.py scrapes it from the x86 side (promtool check metrics, the Python
# client's parsers) and answers its Pushgateway calls.
#
#   tests/arm/run.sh [target/l64arm/libqprom.so]
#
# The driver is first built for x86_64 and run the same way against the l64 library
# (target/l64/libqprom.so; QPROM_SO overrides), so that both architectures pass the
# same assertions. Needs scripts/deps.sh: qemu-user, libc6-arm64-cross, Zig in
# target/venv, target/pykx/{libe.so,k.h}, target/pykx-l64arm/libe.so.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
so_arm=$(realpath "${1:-$target/l64arm/libqprom.so}")
so_x86=$(realpath "${QPROM_SO:-$target/l64/libqprom.so}")
py=$target/venv/bin/python
out=$target/arm
mkdir -p "$out/x86_64" "$out/aarch64"
for f in "$target/pykx/k.h" "$target/pykx/libe.so" "$target/pykx-l64arm/libe.so" "$so_arm" "$so_x86"; do
  [[ -f $f ]] || { echo "arm: $f missing (scripts/deps.sh; make build build-arm)" >&2; exit 1; }
done
command -v qemu-aarch64 >/dev/null || { echo "arm: qemu-aarch64 missing: run scripts/deps.sh" >&2; exit 1; }

cflags=(-std=gnu11 -O1 -g -Wall -Wextra -Wno-unused-parameter -I"$target/pykx" -Itests/host)
# x86_64: the same C pieces with the host compiler
"${CC:-gcc}" "${cflags[@]}" -fPIC -shared -o "$out/x86_64/libqshim.so" tests/host/qshim.c \
  -L"$target/pykx" -Wl,--no-as-needed -le -Wl,-rpath,"$target/pykx" -ldl -lpthread
"${CC:-gcc}" "${cflags[@]}" -DQPROM_TARGET='"x86_64-unknown-linux-gnu"' -o "$out/x86_64/driver" tests/arm/driver.c \
  -L"$out/x86_64" -lqshim -Wl,-rpath,"$out/x86_64" -L"$target/pykx" -le -Wl,-rpath,"$target/pykx" -ldl -lpthread -lm
# aarch64: zig cc for glibc 2.17, linked against KX's l64arm libe.so
zcc=("$py" -m ziglang cc -target aarch64-linux-gnu.2.17)
arm_libe=$target/pykx-l64arm
"${zcc[@]}" "${cflags[@]}" -fPIC -shared -o "$out/aarch64/libqshim.so" tests/host/qshim.c \
  -L"$arm_libe" -Wl,--no-as-needed -le -Wl,-rpath,"$arm_libe" -ldl -lpthread
"${zcc[@]}" "${cflags[@]}" -DQPROM_TARGET='"aarch64-unknown-linux-gnu"' -o "$out/aarch64/driver" tests/arm/driver.c \
  -L"$out/aarch64" -lqshim -Wl,-rpath,"$out/aarch64" -L"$arm_libe" -le -Wl,-rpath,"$arm_libe" -ldl -lpthread -lm

status=0
echo "arm: x86_64 driver, $so_x86"
"$py" tests/arm/scrape.py --target x86_64-unknown-linux-gnu --workdir "$out/x86_64" -- \
  "$out/x86_64/driver" "$so_x86" || status=1
echo "arm: aarch64 driver under qemu, $so_arm"
"$py" tests/arm/scrape.py --target aarch64-unknown-linux-gnu --workdir "$out/aarch64" -- \
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/aarch64/driver" "$so_arm" || status=1
exit $status
