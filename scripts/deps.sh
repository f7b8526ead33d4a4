#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian bookworm machine
# (run as root). Idempotent: when everything is present it touches no network
# and finishes well under a second.
#
#   scripts/deps.sh [EXTRA_DEB_PACKAGE...]
#   scripts/deps.sh --build     only what `make build` needs (the venv; no root)
#
# Installs
#   * Debian packages: prometheus (prometheus, promtool), valgrind, openssl (test
#     certificates for the TLS tests), qemu-user + libc6-arm64-cross (run the
#     aarch64 build), binutils-aarch64-linux-gnu (strip it), plus any
#     extra packages given as arguments or in $DEPS_EXTRA_APT (space separated),
#     e.g. DEPS_EXTRA_APT="prometheus-node-exporter prometheus-pushgateway".
#   * $TARGET_DIR/venv: a virtualenv with tests/requirements.txt and the build
#     tools of scripts/build-requirements.txt (Zig and cargo-zigbuild: the release
#     .so files are linked against glibc 2.17), reinstalled only when the sha256 of
#     those files differs from $TARGET_DIR/venv/.requirements.sha256.
#   * the Rust target aarch64-unknown-linux-gnu (rustup), for the l64arm build.
#   * $TARGET_DIR/pykx/{libe.so,k.h}: KX's C-API runtime and header, taken from
#     the pinned pykx wheel on PyPI (downloaded to $TARGET_DIR/dl/); and
#     $TARGET_DIR/pykx-l64arm/libe.so from the same release's aarch64 wheel.
#
# Environment
#   TARGET_DIR      where venv/, dl/, pykx/ go (default: <repo>/target; a
#                   relative path is taken relative to the repo root)
#   PYTHON          interpreter used to create the venv (default: python3)
#   DEPS_EXTRA_APT  extra Debian packages to install
set -euo pipefail

PYKX_VERSION=4.2.0
# sha256 of pykx-4.2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl on PyPI
PYKX_WHEEL_SHA256=b4cf82210775ad0acd68c9ec8abfc847447b584217391faf491f2493f021d0e9
# sha256 of pykx-4.2.0-cp311-cp311-manylinux2014_aarch64.whl on PyPI
PYKX_ARM_WHEEL_SHA256=e35bbae6313b5697c9d9039f2a7e86d4959ac8a4e61b6c2413286aed0c59409f
BASE_APT=(prometheus valgrind openssl qemu-user libc6-arm64-cross binutils-aarch64-linux-gnu)
RUST_TARGETS=(aarch64-unknown-linux-gnu)

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "deps: ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
PYTHON="${PYTHON:-python3}"
VENV="$TARGET_DIR/venv"
REQS="$ROOT/tests/requirements.txt"
BUILD_REQS="$ROOT/scripts/build-requirements.txt"
STAMP="$VENV/.requirements.sha256"
DL="$TARGET_DIR/dl"
PYKX_DIR="$TARGET_DIR/pykx"
PYKX_ARM_DIR="$TARGET_DIR/pykx-l64arm"

BUILD_ONLY=0
if [ "${1:-}" = --build ]; then BUILD_ONLY=1; shift; fi

mkdir -p "$TARGET_DIR"
# Serialize concurrent runs (e.g. two test targets started at once).
exec 9>"$TARGET_DIR/.deps.lock"
flock 9

# extract_wheel WHEEL DEST SHA256 MEMBER=NAME...: check the wheel's sha256 (deleting a
# mismatching download, so that the next run fetches it again), then copy the members.
extract_wheel() {
    "$VENV/bin/python" - "$@" <<'EOF'
import hashlib, os, sys, zipfile
wheel, dest, want = sys.argv[1:4]
members = dict(m.split("=", 1) for m in sys.argv[4:])
h = hashlib.sha256()
with open(wheel, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
if h.hexdigest() != want:
    os.remove(wheel)  # so that the next run downloads it again
    sys.exit(f"sha256 mismatch for {wheel}: got {h.hexdigest()}, want {want}; deleted it")
with zipfile.ZipFile(wheel) as z:
    for member, name in members.items():
        tmp = os.path.join(dest, name + ".tmp")
        with z.open(member) as src, open(tmp, "wb") as out:
            out.write(src.read())
        os.chmod(tmp, 0o755 if name.endswith(".so") else 0o644)
        os.replace(tmp, os.path.join(dest, name))
EOF
}

# fetch_pykx ARCH DIR SHA256 MEMBER=NAME...: the pykx wheel for ARCH (x86_64 or aarch64),
# from $DL or else downloaded there from PyPI, checked against SHA256, with each MEMBER
# extracted into DIR as NAME.
fetch_pykx() {
    local arch=$1 dir=$2 sha=$3
    shift 3
    shopt -s nullglob
    local wheels=("$DL"/pykx-"$PYKX_VERSION"-*manylinux*"$arch"*.whl)
    if [ "${#wheels[@]}" -eq 0 ]; then
        say "pykx: downloading pykx==$PYKX_VERSION $arch wheel to $DL"
        mkdir -p "$DL"
        "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
            --only-binary=:all: --python-version 3.11 --platform "manylinux2014_$arch" \
            -d "$DL" "pykx==$PYKX_VERSION" || die "pip download pykx==$PYKX_VERSION ($arch) failed"
        wheels=("$DL"/pykx-"$PYKX_VERSION"-*manylinux*"$arch"*.whl)
    fi
    [ "${#wheels[@]}" -eq 1 ] || die "expected one pykx $PYKX_VERSION $arch wheel in $DL, found ${#wheels[@]}"
    say "pykx: extracting ${*%%=*} to $dir"
    mkdir -p "$dir"
    extract_wheel "${wheels[0]}" "$dir" "$sha" "$@" || die "extracting from ${wheels[0]} failed"
}

# ---------------------------------------------------------------- decide
[ -f "$REQS" ] || die "missing $REQS"
[ -f "$BUILD_REQS" ] || die "missing $BUILD_REQS"
reqs_hash="$(cat "$REQS" "$BUILD_REQS" | sha256sum | cut -d' ' -f1)"
venv_needed=0
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null || true)" != "$reqs_hash" ]; then
    venv_needed=1
