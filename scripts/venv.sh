# Shared by scripts/chat and scripts/test (sourced, not run): find Python 3.11+, make
# sure a virtual environment exists, install Escala into it, and install missing Debian
# packages. Needs nothing but Python 3.11+; root only to install system packages.
#
# After `escala_venv EXTRAS`, $ESCALA_BIN is the environment's bin folder.
#   - Already inside a virtual environment ($VIRTUAL_ENV): that one is used.
#   - Otherwise .venv in the repository (or $ESCALA_VENV), created on first use. Current Debian and
#     Ubuntu refuse `pip install` outside one (PEP 668, externally-managed-environment).

MIN_PYTHON="3.11"
ESCALA_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { echo "$(basename "$0"): $*" >&2; }

# Install Debian packages as root; otherwise print the exact command and stop.
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    say "needs the Debian package(s) $*. Install them as root, then run this again:"
    echo "    sudo apt-get update && sudo apt-get install -y $*" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "needs $* (no apt-get here: install them with your package manager)"
    exit 1
  fi
  say "installing $* (apt-get)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A Python of at least $MIN_PYTHON: $PYTHON if set, else the newest python3.x found.
find_python() {
  local candidate
  for candidate in ${PYTHON:-python3 python3.13 python3.12 python3.11}; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  say "needs Python $MIN_PYTHON or newer (found: $(python3 --version 2>&1 || echo none))."
  echo "    Install one (e.g. apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11" >&2
  exit 1
}

# The Debian package that gives this Python `venv` with pip (ensurepip).
venv_package() {
  local python="$1" version
  version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  if [ "$(readlink -f "$python")" = "$(readlink -f /usr/bin/python3 2>/dev/null)" ]; then
    echo "python3-venv"
  else
    echo "python${version}-venv"
  fi
}

# escala_venv EXTRAS: ensure the environment and `pip install -e .[EXTRAS]` in it (again
# only when pyproject.toml changed since the last install).
escala_venv() {
  local extras="$1" venv python target stamp
  if [ -n "${VIRTUAL_ENV:-}" ]; then
    venv="$VIRTUAL_ENV"
  else
    venv="${ESCALA_VENV:-$ESCALA_REPO/.venv}"
    if [ ! -x "$venv/bin/python" ]; then
      python="$(find_python)"
      say "creating a virtual environment in $venv ($("$python" --version))"
      if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"  # half made: no pip in it
        apt_install "$(venv_package "$python")"
        "$python" -m venv "$venv"
      fi
    fi
  fi
  ESCALA_BIN="$venv/bin"
  if ! "$ESCALA_BIN/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "$venv has $("$ESCALA_BIN/python" --version); Escala needs Python $MIN_PYTHON+ (remove $venv and run again)"
    exit 1
  fi
  target="$ESCALA_REPO"
  [ -z "$extras" ] || target="$ESCALA_REPO[$extras]"
  stamp="$venv/.escala-installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ "$ESCALA_REPO/pyproject.toml" -nt "$stamp" ]; then
    say "installing Escala${extras:+ with [$extras]} into $venv (pip)..."
    "$ESCALA_BIN/python" -m pip install --quiet --disable-pip-version-check -e "$target" >&2
    touch "$stamp"
  fi
}

# need_commands CMD:PACKAGE ...: install the Debian packages of the missing commands.
need_commands() {
  local pair command package missing=()
  for pair in "$@"; do
    command="${pair%%:*}"
    package="${pair#*:}"
    if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
      missing+=("$package")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}
