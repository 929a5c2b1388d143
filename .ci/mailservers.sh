#!/usr/bin/env bash
# Ensure the loopback mail servers' packages are installed (docs/transports.md, "Test rig").
#
# Idempotent; for a fresh Debian 12 machine, as root. May be executed or sourced by .ci/run:
#   bash .ci/mailservers.sh        or        source .ci/mailservers.sh
# Exits (or returns, when sourced) non-zero on failure. It installs Dovecot (IMAP, POP3, LMTP) only;
# the servers themselves are started and stopped by the pytest fixtures (tests/mailrig), never here,
# and aiosmtpd comes from the project's dev extra (pip).

_enate_mailservers() {
    # (no "set -u" here: when sourced, it would change the caller's shell options)
    local pkgs=(dovecot-imapd dovecot-pop3d dovecot-lmtpd)
    local missing=()
    local p
    for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ] && command -v dovecot >/dev/null && command -v doveadm >/dev/null; then
        echo "mailservers: dovecot already installed ($(dovecot --version))"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "mailservers: must run as root to install: ${missing[*]}" >&2
        return 1
    fi

    # The package's postinst must not start a system-wide Dovecot (it would hold ports 143/993/110/995
    # and is not what the tests use). policy-rc.d exit 101 = "action forbidden" (invoke-rc.d(8)).
    local policy=/usr/sbin/policy-rc.d
    local created_policy=0
    if [ ! -x "$policy" ] || ! grep -q 'exit 101' "$policy" 2>/dev/null; then
        if [ -e "$policy" ]; then
            cp -p "$policy" "$policy.enate-backup" || return 1
        fi
        printf '#!/bin/sh\n# installed by .ci/mailservers.sh: no service starts during apt-get install\nexit 101\n' \
            >"$policy" || return 1
        chmod 0755 "$policy" || return 1
        created_policy=1
    fi

    export DEBIAN_FRONTEND=noninteractive
    local status=0
    local attempt
    for attempt in 1 2 3; do
        if apt-get update -q; then
            status=0
            break
        fi
        status=$?
        echo "mailservers: apt-get update failed (attempt $attempt/3)" >&2
        sleep $((attempt * 5))
    done
    if [ "$status" -eq 0 ]; then
        apt-get install -y -q --no-install-recommends "${pkgs[@]}" || status=$?
    fi

    if [ "$created_policy" -eq 1 ]; then
        if [ -e "$policy.enate-backup" ]; then
            mv -f "$policy.enate-backup" "$policy"
        else
            rm -f "$policy"
        fi
    fi
    if [ "$status" -ne 0 ]; then
        echo "mailservers: installing ${pkgs[*]} failed ($status)" >&2
        return "$status"
    fi
    # A system Dovecot started despite everything would only waste ports; the tests run their own.
    if command -v systemctl >/dev/null && systemctl is-active --quiet dovecot 2>/dev/null; then
        systemctl stop dovecot || true
    fi
    command -v dovecot >/dev/null && command -v doveadm >/dev/null || {
        echo "mailservers: dovecot/doveadm missing after install" >&2
        return 1
    }
    echo "mailservers: installed $(dovecot --version)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _enate_mailservers
    exit $?
else
    _enate_mailservers
fi
