#!/usr/bin/env bash
# Ensure the loopback mail servers' packages are installed (docs/transports.md, "Test rig").
#
# Idempotent; for a fresh Debian 12 machine, as root. May be executed or sourced by .ci/run:
#   bash .ci/mailservers.sh        or        source .ci/mailservers.sh
# Exits (or returns, when sourced) non-zero on failure. It installs Dovecot (IMAP, POP3, LMTP) only;
# the servers themselves are started and stopped by the pytest fixtures (tests/mailrig), never here,
# and aiosmtpd comes from the project's dev extra (pip).

source "$(dirname "${BASH_SOURCE[0]}")/apt_quiet_install.sh"

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
    enate_apt_quiet_install mailservers "${pkgs[@]}" || return 1
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