fi

# shellcheck disable=SC2206  # word splitting of DEPS_EXTRA_APT is intended
want_apt=("${BASE_APT[@]}" ${DEPS_EXTRA_APT:-} "$@")
[ "$BUILD_ONLY" = 0 ] || want_apt=()
# A Debian python3 without ensurepip cannot create venvs: add python3-venv.
if [ "$venv_needed" = 1 ] && [ ! -x "$VENV/bin/python" ] \
   && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    [ "$(command -v "$PYTHON" || true)" = /usr/bin/python3 ] \
        || die "$PYTHON cannot create virtualenvs (no ensurepip) and is not Debian's python3"
    want_apt+=(python3-venv)
fi

# ---------------------------------------------------------------- apt
missing_apt=()
for p in "${want_apt[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing_apt+=("$p")
    fi
done
if [ "${#want_apt[@]}" -eq 0 ]; then
    :
elif [ "${#missing_apt[@]}" -eq 0 ]; then
    say "apt: present: ${want_apt[*]}"
else
    [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing_apt[*]}"
    # Keep package maintainer scripts from starting services (no init system
    # in containers; a failing service start would fail the install). Honour
    # an existing policy-rc.d; otherwise install one just for this run.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    say "apt: installing ${missing_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null \
        || die "apt-get install ${missing_apt[*]} failed"
    for p in "${missing_apt[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || die "package $p is not installed after apt-get install"
    done
fi
if [[ " ${want_apt[*]} " == *" prometheus "* ]]; then
    command -v promtool >/dev/null || die "promtool not on PATH after installing prometheus"
fi

# ---------------------------------------------------------------- venv
if [ "$venv_needed" = 0 ]; then
    say "venv: up to date ($VENV)"
else
    if [ ! -x "$VENV/bin/python" ]; then
        say "venv: creating $VENV with $PYTHON"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV failed"
    fi
    say "venv: installing tests/requirements.txt and scripts/build-requirements.txt"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" -r "$BUILD_REQS" \
        || die "pip install -r tests/requirements.txt -r scripts/build-requirements.txt failed"
    printf '%s\n' "$reqs_hash" >"$STAMP"
fi

if [ "$BUILD_ONLY" = 1 ]; then
    say "done (--build)"
    exit 0
fi

# ---------------------------------------------------------------- pykx
if [ -f "$PYKX_DIR/libe.so" ] && [ -f "$PYKX_DIR/k.h" ]; then
    say "pykx: present ($PYKX_DIR/libe.so, k.h)"
else
    fetch_pykx x86_64 "$PYKX_DIR" "$PYKX_WHEEL_SHA256" pykx/lib/l64/libe.so=libe.so pykx/include/k.h=k.h
fi
# ---------------------------------------------------------------- rust targets
installed_targets="$(rustup target list --installed 2>/dev/null)" \
    || die "rustup not found: the release builds need rustup to add ${RUST_TARGETS[*]}"
for t in "${RUST_TARGETS[@]}"; do
    if grep -qx "$t" <<<"$installed_targets"; then
        say "rust: target $t present"
    else
        say "rust: adding target $t"
        rustup target add "$t" >/dev/null || die "rustup target add $t failed"
    fi
done

# ---------------------------------------------------------------- pykx, aarch64
if [ -f "$PYKX_ARM_DIR/libe.so" ]; then
    say "pykx: present ($PYKX_ARM_DIR/libe.so)"
else
    fetch_pykx aarch64 "$PYKX_ARM_DIR" "$PYKX_ARM_WHEEL_SHA256" pykx/lib/l64arm/libe.so=libe.so
fi
say "done"
