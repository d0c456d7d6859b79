#!/bin/sh
# Installs runwasi's wasmtime shim on this node and registers it with containerd as the
# runtime "wasmtime" (the RuntimeClass handler): what KWasm's node installer automated.
# Run as root on each node that should run the pods, then from your workstation:
#   kubectl label node <node> wasmtime=true
#
# Settings (environment):
#   SHIM_VERSION      runwasi containerd-shim-wasmtime release (default 0.6.0)
#   SHIM_TARBALL      a local release tarball instead of downloading one
#   CONTAINERD_CONFIG containerd's config (default /etc/containerd/config.toml)
#   BIN_DIR           where containerd finds shims on its PATH (default /usr/local/bin)
#   RESTART           how to restart containerd (default: systemctl restart containerd)
#   CGROUP_DRIVER     systemd or cgroupfs: the kubelet's cgroup driver, which the shim must use
#                     too (default: what containerd's runc runtime in CONTAINERD_CONFIG uses,
#                     SystemdCgroup = true -> systemd, otherwise cgroupfs)
set -eu

version="${SHIM_VERSION:-0.6.0}"
config="${CONTAINERD_CONFIG:-/etc/containerd/config.toml}"
bin_dir="${BIN_DIR:-/usr/local/bin}"
restart="${RESTART:-systemctl restart containerd}"

# The shim places pods' cgroups the way runc does: by the kubelet's driver, or the kubelet finds
# no metrics for them (runwasi #864). A node's runc is already set to match its kubelet.
driver="${CGROUP_DRIVER:-}"
if [ -z "$driver" ]; then
  if awk '/^[[:space:]]*\[/ { runc = index($0, "runtimes.runc.options]") > 0 }
      runc && /^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true/ { found = 1 }
      END { exit !found }' "$config" 2>/dev/null; then
    driver=systemd
  else
    driver=cgroupfs
  fi
fi
case "$driver" in
  systemd) systemd_cgroup=true ;;
  cgroupfs) systemd_cgroup=false ;;
  *) echo "CGROUP_DRIVER must be systemd or cgroupfs, not '$driver'" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="${SHIM_TARBALL:-}"
if [ -z "$tarball" ]; then
  arch="$(uname -m)" # x86_64 or aarch64
  tarball="$work/shim.tar.gz"
  curl -fsSL -o "$tarball" \
    "https://github.com/containerd/runwasi/releases/download/containerd-shim-wasmtime%2Fv${version}/containerd-shim-wasmtime-${arch}-linux-musl.tar.gz"
fi
tar -xzf "$tarball" -C "$work"
# The tarball also holds .sig and .pem signing files; only the binary is a shim.
install -D -m 0755 "$work/containerd-shim-wasmtime-v1" "$bin_dir/containerd-shim-wasmtime-v1"

# containerd 2.x configs are version 3 and moved the CRI runtime plugin.
if grep -Eq '^[[:space:]]*version[[:space:]]*=[[:space:]]*3' "$config" 2>/dev/null; then
  plugin="io.containerd.cri.v1.runtime"
else
  plugin="io.containerd.grpc.v1.cri"
fi
if grep -Fq "containerd.runtimes.wasmtime]" "$config" 2>/dev/null; then
  # Nothing changed for containerd: no restart (it would disturb the running pods for nothing).
  echo "containerd already has a wasmtime runtime in $config; left as it is, containerd not restarted"
else
  # runtime_type io.containerd.wasmtime.v1 makes containerd run containerd-shim-wasmtime-v1.
  cat >> "$config" <<TOML

[plugins."$plugin".containerd.runtimes.wasmtime]
  runtime_type = "io.containerd.wasmtime.v1"
  [plugins."$plugin".containerd.runtimes.wasmtime.options]
    SystemdCgroup = $systemd_cgroup
TOML
  echo "registered the wasmtime runtime in $config (cgroup driver $driver)"
  $restart
fi
