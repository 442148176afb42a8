#!/usr/bin/env bash
# Run every test: the lint (rustfmt, clippy, ruff, mypy), Rust unit tests, pytest (unit and, as
# root, integration), then the integration tests again on a pure cgroup v2 kernel (a User-Mode
# Linux VM), since this kind of host is hybrid and most users' hosts are pure v2.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"

echo "== lint"
cargo fmt --all -- --check
cargo clippy -q --workspace --all-targets -- -D warnings
.venv/bin/ruff check -q python tests benches
.venv/bin/python -m mypy
# What the tests may not leave on the host, whatever they do: nft tables and links (network tests
# run in namespaces of their own; a peer run on its default network, podman's netavark, leaves
# tables here). Compared at the end.
host_state() { { nft list tables 2>/dev/null || true; ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}'; } | sort; }
host_before=$(host_state)
echo "== Rust unit tests"
cargo test -q -p pyc-core -p pyc-monitor -p pyc-init -p pyc-registry -p pyc-dns
vm=../shared/tools/cgroup2-vm
if [ "$(id -u)" = 0 ] && [ -x "$vm" ]; then
  echo "== integration tests on pure cgroup v2 ($vm)"
  # not slow: the Debian bootstrap needs the mirror, and the VM has no network.
  # The image-store tests (no cgroup in them) run on the host only: they would double the VM's time.
  store_only=(crash_safety.py interop_layers.py progress.py prune_df.py save_load.py save_shared.py save_targets.py registry_pull.py registry_auth.py registry_push.py registry_faults.py registry_interop.py)
  rc=0
  "$vm" "$PWD" -- .venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow" \
    "${store_only[@]/#/--ignore=tests/integration/test_}" tests/integration "$@" || rc=$?
  if [ "$rc" = 77 ]; then
    # The tool's word for a host whose CPU (AVX-512, AMX) User-Mode Linux cannot run on.
    printf '\n%s\n%s\n%s\n%s\n\n' \
      "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" \
      "!! cgroup v2 run not possible on this host (its CPU has AVX-512 or AMX): NOT TESTED ON PURE V2." \
      "!! Untested here: v2 limits (memory, cpu, pids, io), v2 stats, the v2 controller setup." \
      "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    if grep -q ' /sys/fs/cgroup/unified .* - cgroup2 ' /proc/self/mountinfo; then
      # What the hybrid host's own cgroup2 mount allows: the containers placed, entered, frozen
      # and killed through v2 (no controllers there, so no limits).
      echo "== integration tests on this host's cgroup2 mount (/sys/fs/cgroup/unified), limits aside"
      PYC_CGROUP_ROOT=/sys/fs/cgroup/unified .venv/bin/python -m pytest -q -p no:cacheprovider \
        -m "not slow and not limits" "${store_only[@]/#/--ignore=tests/integration/test_}" tests/integration "$@"
    fi
  elif [ "$rc" != 0 ]; then
    exit "$rc"
  fi
else
  echo "== cgroup v2 run skipped: needs root and $vm (the UML VM tool beside this repo)"
fi
# The tiers (tests/conftest.py): tests marked `root` need the host's root; every other one, the
# store, archive, gc and cache tests with the unit tests, must pass unprivileged, as root of a
# user namespace (uid 0 there, an ordinary user outside: it may chown to 0, not make mounts,
# cgroups or devices). As root, that tier runs once more as nobody, so a test of it that needs
# root without saying so fails here.
if [ "$(id -u)" = 0 ]; then
  .venv/bin/python -m pytest "$@"
  echo "== the unprivileged tier again: as nobody, in a user namespace of its own"
  if ! setpriv --reuid=nobody --regid=nogroup --clear-groups .venv/bin/python -c pass 2>/dev/null; then
    echo "test.sh: nobody cannot run .venv/bin/python ($(readlink -f .venv/bin/python)), so the" \
      "unprivileged tier cannot run: make the venv from a Python every user can run (rm -rf .venv && ./setup.sh)" >&2
    exit 1
  fi
  work=$(mktemp -d /tmp/pyc-test-nobody.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  chown nobody:nogroup "$work"
  setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$work" TMPDIR="$work" \
    unshare --map-root-user .venv/bin/python -m pytest -p no:cacheprovider -m "not root" --basetemp="$work/pytest" "$@"
else
  echo "== pytest as root of a user namespace of this user's: the root tier is skipped"
  unshare --map-root-user .venv/bin/python -m pytest "$@"
fi
left=$(comm -13 <(echo "$host_before") <(host_state))
if [ -n "$left" ]; then
  echo "test.sh: the tests left this on the host (remove it, and find the test that made it):" >&2
  echo "$left" >&2
  exit 1
fi
