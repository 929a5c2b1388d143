# Sourced by demo.sh and test.sh: create (or reuse) the project's virtual environment .venv/ and install the
# project into it with the extras named in $1 (e.g. "" or "[dev]").
#
# Any Python 3.11+ found as `python3` on PATH will do (pyenv, Debian's /usr/bin/python3, a container image).
# A virtual environment is needed because Debian marks its interpreter as externally managed (PEP 668), so
# `pip install` into it is refused.

_enate_python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

ensure_venv() {
    local extras=${1-}
    local python=${PYTHON:-python3}
    if ! _enate_python_ok "$python"; then
        echo "setup: $python is missing or older than 3.11; install Python 3.11+ or set PYTHON=/path/to/python3" >&2
        return 1
    fi
    # Reuse .venv when it works and was made by the same interpreter version; otherwise make it anew.
    local want have
    want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    have=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
    if [ "$have" != "$want" ]; then
        rm -rf .venv
        if ! "$python" -m venv .venv 2>/dev/null; then
            rm -rf .venv
            # Debian ships venv's pip bootstrap separately (python3-venv / python3.X-venv).
            if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
                echo "setup: installing Debian's python3-venv"
                DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                        python3-venv "python${want}-venv" >/dev/null || return 1
            fi
            "$python" -m venv .venv || {
                echo "setup: '$python -m venv' failed; install your distribution's venv package (Debian: python3-venv)" >&2
                return 1
            }
        fi
    fi
    .venv/bin/python -m pip install --disable-pip-version-check -q -e ".${extras}" || return 1
}
