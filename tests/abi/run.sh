#!/usr/bin/env bash
# src/ffi/qapi.rs against KX's k.h, on x86_64 (natively) and aarch64 (under qemu):
# layout.rs is compiled by rustc for each target as an object and linked into
# k_layout.c, built by the C compiler for the same target with k.h; the program
# compares them entry by entry.
#
#   tests/abi/run.sh
#
# Needs target/pykx/k.h and the aarch64 tools (scripts/deps.sh): the Rust target
# aarch64-unknown-linux-gnu, Zig (target/venv), qemu-user, libc6-arm64-cross.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
out=$target/abi
mkdir -p "$out"
kh=$target/pykx
[[ -f $kh/k.h ]] || { echo "abi: $kh/k.h missing: run scripts/deps.sh" >&2; exit 1; }

status=0
for arch in x86_64 aarch64; do
  rustc --edition 2021 --crate-type lib --emit obj -O --target "$arch-unknown-linux-gnu" \
    -o "$out/qapi-$arch.o" tests/abi/layout.rs
  if [[ $arch == x86_64 ]]; then
    ${CC:-gcc} -std=gnu11 -Wall -I"$kh" -o "$out/k_layout-$arch" tests/abi/k_layout.c "$out/qapi-$arch.o"
    run=("$out/k_layout-$arch")
  else
    "$target/venv/bin/python" -m ziglang cc -target aarch64-linux-gnu.2.17 -std=gnu11 -Wall -I"$kh" \
      -o "$out/k_layout-$arch" tests/abi/k_layout.c "$out/qapi-$arch.o"
    run=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/k_layout-$arch")
  fi
  echo "abi: $arch: k.h vs src/ffi/qapi.rs"
  "${run[@]}" | sed 's/^/  /' || { echo "abi: $arch: src/ffi/qapi.rs differs from k.h" >&2; status=1; }
done
[[ $status == 0 ]] && echo "abi: qapi.rs matches k.h on x86_64 and aarch64"
exit $status
