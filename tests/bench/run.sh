#!/bin/sh
# The benchmark table and chart on a Debian 12 machine, as root, from the top
# of the repository:
#   sh tests/bench/run.sh [run.py options, e.g. --reps 7 --seconds 2]
# Installs what it needs (nginx, gnuplot, perf, gdb and the build
# dependencies), builds a release tree in /tmp/secretsfs-bench-build, runs
# every case and writes tests/bench/RESULTS.md and tests/bench/results.png.
set -eu
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (it mounts FUSE and tmpfs filesystems)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential meson ninja-build pkg-config \
	libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev libssl-dev \
	libseccomp-dev \
	openssl ca-certificates python3 util-linux procps \
	nginx gnuplot-nox linux-perf gdb >/dev/null

exec /usr/bin/python3 tests/bench/run.py "$@"
