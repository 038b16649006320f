# Shared settings for the project's scripts: where the environments live and how to run inside them.
# Sourced, not executed.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SOUND_SENTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sound-sentry}"
ROOTFS="$CACHE/forky-rootfs"          # Debian forky with Python 3.14, used when the host has no python3.14
VENV_MIN="$CACHE/venv-minimum"        # HA 2025.4.4 on Python 3.13
VENV_LATEST_HOST="$CACHE/venv-latest" # HA 2026.10.4 on a host python3.14, when there is one
VENV_BROWSER="$CACHE/venv-browser"    # pytest + Playwright for tests/browser, on the host's Python 3.13
SHARED="$(cd "$REPO/.." && pwd)/shared"

# Debian packages for the GStreamer RTSP test server (FACTS §3).
RTSP_DEBS="python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base \
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }

# A python3.14 >= 3.14.2 on PATH, or nothing.
host_python314() {
  local py
  py="$(command -v python3.14 || true)"
  [ -n "$py" ] || return 0
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' && echo "$py"
  return 0
}

# Python 3.13 for the minimum environment.
host_python313() {
  local py
  for py in "$(command -v python3.13 || true)" "$HOME/.pyenv/versions/3.13.0/bin/python" \
            /root/.pyenv/versions/3.13.0/bin/python; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

# Run a command in the latest environment, from the repo root. Inside the forky rootfs the checkout
# (and ../shared) are bind-mounted at the same paths, in a private mount namespace: the mounts vanish
# with the command, whatever way it ends, and parallel runs do not disturb each other.
run_latest() {
  if [ -n "$(host_python314)" ]; then
    (cd "$REPO" && PATH="$VENV_LATEST_HOST/bin:$PATH" VIRTUAL_ENV="$VENV_LATEST_HOST" SOUND_SENTRY_ENV=latest "$@")
    return
  fi
  ROOTFS="$ROOTFS" REPO="$REPO" SHARED="$SHARED" unshare --mount --propagation private -- /bin/sh -c '
    set -e
    mount -t proc proc "$ROOTFS/proc"
    mount --rbind /dev "$ROOTFS/dev"
    mount -t tmpfs tmpfs "$ROOTFS/tmp"
    for d in "$REPO" "$SHARED"; do
      if [ -d "$d" ]; then mkdir -p "$ROOTFS$d"; mount --bind "$d" "$ROOTFS$d"; fi
    done
    exec chroot "$ROOTFS" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 CI="${CI:-}" \
      PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      VIRTUAL_ENV=/opt/venv PIP_FIND_LINKS= PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
      SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt UV_NATIVE_TLS=1 \
      SOUND_SENTRY_ENV=latest SOUND_SENTRY_DATA="${SOUND_SENTRY_DATA:-}" \
      /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$REPO" "$@"
  ' sh "$@"
}

run_minimum() {
  (cd "$REPO" && PATH="$VENV_MIN/bin:$PATH" VIRTUAL_ENV="$VENV_MIN" SOUND_SENTRY_ENV=minimum "$@")
}

# The browser test's venv (Debian's Chromium is on the host).
run_browser() {
  (cd "$REPO" && PATH="$VENV_BROWSER/bin:$PATH" VIRTUAL_ENV="$VENV_BROWSER" "$@")
}

# Print how long a phase took: `phase NAME CMD...`.
phase() {
  local name="$1" start rc=0
  shift
  start=$(date +%s)
  log "== $name"
  "$@" || rc=$?
  log "== $name: $(( $(date +%s) - start )) s (exit $rc)"
  return $rc
}
