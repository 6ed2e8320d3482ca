#!/usr/bin/env bash
# fresh_make.sh - proves that `make build` (what `make run` does before it
# serves) works in one go on a machine where nothing is installed when make
# parses the Makefile: the build must not use anything computed before
# `deps` ran.
#
# Fake dpkg-query, apt-get and pkg-config go first on PATH. Until the fake
# `apt-get install` ran, dpkg-query says nothing is installed and pkg-config
# answers nothing (as on a fresh machine); afterwards both delegate to the
# real tools. node-llhttp is "absent" too (LLHTTP_SYS points nowhere), so
# its sources come from `apt-get download`, faked with a package built from
# the installed files. Everything happens in a temporary BUILD directory.
# Exit 0 when the daemon was built and answers --version.
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/slorad-fresh.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin"
MARK=$T/installed
REAL_PKG_CONFIG=$(command -v pkg-config)
REAL_DPKG_QUERY=$(command -v dpkg-query)
REAL_APT_GET=$(command -v apt-get)

cat >"$T/bin/pkg-config" <<SH
#!/bin/sh
echo "pkg-config \$*" >>"$T/calls"
[ -e "$MARK" ] || exit 1
exec "$REAL_PKG_CONFIG" "\$@"
SH
cat >"$T/bin/dpkg-query" <<SH
#!/bin/sh
[ -e "$MARK" ] || exit 1
exec "$REAL_DPKG_QUERY" "\$@"
SH
cat >"$T/bin/apt-get" <<SH
#!/bin/sh
echo "apt-get \$*" >>"$T/calls"
case "\$*" in
update*) exit 0 ;;
*install*) touch "$MARK"; exit 0 ;;
*"download -q node-llhttp"*)
    if [ ! -f /usr/share/llhttp/llhttp.c ]; then exec "$REAL_APT_GET" "\$@"; fi
    d=\$(mktemp -d)
    mkdir -p "\$d/DEBIAN" "\$d/usr/share/llhttp" "\$d/usr/share/include/llhttp"
    printf 'Package: node-llhttp\nVersion: 0\nArchitecture: all\nMaintainer: ci\nDescription: ci\n' \
        >"\$d/DEBIAN/control"
    cp /usr/share/llhttp/*.c "\$d/usr/share/llhttp/"
    cp /usr/share/include/llhttp/llhttp.h "\$d/usr/share/include/llhttp/"
    dpkg-deb -b "\$d" node-llhttp_0_all.deb >/dev/null
    rc=\$?; rm -rf "\$d"; exit \$rc ;;
esac
echo "fake apt-get: unexpected \$*" >&2
exit 1
SH
chmod +x "$T/bin/"*

PATH=$T/bin:$PATH make -s build BUILD="$T/build" LLHTTP_SYS="$T/no-llhttp" >"$T/make.log" 2>&1 || {
    cat "$T/make.log"
    echo "FAIL: make build on a fresh machine" >&2
    exit 1
}
grep -q '^apt-get install' "$T/calls" || { echo "FAIL: deps installed nothing" >&2; exit 1; }
awk '/^apt-get install/ { i = NR } /^pkg-config/ && !i { bad = 1 } END { exit bad }' "$T/calls" || {
    echo "FAIL: pkg-config ran before deps:" >&2
    cat "$T/calls" >&2
    exit 1
}
"$T/build/slorad" --version >/dev/null || { echo "FAIL: the built daemon does not run" >&2; exit 1; }
echo "ok - make build works in one go when nothing is installed at parse time"
