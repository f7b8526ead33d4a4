#!/usr/bin/env bash
# Build the release libqprom.so for one kdb+ platform, linked against glibc 2.17 so that
# it loads wherever q does (RHEL 7 and later), stripped, its debug info kept beside it.
#
#   scripts/build_so.sh l64|l64arm
#
#   l64     x86_64-unknown-linux-gnu.2.17  ->  target/l64/libqprom.so
#   l64arm  aarch64-unknown-linux-gnu.2.17 ->  target/l64arm/libqprom.so
#
# Each with `libqprom.so.debug` beside it (objcopy --only-keep-debug) and a
# .gnu_debuglink in the .so naming it, which gdb, valgrind and perf follow when the
# .debug file sits in the same directory (or in `.debug/` under it).
#
# cargo-zigbuild and Zig come from target/venv (scripts/deps.sh, pinned in
# scripts/build-requirements.txt). The unstripped build stays in
# target/<triple>/release/libqprom.so. The crate is rlib-only (Cargo.toml), so this is the
# one place a cdylib is built: a plain `cargo build --release` makes no libqprom.so that
# could pass for this one (it would need this machine's glibc, GLIBC_2.34 on Debian 12).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
venv=$target/venv

case ${1:-} in
  l64) triple=x86_64-unknown-linux-gnu; out=$target/l64; binutils= ;;
  l64arm) triple=aarch64-unknown-linux-gnu; out=$target/l64arm; binutils=aarch64-linux-gnu- ;;
  *) echo "usage: $0 l64|l64arm" >&2; exit 2 ;;
esac

if [[ ! -x $venv/bin/cargo-zigbuild ]] || ! "$venv/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "build_so.sh: cargo-zigbuild or ziglang missing from $venv: run scripts/deps.sh (make deps)" >&2
  exit 1
fi
for tool in objcopy strip; do
  command -v "${binutils}$tool" >/dev/null || {
    echo "build_so.sh: ${binutils}$tool not found: run scripts/deps.sh (make deps)" >&2; exit 1; }
done

# cargo-zigbuild runs Zig as `python3 -m ziglang` when there is no `zig` on PATH: the
# venv's python3 first on PATH is the one that has it.
PATH=$venv/bin:$PATH "$venv/bin/cargo-zigbuild" rustc --lib --crate-type cdylib --release --target "$triple.2.17" \
  ${CARGO_BUILD_FLAGS:-}

built=$target/$triple/release/libqprom.so
mkdir -p "$out"
# The stripped file is written under a temporary name and renamed, so that a host
# loading target/l64/libqprom.so never sees half a file.
tmp=$out/.libqprom.so.$$
trap 'rm -f "$tmp"' EXIT
"${binutils}objcopy" --only-keep-debug "$built" "$out/libqprom.so.debug"
"${binutils}strip" --strip-all -o "$tmp" "$built"
# the link records the .debug file's name and the CRC of its content
"${binutils}objcopy" --add-gnu-debuglink="$out/libqprom.so.debug" "$tmp"
chmod 0755 "$tmp"
mv "$tmp" "$out/libqprom.so"
echo "build_so.sh: $1: $out/libqprom.so ($(stat -c %s "$out/libqprom.so") bytes, stripped; debug info in libqprom.so.debug)"
