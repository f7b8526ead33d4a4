#!/usr/bin/env bash
# Builds the stand-in q host: target/host/libqshim.so (q-only C API entry points, with
# libe.so as its DT_NEEDED dependency), the C test extension target/host/libfake_ext.so
# and the libe probe target/host/libe_probe. Needs target/pykx/{libe.so,k.h}
# (scripts/deps.sh; or QHOST_PYKX_WHEEL=/path/to/pykx-*.whl to extract them here).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/tests/host
target=${TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
pykx=${QHOST_PYKX_DIR:-$target/pykx}
out=${QHOST_BUILD_DIR:-$target/host}
if [[ ! -f $pykx/libe.so || ! -f $pykx/k.h ]]; then
  if [[ -n ${QHOST_PYKX_WHEEL:-} ]]; then
    mkdir -p "$pykx"
    python3 - "$QHOST_PYKX_WHEEL" "$pykx" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for member, name in (("pykx/lib/l64/libe.so", "libe.so"), ("pykx/include/k.h", "k.h")):
    with open(f"{sys.argv[2]}/{name}", "wb") as f:
        f.write(z.read(member))
PY
  else
    echo "build.sh: $pykx/libe.so and k.h missing: run scripts/deps.sh (or set QHOST_PYKX_WHEEL)" >&2
    exit 1
  fi
fi
mkdir -p "$out"
cc=${CC:-gcc}
cflags=(-std=gnu11 -O1 -g -fPIC -Wall -Wextra -Wno-unused-parameter -I"$pykx" -I"$src")
# the shim: NEEDED libe.so (found through RUNPATH next to it), so one RTLD_GLOBAL dlopen
# of it puts [libqshim, libe] into the global scope in that order
"$cc" "${cflags[@]}" -shared -o "$out/libqshim.so" "$src/qshim.c" \
  -L"$pykx" -Wl,--no-as-needed -le -Wl,-rpath,"$pykx" -ldl -lpthread
# the test extension: like a Rust cdylib, no NEEDED on libe or the shim; its q API
# references stay undefined until the host's global scope resolves them
"$cc" "${cflags[@]}" -shared -o "$out/libfake_ext.so" "$src/fake_ext.c" -lpthread
"$cc" "${cflags[@]}" -o "$out/libe_probe" "$src/libe_probe.c" \
  -L"$pykx" -le -Wl,-rpath,"$pykx" -lpthread
"$cc" -std=gnu11 -O2 -Wall -I"$pykx" -I"$src" -o "$out/bench_export" "$src/bench_export.c" \
  -L"$out" -lqshim -Wl,-rpath,"$out" -L"$pykx" -le -Wl,-rpath,"$pykx" -ldl -lpthread
"$cc" -std=gnu11 -O2 -Wall -I"$pykx" -I"$src" -o "$out/bench_middleware" "$src/bench_middleware.c" \
  -L"$out" -lqshim -Wl,-rpath,"$out" -L"$pykx" -le -Wl,-rpath,"$pykx" -ldl -lpthread
