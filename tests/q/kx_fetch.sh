#!/usr/bin/env bash
# KX's exporter (KxSystems/prometheus-kdb-exporter, tag 1.0.1) for the drop-in tests
# (tests/q/test_kx_exporter.q, test_kx_user_example.q; tests/host/test_kx_dropin.py
# compares its transcription with the fetched exporter.q). KX's files are not committed:
# this fetches them into target/kx/ and checks pinned sha256s; a file already there with
# the right hash is kept (idempotent, no network).
#
# target/kx/extract.q is ours, not KX's: KX's exporter.q starts with `\l extract.q`, and
# this stand-in loads qprom's prom.q instead, so `cd target/kx && q exporter.q -p 8080`
# is KX's script, unchanged, on qprom.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/${TARGET_DIR:-target}/kx
# KX_FETCH_BASE: another copy of the repository at 1.0.1 (a mirror, or file:///dir)
base=${KX_FETCH_BASE:-https://raw.githubusercontent.com/KxSystems/prometheus-kdb-exporter/1.0.1}
mkdir -p "$dir"

fetch() {   # fetch <path in KX's repository> <sha256>
  local name out
  name=$(basename "$1")
  out=$dir/$name
  if [[ -f $out ]] && echo "$2  $out" | sha256sum -c --status; then return 0; fi
  curl -fsSL --retry 3 --max-time 60 -o "$out.tmp" "$base/$1"
  if ! echo "$2  $out.tmp" | sha256sum -c --status; then
    echo "kx_fetch.sh: $1 at 1.0.1 does not have the pinned sha256 $2" >&2
    rm -f "$out.tmp"
    return 1
  fi
  mv "$out.tmp" "$out"
}

fetch q/exporter.q 248d4338a42038d8df8dd631534ab31ce212d33b8dc6d2c4d9170481e66ba4e2
fetch examples/kdb_user_example.q bbd2c0d763c555a4c58615d09fe67ae23eae1a9c7f090fa762f890970d2b4fc3

# The library is found as prom.q finds it: $QPROM_LIB (tests/q/run.sh sets it), else
# .prom.LIBPATH, else libqprom in $QHOME/l64 or LD_LIBRARY_PATH.
stub="/ qprom's stand-in for KX's extract.q (written by tests/q/kx_fetch.sh): prom.q in its place
\\l $root/q/prom.q"
if [[ ! -f $dir/extract.q ]] || [[ $(cat "$dir/extract.q") != "$stub" ]]; then
  printf '%s\n' "$stub" > "$dir/extract.q"
fi
echo "kx_fetch.sh: $dir: exporter.q kdb_user_example.q (1.0.1, sha256 checked), extract.q (stand-in)"
