#!/bin/sh
# secretsfs quickstart, on a fresh Debian 12 machine, as root:
#   sh deploy/quickstart.sh
# Installs the build dependencies, builds, writes demo secrets and a config,
# mounts secretsfs on /run/secretsfs and reads a secret through the mount as
# an unprivileged user.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "quickstart: run as root (mounting needs it)" >&2
	exit 1
fi

echo "==> installing build dependencies (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential meson ninja-build pkg-config \
	libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev libssl-dev \
	libcmocka-dev util-linux openssl >/dev/null

echo "==> building"
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
BIN=$PWD/build/fuse/secretsfs

DEMO=/var/lib/secretsfs-demo
MNT=/run/secretsfs
echo "==> writing demo secrets into $DEMO (mode 0700, root only)"
install -d -m 0700 "$DEMO" "$DEMO/secrets"
umask 077
printf 'correct-horse-battery-staple' > "$DEMO/secrets/db_password"
printf '{"api_key":"sk_test_4eC39HqLyjWDarjtT1zdp7dc","merchant":"demo"}' \
	> "$DEMO/secrets/payment.json"
[ -f "$DEMO/audit.key" ] || openssl rand -hex 32 > "$DEMO/audit.key"
chmod 600 "$DEMO/audit.key"
sed "s|@SECRETS@|$DEMO/secrets|; s|@MOUNT@|$MNT|; s|@DEMO@|$DEMO|g" \
	conf/quickstart.json > "$DEMO/secretsfs.json"
chmod 600 "$DEMO/secretsfs.json"
"$BIN" check-config "$DEMO/secretsfs.json"

if [ -f "$DEMO/secretsfs.pid" ] && kill -0 "$(cat "$DEMO/secretsfs.pid")" 2>/dev/null; then
	echo "==> stopping the previous quickstart daemon"
	kill "$(cat "$DEMO/secretsfs.pid")"
	sleep 1
fi

echo "==> mounting secretsfs on $MNT (log: $DEMO/secretsfs.log)"
setsid "$BIN" mount -f -c "$DEMO/secretsfs.json" > "$DEMO/secretsfs.log" 2>&1 &
echo $! > "$DEMO/secretsfs.pid"
i=0
until mountpoint -q "$MNT" && ls "$MNT" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 50 ] || ! kill -0 "$(cat "$DEMO/secretsfs.pid")" 2>/dev/null; then
		echo "quickstart: the mount did not come up:" >&2
		cat "$DEMO/secretsfs.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo
echo "==> ls -l $MNT"
ls -l "$MNT"
echo
echo "==> reading $MNT/db_password as the unprivileged user 'nobody'"
setpriv --reuid nobody --regid nogroup --clear-groups cat "$MNT/db_password"
echo
echo
echo "==> reading one field of a JSON secret ($MNT/payment_api_key)"
setpriv --reuid nobody --regid nogroup --clear-groups cat "$MNT/payment_api_key"
echo
echo
echo "==> another user is refused by the file's mode"
setpriv --reuid daemon --regid daemon --clear-groups cat "$MNT/db_password" || true
echo
echo "==> writes are refused: the filesystem is read-only"
( echo x > "$MNT/db_password" ) 2>&1 || true
( touch "$MNT/new_file" ) 2>&1 || true
echo
echo "==> the audit trail: every open above, allowed or denied, with a MAC chain"
"$BIN" audit show "$DEMO/audit.log"
echo
"$BIN" audit verify -k "$DEMO/audit.key" "$DEMO/audit.log"
echo
echo "secretsfs is serving $MNT (pid $(cat "$DEMO/secretsfs.pid"))."
echo "To unmount:  kill $(cat "$DEMO/secretsfs.pid")     (SIGTERM unmounts cleanly)"
