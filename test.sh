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
echo "== Rust unit tests"
cargo test -q -p pyc-core -p pyc-monitor -p pyc-init -p pyc-dns
vm=../shared/tools/cgroup2-vm
if [ "$(id -u)" = 0 ] && [ -x "$vm" ]; then
  echo "== integration tests on pure cgroup v2 ($vm)"
  # not slow: the Debian bootstrap needs the mirror, and the VM has no network.
  # The image-store tests (no cgroup in them) run on the host only: they would double the VM's time.
  store_only=(crash_safety.py interop_layers.py progress.py prune_df.py save_load.py save_shared.py save_targets.py)
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
.venv/bin/python -m pytest "$@"
