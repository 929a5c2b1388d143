# Sourced by .ci/mailservers.sh and .ci/postgres.sh: install Debian packages without starting their services.
#
#   enate_apt_quiet_install LABEL PACKAGE...
#
# A package's postinst would start a system-wide server (Dovecot on 143/993/110/995, a PostgreSQL cluster on
# 5432) that the tests never use; a policy-rc.d answering 101 ("action forbidden", invoke-rc.d(8)) stops that
# for the duration of the install, and any previous policy is put back afterwards. apt-get update is retried
# three times. Returns non-zero on failure, naming LABEL.

enate_apt_quiet_install() {
    local label=$1
    shift
    if [ "$(id -u)" -ne 0 ]; then
        echo "$label: must run as root to install: $*" >&2
        return 1
    fi
    local policy=/usr/sbin/policy-rc.d
    local created_policy=0
    if [ ! -x "$policy" ] || ! grep -q 'exit 101' "$policy" 2>/dev/null; then
        if [ -e "$policy" ]; then
            cp -p "$policy" "$policy.enate-backup" || return 1
        fi
        printf '#!/bin/sh\n# installed by .ci/apt_quiet_install.sh: no service starts during apt-get install\nexit 101\n' \
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
        echo "$label: apt-get update failed (attempt $attempt/3)" >&2
        sleep $((attempt * 5))
    done
    if [ "$status" -eq 0 ]; then
        apt-get install -y -q --no-install-recommends "$@" || status=$?
    fi

    if [ "$created_policy" -eq 1 ]; then
        if [ -e "$policy.enate-backup" ]; then
            mv -f "$policy.enate-backup" "$policy"
        else
            rm -f "$policy"
        fi
    fi
    if [ "$status" -ne 0 ]; then
        echo "$label: installing $* failed ($status)" >&2
    fi
    return "$status"
}
