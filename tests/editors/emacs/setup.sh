#!/usr/bin/env bash
# What the real-Emacs tests need, installed idempotently; prints one JSON line at the end:
# {"emacs": PATH, "emacs_version": "28.2", "eglot_version": "1.9", "eglot_dir": DIR}.
#
# - Debian: emacs-nox (GNU Emacs in a terminal) and elpa-eglot (eglot as an ELPA package in
#   /usr/share/emacs/site-lisp/elpa, which the tests activate with package.el). Debian 12 gives Emacs 28.2 and
#   eglot 1.9. apt-get runs only when one is missing, and only as root; otherwise this says what to install.
set -euo pipefail

say() { echo "setup: $*" >&2; }
ELPA=/usr/share/emacs/site-lisp/elpa

eglot_dir() { ls -d "$ELPA"/eglot-* 2>/dev/null | sort -V | tail -n 1; }

missing=()
command -v emacs >/dev/null || missing+=(emacs-nox)
[ -n "$(eglot_dir)" ] || missing+=(elpa-eglot)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "needs Debian packages ${missing[*]}: run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "apt-get install -y --no-install-recommends ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >&2 || \
    { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi

EMACS="$(command -v emacs)"
DIR="$(eglot_dir)"
[ -n "$DIR" ] || { say "elpa-eglot is installed but $ELPA has no eglot-*"; exit 1; }
VERSION="$("$EMACS" --batch -Q --eval '(princ emacs-version)')"
python3 - "$EMACS" "$VERSION" "${DIR##*/eglot-}" "$DIR" <<'PY'
import json, sys
emacs, version, eglot, directory = sys.argv[1:]
print(json.dumps({"emacs": emacs, "emacs_version": version, "eglot_version": eglot, "eglot_dir": directory}))
PY
