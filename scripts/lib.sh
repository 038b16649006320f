# Shared settings for the project's scripts: where the environments live and how to run inside them.
# Sourced, not executed.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SOUND_SENTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sound-sentry}"
ROOTFS="$CACHE/forky-rootfs"          # Debian forky with Python 3.14, used when the host has no python3.14
VENV_MIN="$CACHE/venv-minimum"        # HA 2025.4.4 on Python 3.13
VENV_LATEST_HOST="$CACHE/venv-latest" # HA 2026.10.4 on a host python3.14, when there is one
VENV_DEVELOP_HOST="$CACHE/venv-develop" # scripts/develop's own HA (the same lock), on a host python3.14
VENV_BROWSER="$CACHE/venv-browser"    # pytest + Playwright for tests/browser, on the host's Python 3.13
SHARED="$(cd "$REPO/.." && pwd)/shared"
DEBIAN_PYTHON=/usr/bin/python3        # Debian 12's own (3.11): scripts/test_readme_service runs on it

# Debian packages the tests need beside the Python ones: the GStreamer RTSP test server (FACTS §3), and
# libturbojpeg, which Home Assistant's camera loads through PyTurboJPEG (as Home Assistant OS ships it).
TEST_DEBS="python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base \
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav libturbojpeg0 mosquitto"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }

# A python3.14 >= 3.14.2 on PATH, or nothing.
host_python314() {
  local py
  py="$(command -v python3.14 || true)"
  [ -n "$py" ] || return 0
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 14, 2))' && echo "$py"
  return 0
}

# `host_python 3.13 3.13.0`: a python3.13 on PATH, else pyenv's 3.13.0; fails when neither is a 3.13.
host_python() {
  local minor="$1" pyenv_version="$2" py
  for py in "$(command -v "python$minor" || true)" "$HOME/.pyenv/versions/$pyenv_version/bin/python" \
            "/root/.pyenv/versions/$pyenv_version/bin/python"; do
    if [ -n "$py" ] && [ -x "$py" ] && [ "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$minor" ]; then
      echo "$py"; return 0
    fi
  done
  return 1
}

# Python 3.13 for the minimum environment.
host_python313() { host_python 3.13 3.13.0; }
# Python 3.12 (Ubuntu 24.04's version) for the README's service commands (scripts/test_readme_service).
host_python312() { host_python 3.12 3.12.1; }

# The folders outside the checkout and ../shared of the files that the arguments name (FILE or
# --option=FILE; a relative one from the repo root), one a line, parents first: what the forky rootfs
# must show for `scripts/run ... scan /tmp/clip.wav` or `--model ~/model.onnx` (its sidecar is beside it).
# A file the rootfs has at that path itself (e.g. /etc/hosts) is the rootfs's.
outside_folders() {
  local arg path given real dir
  for arg in "$@"; do
    for path in "$arg" "${arg#*=}"; do
      [ -n "$path" ] || continue
      given="$(cd "$REPO" && realpath -s -- "$path" 2>/dev/null)" || continue
      real="$(realpath -e -- "$given" 2>/dev/null)" || continue
      [ -f "$real" ] && [ ! -e "$ROOTFS$given" ] || continue
      for dir in "$(dirname -- "$given")" "$(dirname -- "$real")"; do  # a symlink's and its target's
        case "$dir/" in "$REPO"/* | "$SHARED"/* | // | /proc/* | /dev/* | /sys/*) continue ;; esac
        printf '%s\n' "$dir"
      done
    done
  done | LC_ALL=C sort -u
}

# Run a command in the latest environment, from the repo root. Inside the forky rootfs the checkout
# (and ../shared) are bind-mounted at the same paths, in a private mount namespace: the mounts vanish
# with the command, whatever way it ends, and parallel runs do not disturb each other. So are, read-only,
# the folders of the files that the arguments name elsewhere (outside_folders), but not one that the
# rootfs has itself with something in it (/root, /usr...): that would hide the rootfs's own files. (A file
# right in /tmp gives the command the host's /tmp, read-only; mount points stay as empty folders.)
# LATEST_VENV=venv-develop runs it in scripts/develop's environment instead (run_develop).
run_latest() {
  local name="${LATEST_VENV:-venv}"
  if [ -n "$(host_python314)" ]; then
    local venv="$VENV_LATEST_HOST"
    [ "$name" = venv ] || venv="$VENV_DEVELOP_HOST"
    (cd "$REPO" && PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" SOUND_SENTRY_ENV=latest "$@")
    return
  fi
  VENV_NAME="$name" ROOTFS="$ROOTFS" REPO="$REPO" SHARED="$SHARED" OUTSIDE="$(outside_folders "$@")" \
    unshare --mount --propagation private -- /bin/sh -c '
    set -ef
    mount -t proc proc "$ROOTFS/proc"
    mount --rbind /dev "$ROOTFS/dev"
    mount -t tmpfs tmpfs "$ROOTFS/tmp"
    shown=""
    while IFS= read -r d; do
      inside=""
      IFS="
"
      for s in $shown; do case "$d/" in "$s"/*) inside=1 ;; esac; done
      unset IFS
      [ -n "$d" ] && [ -z "$inside" ] || continue  # parents come first and show their subfolders
      if [ -d "$ROOTFS$d" ] && [ -n "$(find "$ROOTFS$d" -mindepth 1 -maxdepth 1 \( ! -type d -o ! -empty \) -print -quit)" ]; then
        echo "scripts/run: $d is a folder of the Python 3.14 root file system too, which shows its own:" \
          "move the file into a folder of its own (e.g. $d/recordings/), the checkout or ../shared" >&2
        continue
      fi
      mkdir -p "$ROOTFS$d"
      mount --bind "$d" "$ROOTFS$d"
      mount -o remount,bind,ro "$ROOTFS$d"
      shown="$shown
$d"
    done <<FOLDERS
$OUTSIDE
FOLDERS
    for d in "$REPO" "$SHARED"; do
      if [ -d "$d" ]; then mkdir -p "$ROOTFS$d"; mount --bind "$d" "$ROOTFS$d"; fi
    done
    exec chroot "$ROOTFS" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 CI="${CI:-}" \
      PATH=/opt/$VENV_NAME/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      VIRTUAL_ENV=/opt/$VENV_NAME PIP_FIND_LINKS= PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
      SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt UV_NATIVE_TLS=1 \
      SOUND_SENTRY_ENV=latest SOUND_SENTRY_DATA="${SOUND_SENTRY_DATA:-}" \
      /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$REPO" "$@"
  ' sh "$@"
}

# scripts/develop's Home Assistant: the latest lock in a venv of its own, where Home Assistant may install
# what its integrations ask for without touching the environment the tests use.
run_develop() {
  LATEST_VENV=venv-develop run_latest "$@"
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
