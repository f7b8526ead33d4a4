#!/usr/bin/env bash
# Audit release libraries for the hosts kdb+ runs on: fails if a .so
#   * needs a GLIBC symbol version above 2.17 (objdump -T),
#   * links a library other than libc, libm, libpthread, libdl, librt, libgcc_s and the
#     dynamic loader (readelf -d NEEDED),
#   * exports a defined dynamic symbol other than the qprom_* functions (nm -D).
#
#   tests/release/audit.sh LIB.so...      (make test: target/l64/libqprom.so and
#                                          target/l64arm/libqprom.so)
#
# librt is allowed because glibc before 2.17 kept clock_gettime there; our builds do not
# link it today. The binutils of the file's architecture are used (aarch64-linux-gnu-*
# for aarch64, from binutils-aarch64-linux-gnu).
set -uo pipefail
[[ $# -gt 0 ]] || { echo "usage: $0 LIB.so..." >&2; exit 2; }
floor=2.17
allowed_needed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
status=0
fail() { echo "audit: FAIL: $so: $*"; status=1; }

for so in "$@"; do
  if [[ ! -f $so ]]; then echo "audit: FAIL: $so: no such file"; status=1; continue; fi
  machine=$(readelf -h "$so" | sed -n 's/^ *Machine: *//p')
  case $machine in
    *X86-64*) pre= ;;
    *AArch64*) pre=aarch64-linux-gnu- ;;
    *) fail "unexpected machine '$machine'"; continue ;;
  esac
  bad=0
  # every GLIBC_x.y version the file references, the highest last
  versions=$("${pre}objdump" -T "$so" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -u -V)
  [[ -n $versions ]] || fail "no GLIBC symbol versions found (objdump -T)"
  for v in $versions; do
    if [[ $(printf '%s\n%s\n' "${v#GLIBC_}" "$floor" | sort -V | tail -1) != "$floor" ]]; then
      syms=$("${pre}objdump" -T "$so" | grep -F "($v)" | awk '{print $NF}' | head -5 | tr '\n' ' ')
      fail "needs $v (above GLIBC_$floor): $syms"; bad=1
    fi
  done
  needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  for lib in $needed; do
    [[ $lib =~ $allowed_needed ]] || { fail "links $lib"; bad=1; }
  done
  exports=$("${pre}nm" -D --defined-only "$so" | awk '{print $3}')
  n_q=$(grep -c '^qprom_' <<<"$exports")
  [[ $n_q -gt 0 ]] || { fail "exports no qprom_* function"; bad=1; }
  others=$(grep -v -e '^qprom_' -e '^$' <<<"$exports" | head -10 | tr '\n' ' ')
  [[ -z $others ]] || { fail "exports symbols other than qprom_*: $others"; bad=1; }
  if [[ $bad == 0 ]]; then
    echo "audit: ok: $so ($machine): highest $(tail -1 <<<"$versions"), needs $(tr '\n' ' ' <<<"$needed"); exports $n_q qprom_* only"
  fi
done
exit $status
