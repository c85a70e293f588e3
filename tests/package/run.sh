#!/usr/bin/env bash
# The Debian package, built and installed as an operator would: builds it from
# this tree with dpkg-buildpackage (in a scratch copy), lints it, checks that
# it refers to neither the source nor the build tree, installs it with dpkg -i
# (so: root on a machine that may get the package installed, like CI),
# verifies the systemd unit, then runs the installed service in a network
# namespace with only lo (tests/package/service.py).
# Prints "ok NAME" / "FAIL NAME" per check and ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
artifacts=${TESSERA_ARTIFACTS:-$PWD/build/test-artifacts}/package
rm -rf "$artifacts"
mkdir -p "$artifacts"
passed=0
failed=0

# check NAME COMMAND...: runs COMMAND, its output into $artifacts/NAME.log.
check() {
  local name=$1 log
  shift
  log="$artifacts/$(tr -c 'A-Za-z0-9_.-' _ <<<"$name").log"
  if "$@" >"$log" 2>&1; then
    echo "ok $name"; passed=$((passed + 1))
  else
    echo "FAIL $name (see $log)"; tail -n 20 "$log" | sed 's/^/  /'; failed=$((failed + 1))
  fi
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# The packaging tools; the build dependencies are scripts/deps'.
tools() {
  local missing=()
  for p in debhelper lintian help2man; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
check "packaging tools" tools

work=$(mktemp -d /tmp/tessera-package.XXXXXX)
chmod 755 "$work" # the tessera user reaches the notify socket in it
trap 'rm -rf "$work"' EXIT
version=$(sed -n "s/^ *version : '\(.*\)',$/\1/p" meson.build)

# What git would ship (tracked and new files, not build directories).
copy() {
  mkdir "$work/tessera" && git ls-files -z --cached --others --exclude-standard |
    tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$work/tessera"
}
check "scratch copy of the tree" copy
check "build dependencies installed" sh -c "cd '$work/tessera' && dpkg-checkbuilddeps"
# nocheck: scripts/test runs the tests; parallel=2: the machine is shared.
check "dpkg-buildpackage -us -uc -b" sh -c \
  "cd '$work/tessera' && DEB_BUILD_OPTIONS='nocheck parallel=2' nice dpkg-buildpackage -us -uc -b"
deb=$(ls "$work"/tessera_"$version"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { echo "FAIL no tessera_${version}_*.deb built"; failed=$((failed + 1)); finish; }
cp "$deb" "$artifacts/"

check "package version is the meson project version" test "$(dpkg-deb -f "$deb" Version)" = "$version"
# Errors fail; warnings and info stay in the log.
check "lintian reports no errors" lintian --fail-on error --info "$deb"
check "runtime dependencies name the GStreamer plugin packages" sh -c "dpkg-deb -f '$deb' Depends | tr -d ' ' | tr ',' '\n' |
  grep -cxE 'gstreamer1.0-(plugins-(base|good|bad|ugly)|libav|nice)' | grep -qx 6"
no_tree_paths() {
  dpkg-deb -x "$deb" "$work/root" || return 1
  ! grep -rlF -e "$work/tessera" -e "$PWD" "$work/root"
}
check "nothing refers to the source or build tree" no_tree_paths

check "dpkg -i" dpkg -i "$deb"
check "tessera --version" test "$(/usr/bin/tessera --version)" = "tessera $version"
check "tessera system user" sh -c 'getent passwd tessera | grep -q ":/var/lib/tessera:/usr/sbin/nologin$"'
check "/var/lib/tessera/recordings owned by tessera" test "$(stat -c %U:%G /var/lib/tessera/recordings)" = tessera:tessera
check "/var/lib/tessera/live owned by tessera" test "$(stat -c %U:%G /var/lib/tessera/live)" = tessera:tessera
check "/etc/tessera/config.json is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' tessera | grep -q ' /etc/tessera/config.json '"
check "/etc/tessera/config.json readable by the tessera group only" \
  test "$(stat -c %a:%U:%G /etc/tessera/config.json)" = 640:root:tessera
check "man pages" sh -c 'man -w tessera && man -w tessera-client || ls /usr/share/man/man1/tessera.1.gz /usr/share/man/man1/tessera-client.1.gz'
check "systemd-analyze verify tessera.service" systemd-analyze verify /lib/systemd/system/tessera.service
unit_docs() {
  local docs
  docs=$(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' /lib/systemd/system/tessera.service)
  [ -n "$docs" ] && ls -l $docs
}
check "the unit's documentation file is installed" unit_docs

echo "== installed service (network namespace with only lo)"
# TESSERA_TEST_LOCK: a lock file held while the service runs, on machines
# where timing-sensitive suites must not overlap.
${TESSERA_TEST_LOCK:+flock "$TESSERA_TEST_LOCK"} unshare --net sh -c 'ip link set lo up && exec "$@"' sh \
  /usr/bin/python3 tests/package/service.py "$work" >"$artifacts/service.out" 2>&1
cp "$work"/*.log "$work"/tessera.stderr "$artifacts/" 2>/dev/null
cat "$artifacts/service.out"
p=$(grep -c '^ok ' "$artifacts/service.out")
f=$(grep -c '^FAIL ' "$artifacts/service.out")
# A crash before the checks counts as a failure.
grep -q '^ok SIGTERM exits 0' "$artifacts/service.out" || [ "$f" -gt 0 ] || f=1
passed=$((passed + p)); failed=$((failed + f))
finish
