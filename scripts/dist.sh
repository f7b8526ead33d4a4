#!/usr/bin/env bash
# Release archives, one per kdb+ platform, laid out as KX ships its interfaces:
#
#   dist/qprom-VERSION-l64.tar.gz      qprom-VERSION-l64/{l64/libqprom.so, prom.q,
#   dist/qprom-VERSION-l64arm.tar.gz     exporter.q, README.md, LICENSE, docs/}
#   dist/SHA256SUMS                    (sha256sum -c SHA256SUMS, in dist/)
#
#   scripts/dist.sh VERSION L64_SO L64ARM_SO      (make dist)
#
# The .so files are the stripped release builds (scripts/build_so.sh); they are audited
# (tests/release/audit.sh) before anything is written. Archives are reproducible for a
# given tree: fixed owner, mode and mtime (the last commit's time), sorted names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $# == 3 ]] || { echo "usage: $0 VERSION L64_SO L64ARM_SO" >&2; exit 2; }
version=$1
declare -A so=([l64]=$2 [l64arm]=$3)

tests/release/audit.sh "${so[l64]}" "${so[l64arm]}"
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
mkdir -p dist
stage=$(mktemp -d "${TMPDIR:-/tmp}/qprom-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT
names=()
for plat in l64 l64arm; do
  name=qprom-$version-$plat
  d=$stage/$name
  mkdir -p "$d/$plat"
  install -m 0755 "${so[$plat]}" "$d/$plat/libqprom.so"
  install -m 0644 q/prom.q q/exporter.q README.md LICENSE "$d/"
  cp -r docs "$d/docs"
  # the debuglink names a file that is not in the archive: harmless (gdb then reads no
  # symbols), and the .debug files stay with the build (target/.../libqprom.so.debug)
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
      --mode='u+rwX,go+rX,go-w' -C "$stage" -czf "dist/$name.tar.gz.tmp" "$name"
  mv "dist/$name.tar.gz.tmp" "dist/$name.tar.gz"
  names+=("$name.tar.gz")
done
(cd dist && sha256sum "${names[@]}" > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
for n in "${names[@]}"; do echo "dist: dist/$n ($(stat -c %s "dist/$n") bytes)"; done
echo "dist: dist/SHA256SUMS"
