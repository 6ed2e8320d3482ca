#!/usr/bin/env bash
# fresh_debian.sh DIR [TARGET...] - the first-run experience, for real: a
# minimal Debian 12 (debootstrap --variant=minbase) in DIR, a copy of this
# repository's HEAD in /root/slorad and ../shared next to it, then as root
# inside the chroot:
#   make run      in the background until /healthz answers 200, then stopped;
#   make TARGET   for each TARGET given (default: check).
# Only `make` is installed beforehand (a user needs it to type `make run`);
# everything else is up to the Makefile. Node.js >= 20 (which the Makefile
# never installs) is the host's NodeSource node and npm, copied in.
# Needs root, debootstrap and network access to deb.debian.org (and to the
# npm registry for `make oracle`). Logs: DIR/root/*.log. Not part of CI
# (it downloads ~1 GB); .ci/fresh_make.sh is the cheap proof CI runs.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [TARGET...]" >&2; exit 2; }
ROOT=$(realpath -m "$1")
shift
TARGETS=("${@:-check}")
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "$REPO/${SHARED:-../shared}" && pwd)
PORT=8080

mounted=()
cleanup() {
    local i
    if [ -n "${RUN_PID:-}" ]; then kill "$RUN_PID" 2>/dev/null || true; fi
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" || true; done
}
trap cleanup EXIT
mount_in() { # mount_in ARGS... TARGET
    mount "$@"
    mounted+=("${!#}")
}

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    debootstrap --variant=minbase bookworm "$ROOT" http://deb.debian.org/debian
fi
# The sources a standard Debian 12 installation has.
cat >"$ROOT/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount_in -t proc proc "$ROOT/proc"
mount_in -t sysfs sys "$ROOT/sys"
mount_in --bind /dev "$ROOT/dev"
mount_in --bind /dev/pts "$ROOT/dev/pts"
mkdir -p "$ROOT/dev/shm" && mount_in -t tmpfs shm "$ROOT/dev/shm"
# The host's network trust: extra CA certificates (a TLS-intercepting
# egress proxy's, if any) go to the chroot's local CA directory, which the
# ca-certificates package `make run` installs adds to the system bundle;
# node (npm) reads them from NODE_EXTRA_CA_CERTS.
extra_ca=
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$ROOT/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    cat /usr/local/share/ca-certificates/*.crt >"$ROOT/root/host-extra-ca.pem"
    extra_ca=NODE_EXTRA_CA_CERTS=/root/host-extra-ca.pem
fi
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    LANG=C.UTF-8 $extra_ca bash -c "$1"; }

in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make'
# Node.js >= 20 from the host (NodeSource's build): binary and npm.
node_bin=$(command -v node) && npm_dir=$(dirname "$(dirname "$(realpath "$(command -v npm)")")")
install -m 0755 "$node_bin" "$ROOT/usr/local/bin/node"
rm -rf "$ROOT/usr/local/lib/node_modules/npm" && mkdir -p "$ROOT/usr/local/lib/node_modules"
cp -a "$npm_dir" "$ROOT/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"

rm -rf "$ROOT/root/slorad" "$ROOT/root/shared"
mkdir -p "$ROOT/root/slorad"
git -C "$REPO" archive HEAD | tar -x -C "$ROOT/root/slorad"
cp -a "$SHARED" "$ROOT/root/shared"
echo "chroot ready: $(in_root 'cat /etc/debian_version'), node $(in_root 'node --version'), \
$(in_root 'dpkg-query -W -f="\${Status}\n" | grep -c "ok installed"') packages installed"

# make run: the daemon must answer, then it is stopped.
if ss -ltn "sport = :$PORT" | grep -q LISTEN; then
    echo "port $PORT is in use: make run could not listen" >&2
    exit 1
fi
in_root "cd /root/slorad && exec make run" >"$ROOT/root/make-run.log" 2>&1 &
RUN_PID=$!
code=
for _ in $(seq 1 3600); do
    code=$(in_root "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/healthz 2>/dev/null" || true)
    [ "$code" = 200 ] && break
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 1
done
if [ "$code" != 200 ]; then
    tail -30 "$ROOT/root/make-run.log"
    echo "FAIL: make run did not serve /healthz" >&2
    exit 1
fi
echo "ok - make run: /healthz 200 ($(in_root 'dpkg-query -W -f="\${Status}\n" | grep -c "ok installed"') packages installed now)"
# Stop the daemon make started: found by walking down from our own child
# (the chroot shares the host's PID space; nothing is killed by name).
pids=$RUN_PID daemon=
while [ -n "$pids" ] && [ -z "$daemon" ]; do
    daemon=$(ps -o pid=,comm= --ppid "$(echo $pids | tr ' ' ,)" | awk '$2 == "slorad" {print $1; exit}')
    pids=$(ps -o pid= --ppid "$(echo $pids | tr ' ' ,)" | tr -d ' ' | tr '\n' ' ')
done
[ -n "$daemon" ] && kill -TERM "$daemon"
wait "$RUN_PID" || true
RUN_PID=

for t in "${TARGETS[@]}"; do
    if in_root "cd /root/slorad && make $t" >"$ROOT/root/make-$t.log" 2>&1; then
        echo "ok - make $t ($(grep -E '^(e2e:|[0-9]+%:)' "$ROOT/root/make-$t.log" | tr '\n' ' '))"
    else
        tail -40 "$ROOT/root/make-$t.log"
        echo "FAIL: make $t" >&2
        exit 1
    fi
done
