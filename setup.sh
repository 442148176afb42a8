#!/usr/bin/env bash
# Set up a fresh Debian machine for pyc, as root, then run a container on the built-in busybox
# image. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (containers need namespaces, mounts and cgroups)" >&2
  exit 1
fi

# busybox-static and debootstrap make the built-in images; zstd, runc, crun, podman, skopeo,
# umoci and hyperfine are the tools tests and benchmarks compare against; gcc and libc6-dev
# build pyc-init (static) and the tests' probe programs; libseccomp-dev is the seccomp compiler
# pyc-core links; docker-registry is the registry the registry tests run (on loopback), with
# openssl (their CA, TLS certificates and token signatures) and apache2-utils (htpasswd, bcrypt);
# iproute2 and nftables let the network tests make their namespaces and look at what pyc made
# there (pyc itself runs neither). docker.io (dockerd 20.10) is the reference the security tests
# compare pyc's confinement with, in a dockerd of their own (tests/integration/dockerd.py).
packages=(busybox-static debootstrap zstd runc crun podman skopeo umoci hyperfine gcc libc6-dev libseccomp-dev docker-registry openssl apache2-utils iproute2 nftables docker.io)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  rest=()
  for p in "${missing[@]}"; do [ "$p" = docker.io ] || rest+=("$p"); done
  [ ${#rest[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${rest[@]}" >/dev/null
  # The package starts a registry on port 5000 of every interface: the tests run their own.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
  # docker.io would enable and start the system's dockerd (and containerd), which adds a
  # docker0 bridge and iptables rules and turns IP forwarding on: its units are masked before
  # it is installed, and while apt runs a policy-rc.d refuses every start (for hosts without
  # systemd); no recommends (apparmor, cgroupfs-mount, needrestart: each would act on the host).
  if [[ " ${missing[*]} " == *" docker.io "* ]]; then
    if command -v systemctl >/dev/null; then
      systemctl mask docker.service docker.socket containerd.service >/dev/null 2>&1 || true
    fi
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' > "$policy"
      chmod 755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null || { [ -z "$policy" ] || rm -f "$policy"; exit 1; }
    [ -z "$policy" ] || rm -f "$policy"
  fi
fi

command -v cargo >/dev/null || { echo "setup.sh: cargo (Rust) is needed: https://rustup.rs" >&2; exit 1; }
# The distribution's Python when there is one: every user can run it (the tests' unprivileged
# tier runs as nobody, which cannot reach a pyenv under /root), and Debian's, static and built
# with PGO, starts each pyc command 2 ms sooner than a shared-library build.
python=python3
[ -x /usr/bin/python3 ] && python=/usr/bin/python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/pip install -q --upgrade pip
# Builds the Rust core (release) through maturin and installs pyc with its dev tools.
.venv/bin/pip install -q -e '.[dev]'
# pyc-monitor, the process that holds each detached container, pyc-dns, the resolver of a
# user-defined network, and pyc-init, the static program pyc runs inside containers (--init,
# exec), beside the venv's python (where pyc looks first).
cargo build -q --profile monitor -p pyc-monitor -p pyc-dns
install -m 755 target/monitor/pyc-monitor .venv/bin/pyc-monitor
install -m 755 target/monitor/pyc-dns .venv/bin/pyc-dns
host=$(rustc -vV | sed -n 's/^host: //p')
# crt-static through --target: then RUSTFLAGS spares the build scripts and proc macros.
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --profile init -p pyc-init --bin pyc-init --target "$host"
install -m 755 "target/$host/init/pyc-init" .venv/bin/pyc-init
# The venv's setuptools (unused: maturin builds in pip's own build env) only adds a .pth file
# that every start of pyc would read.
.venv/bin/pip uninstall -q -y setuptools 2>/dev/null || true
# Installed packages ship bytecode; do the same here so `pyc` starts as fast as it would.
PYTHONDONTWRITEBYTECODE= .venv/bin/python -m compileall -q python >/dev/null
# `pyc` on the PATH: a launcher of our own (python/pyc/launcher.py) rather than pip's console
# script, which imports `re` and runs `site` first (a fifth of a `pyc run`'s time).
.venv/bin/python -m pyc.launcher /usr/local/bin/pyc

pyc run --rm --network none busybox sh -c 'echo "hello from $(hostname), a pyc container (pid $$)"'
