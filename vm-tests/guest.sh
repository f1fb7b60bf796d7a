#!/bin/sh
# Runs inside the VM (as root, over the host's read-only root filesystem): mount what
# BPF needs, then run pytest with caches in the writable results directory.
# Arguments: results-dir kernel-label pytest-args...
results=$1; label=$2; shift 2
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mkdir -p /sys/fs/cgroup/unified 2>/dev/null
mount | grep -q " type cgroup2 " || mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null \
    || mount -t cgroup2 none /sys/fs/cgroup/unified 2>/dev/null
export HOME="$results/home" XDG_CACHE_HOME="$results/cache" PYTHONDONTWRITEBYTECODE=1
mkdir -p "$HOME" "$XDG_CACHE_HOME"
cd "$PYLIBBPF_ROOT" || exit 97
"$PYLIBBPF_ROOT/.venv/bin/python" -m pytest -p no:cacheprovider -q -rs \
    --junitxml="$results/$label.xml" "$@" > "$results/$label.log" 2>&1
status=$?
echo "$status" > "$results/$label.status"
exit $status
