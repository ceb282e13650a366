#!/usr/bin/env bash
# The systemd units and maintainer scripts as shipped in packaging/: syntax
# (systemd-analyze verify, sh -n), restart policy, Type=notify with a
# watchdog and a SIGHUP reload, a dedicated user, and a
# hardening level checked by `systemd-analyze security --offline` (exposure
# score at most 2.5 of 10).
set -euo pipefail
pkg=${1:?usage: test_units.sh PACKAGING_DIR}
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze is missing (apt-get install systemd)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

units=("$pkg"/systemd/*.service)
[ -e "${units[0]}" ] || { echo "FAIL: no units in $pkg/systemd"; exit 1; }
for unit in "${units[@]}"; do
    name=$(basename "$unit")
    # shellcheck disable=SC2016 # $MAINPID is systemd's, matched literally in the unit
    wants=('User=meridian' 'Group=meridian' 'Restart=on-failure' 'NoNewPrivileges=yes'
        'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'StandardError=journal'
        'ExecStartPre=/usr/bin/meridian-[a-z]* --check --config /etc/meridian/[a-z]*.json'
        'ExecStart=/usr/bin/meridian-[a-z]* --config /etc/meridian/[a-z]*.json'
        'WantedBy=multi-user.target'
        # Life cycle (issue 15): READY after listeners and NATS, a watchdog fed from the
        # event loop, reloads by SIGHUP; AF_UNIX for the notify socket.
        'Type=notify' 'NotifyAccess=main' 'WatchdogSec=[1-9][0-9]*s'
        'TimeoutStartSec=[1-9][0-9]*s' 'ExecReload=/bin/kill -HUP $MAINPID'
        'RestrictAddressFamilies=.*AF_UNIX.*')
    for want in "${wants[@]}"; do
        if grep -qx "$want" "$unit"; then ok; else bad "$name lacks $want"; fi
    done
    # verify wants the executables to exist: point them at /bin/true.
    sed 's#/usr/bin/meridian-[a-z]*#/bin/true#g' "$unit" > "$tmp/$name"
    if out=$(systemd-analyze verify "$tmp/$name" 2>&1) && [ -z "$out" ]; then ok; else bad "systemd-analyze verify $name: $out"; fi
    if out=$(systemd-analyze security --offline=yes --threshold=25 --no-pager "$tmp/$name" 2>&1); then
        ok
    else
        bad "$name: exposure above 2.5: $(echo "$out" | tail -1)"
    fi
done

for s in "$pkg"/debian/*/*; do
    case $(head -1 "$s") in
    '#!/bin/sh') if sh -n "$s"; then ok; else bad "sh -n $s"; fi ;;
    *) bad "$s does not start with #!/bin/sh" ;;
    esac
    [ -x "$s" ] && ok || bad "$s is not executable"
done

echo "packaging units: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
