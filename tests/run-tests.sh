#!/bin/sh
# The whole test suite on a fresh Debian 12 machine, as root:
#   sh tests/run-tests.sh
# Installs what the build and the tests need, builds into ./build, and runs
# the unit suite (cmocka) and the system suite (pytest against real mounts).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "run-tests: run as root (the system tests mount FUSE filesystems)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential meson ninja-build pkg-config \
	libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev libssl-dev \
	libcmocka-dev openssl ca-certificates \
	python3 python3-pytest python3-hvac python3-botocore python3-boto3 \
	python3-yaml util-linux procps podman runc busybox-static \
	systemd apparmor >/dev/null

if [ ! -d build ]; then
	meson setup build
fi
ninja -C build

# meson prints each test's own closing lines into build/meson-logs.
meson test -C build --verbose --suite unit
meson test -C build --verbose --suite system
