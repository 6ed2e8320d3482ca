#!/usr/bin/env bash
# server_systemd.sh - `make install` into a temporary root, then
# `systemd-analyze verify` on the installed unit and `systemd-analyze
# security --offline=true` exposure <= 2.0; sd_notify by hand: a python
# listener on NOTIFY_SOCKET sees READY=1, RELOADING=1 (SIGHUP), WATCHDOG=1
# (WATCHDOG_USEC) and STOPPING=1.
. "$(dirname "$0")/lib/daemon.sh"

ROOT=$TMP/root
make -s install DESTDIR="$ROOT" PREFIX=/usr/local BUILD="$BUILD" >"$TMP/install.log" 2>&1 ||
    fail "make install: $(cat "$TMP/install.log")"
for f in usr/local/bin/slorad usr/local/share/slorad/models/stories260K.bin \
    usr/local/share/slorad/models/tok512.bin etc/slorad/slorad.json \
    usr/local/lib/systemd/system/slorad.service usr/local/lib/sysusers.d/slorad.conf; do
    test -f "$ROOT/$f" || fail "make install did not install /$f"
    echo "ok - installed /$f"
done
check_contains "installed config points at the installed model" \
    '"model": "/usr/local/share/slorad/models/stories260K.bin"' "$(cat "$ROOT/etc/slorad/slorad.json")"
check "the config (key hashes) is installed 0640" 640 "$(stat -c %a "$ROOT/etc/slorad/slorad.json")"
check "sysusers.d creates the user slorad" 'u slorad - "slorad daemon" /var/lib/slorad' \
    "$(grep '^u ' "$ROOT/usr/local/lib/sysusers.d/slorad.conf")"
UNIT=$ROOT/usr/local/lib/systemd/system/slorad.service
check_contains "unit starts the installed binary with the installed config" \
    "ExecStart=/usr/local/bin/slorad serve --config /etc/slorad/slorad.json" "$(cat "$UNIT")"
for key in Type=notify DynamicUser=yes StateDirectory=slorad ConfigurationDirectory=slorad \
    'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure LimitNOFILE= ProtectSystem=strict \
    ProtectHome=yes PrivateTmp=yes PrivateDevices=yes PrivateUsers=yes ProtectKernelTunables=yes \
    ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes ProtectClock=yes \
    ProtectHostname=yes ProtectProc=invisible ProcSubset=pid NoNewPrivileges=yes \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' RestrictNamespaces=yes RestrictRealtime=yes \
    RestrictSUIDSGID=yes LockPersonality=yes MemoryDenyWriteExecute=yes \
    SystemCallArchitectures=native SystemCallFilter=@system-service \
    'SystemCallFilter=~@privileged @resources' UMask=0077 DevicePolicy=closed User=slorad \
    Group=slorad MemoryHigh= MemoryMax= TasksMax=; do
    grep -qxF -- "$key" "$UNIT" || grep -q -- "^$key" "$UNIT" || fail "unit lacks $key"
    echo "ok - unit has $key"
done
grep -qx 'CapabilityBoundingSet=' "$UNIT" || fail "unit lacks an empty CapabilityBoundingSet"
echo "ok - unit has an empty CapabilityBoundingSet"

command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (make deps installs systemd)"
# Verified as installed, with ExecStart pointing into the temporary root
# (verify checks that the binary exists and is executable).
mkdir -p "$TMP/units"
sed "s|/usr/local/bin/slorad|$ROOT/usr/local/bin/slorad|" "$UNIT" >"$TMP/units/slorad.service"
if ! systemd-analyze verify "$TMP/units/slorad.service" >"$TMP/verify.log" 2>&1; then
    fail "systemd-analyze verify: $(cat "$TMP/verify.log")"
fi
check "systemd-analyze verify is silent" "" "$(cat "$TMP/verify.log")"
systemd-analyze security --offline=true "$TMP/units/slorad.service" >"$TMP/security.log" 2>&1 || true
level=$(sed -n 's/.*Overall exposure level for slorad.service: \([0-9.]*\).*/\1/p' "$TMP/security.log")
[ -n "$level" ] || fail "no exposure level: $(tail -5 "$TMP/security.log")"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "exposure $level > 2.0"
echo "ok - systemd-analyze security exposure $level <= 2.0"
check_contains "docs/operations.md records the exposure" "overall exposure $level OK" "$(cat docs/operations.md)"
for key in MemoryHigh MemoryMax TasksMax; do
    v=$(sed -n "s/^$key=//p" "$UNIT")
    check_contains "docs/operations.md documents $key=$v" "\`$key=$v\`" "$(cat docs/operations.md)"
done
# the replica template of docs/scale-out.md, as instance 1
TEMPLATE=$ROOT/usr/local/lib/systemd/system/slorad@.service
check_contains "replica template reads its instance's config" \
    "ExecStart=/usr/local/bin/slorad serve --config /etc/slorad/replica-%i.json" "$(cat "$TEMPLATE")"
sed "s|/usr/local/bin/slorad|$ROOT/usr/local/bin/slorad|" "$TEMPLATE" >"$TMP/units/slorad@1.service"
systemd-analyze verify "$TMP/units/slorad@1.service" >"$TMP/verify1.log" 2>&1 ||
    fail "systemd-analyze verify slorad@1: $(cat "$TMP/verify1.log")"
check "systemd-analyze verify of slorad@1 is silent" "" "$(cat "$TMP/verify1.log")"
systemd-analyze security --offline=true "$TMP/units/slorad@1.service" >"$TMP/security1.log" 2>&1 || true
level1=$(sed -n 's/.*Overall exposure level for slorad@1.service: \([0-9.]*\).*/\1/p' "$TMP/security1.log")
[ -n "$level1" ] && awk -v l="$level1" 'BEGIN { exit !(l <= 2.0) }' || fail "slorad@1 exposure '$level1' > 2.0"
echo "ok - slorad@1 exposure $level1 <= 2.0"

# sd_notify
SOCK=$TMP/notify.sock
"$PYTHON" - "$SOCK" >"$TMP/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        msg = s.recv(4096).decode()
        print(msg, flush=True)
        if "STOPPING=1" in msg:
            break
except socket.timeout:
    pass
PY
listener=$!
wait_for "the notify listener" test -S "$SOCK"
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=200000 start_daemon "$TMP/state"
wait_for "READY=1" file_has "$TMP/notify.log" READY=1
echo "ok - READY=1 once listening"
wait_for "WATCHDOG=1" file_has "$TMP/notify.log" WATCHDOG=1
echo "ok - WATCHDOG=1 with WATCHDOG_USEC"
kill -HUP "$DAEMON_PID"
wait_for "RELOADING=1" file_has "$TMP/notify.log" RELOADING=1
echo "ok - RELOADING=1 on SIGHUP"
stop_daemon
wait "$listener" || true
check_contains "STOPPING=1 on SIGTERM" "STOPPING=1" "$(cat "$TMP/notify.log")"
echo "server_systemd: $N_CHECKS checks passed"
