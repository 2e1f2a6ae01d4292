#!/usr/bin/env bash
# Imago setup: installs what the project needs on a fresh machine of this kind,
# and is quick when everything is already there. Each step prints its duration.
#   npm dependencies (npm ci, from the lockfile)
#   Temporal CLI v1.5.1 (temporal on PATH or IMAGO_TEMPORAL_BIN win; else built
#     once with `go install` into ~/.cache/imago, shared by every clone)
#   MariaDB server + client, nginx, wrk, chromium (Debian packages; no service is started)
#   moto[server] and awscli (PyPI), for the AWS provider's tests (the simulated instances run their boot script's AWS CLI)
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_CLI_VERSION=1.5.1
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/imago"
TEMPORAL_CACHED="$CACHE_DIR/temporal-v$TEMPORAL_CLI_VERSION/temporal"
APT_PACKAGES=(mariadb-server mariadb-client mariadb-backup nginx-light libnginx-mod-http-lua wrk chromium)

total_start=$(date +%s)
step() { STEP_NAME="$1"; STEP_START=$(date +%s%N); echo "==> $1"; }
done_step() { local ms=$(( ($(date +%s%N) - STEP_START) / 1000000 )); printf '    done: %s (%d.%01d s)\n' "$STEP_NAME" $((ms / 1000)) $(((ms % 1000) / 100)); }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

step "prerequisites (node >= 20.19, npm, go, python3/pip)"
command -v node >/dev/null || die "node is missing: install Node.js 20.19 or newer (e.g. apt-get install nodejs)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || die "node $(node --version) is too old: Imago needs Node.js >= 20.19"
command -v npm >/dev/null || die "npm is missing: install npm with Node.js"
done_step

step "npm dependencies"
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ -f node_modules/.imago-lock-hash ] && [ "$(cat node_modules/.imago-lock-hash)" = "$lock_hash" ]; then
  echo "    up to date"
else
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed: check access to the npm registry"
  echo "$lock_hash" > node_modules/.imago-lock-hash
fi
done_step

step "Temporal CLI"
if [ -n "${IMAGO_TEMPORAL_BIN:-}" ]; then
  [ -x "$IMAGO_TEMPORAL_BIN" ] || die "IMAGO_TEMPORAL_BIN=$IMAGO_TEMPORAL_BIN is not an executable file"
  echo "    using IMAGO_TEMPORAL_BIN=$IMAGO_TEMPORAL_BIN"
elif command -v temporal >/dev/null; then
  echo "    using $(command -v temporal) from PATH"
elif [ -x "$TEMPORAL_CACHED" ]; then
  echo "    using cached build $TEMPORAL_CACHED"
else
  command -v go >/dev/null || die "the Temporal CLI is not installed and Go is missing to build it: install Go >= 1.24 (https://go.dev/dl) or put 'temporal' on PATH"
  echo "    building github.com/temporalio/cli v$TEMPORAL_CLI_VERSION with go install (takes a few minutes, once per machine)"
  mkdir -p "$(dirname "$TEMPORAL_CACHED")"
  # v1.5.1 is the newest tag `go install pkg@version` accepts: later tags carry replace directives.
  GOBIN="$(dirname "$TEMPORAL_CACHED")" GOFLAGS=-mod=mod go install \
    -ldflags "-X github.com/temporalio/cli/temporalcli.Version=$TEMPORAL_CLI_VERSION" \
    "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION" \
    || die "building the Temporal CLI failed: check access to the Go module proxy"
fi
done_step

step "Debian packages: ${APT_PACKAGES[*]}"
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "    all installed"
else
  command -v apt-get >/dev/null || die "apt-get is missing: install ${missing[*]} with your package manager"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "    installing ${missing[*]}"
  $SUDO apt-get update -qq || die "apt-get update failed: check access to Debian's package mirrors"
  # policy-rc.d keeps Debian from starting the system MariaDB/nginx services:
  # Imago starts its own instances as child processes.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
[ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null || die "mariadbd not found after install (package mariadb-server)"
done_step

step "moto[server] (PyPI)"
if command -v moto_server >/dev/null; then
  echo "    using $(command -v moto_server)"
else
  command -v python3 >/dev/null || die "python3 is missing: install Python 3.9+"
  python3 -m pip install --quiet 'moto[server]' || die "pip install 'moto[server]' failed: check access to PyPI"
  command -v pyenv >/dev/null && pyenv rehash || true
  command -v moto_server >/dev/null || die "moto_server is not on PATH after pip install: add Python's scripts folder to PATH"
fi
done_step

step "awscli (PyPI): the AWS CLI the simulated instances' boot scripts run against moto"
if command -v aws >/dev/null; then
  echo "    using $(command -v aws)"
else
  python3 -m pip install --quiet awscli || die "pip install awscli failed: check access to PyPI"
  command -v pyenv >/dev/null && pyenv rehash || true
  command -v aws >/dev/null || die "aws is not on PATH after pip install: add Python's scripts folder to PATH"
fi
done_step

printf '==> setup complete in %d s\n' "$(( $(date +%s) - total_start ))"
