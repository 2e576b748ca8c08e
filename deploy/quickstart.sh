#!/bin/sh
# secretsfs quickstart, on a fresh Debian 12 machine, as root:
#   sh deploy/quickstart.sh
# Installs what it needs, builds, starts a local Vault (the project's test
# double, tests/fakes/vault_server.py) that requires mutual TLS, writes a
# secret into it, mounts secretsfs on /run/secretsfs against it with TLS
# certificate auth, and reads the secret through the mount as an
# unprivileged user.
#
# Where it works can be moved (tests/system/test_quickstart.py runs it so):
#   SECRETSFS_DEMO_DIR    state, keys, logs  (default /var/lib/secretsfs-demo)
#   SECRETSFS_DEMO_MOUNT  the mountpoint     (default /run/secretsfs)
#   SECRETSFS_DEMO_PORT   the local Vault    (default 8200)
set -eu
cd "$(dirname "$0")/.."
TOP=$PWD

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
	libseccomp-dev \
	libcmocka-dev util-linux procps openssl curl ca-certificates python3 >/dev/null

echo "==> building"
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
BIN=$TOP/build/fuse/secretsfs

DEMO=${SECRETSFS_DEMO_DIR:-/var/lib/secretsfs-demo}
MNT=${SECRETSFS_DEMO_MOUNT:-/run/secretsfs}
PORT=${SECRETSFS_DEMO_PORT:-8200}
PKI=$DEMO/pki
VAULT=https://127.0.0.1:$PORT
install -d -m 0700 "$DEMO"
umask 077

# Stop what an earlier run left running.
for p in secretsfs vault; do
	if [ -f "$DEMO/$p.pid" ] && kill -0 "$(cat "$DEMO/$p.pid")" 2>/dev/null; then
		echo "==> stopping the previous quickstart $p"
		kill "$(cat "$DEMO/$p.pid")"
		sleep 1
	fi
done

echo "==> making a test CA, a server certificate for 127.0.0.1 and a client certificate"
bash tests/fakes/mkpki.sh "$PKI"

echo "==> starting a local Vault on $VAULT that requires a client certificate"
[ -f "$DEMO/vault-root-token" ] ||
	printf 'hvs.%s' "$(openssl rand -hex 12)" > "$DEMO/vault-root-token"
rm -f "$DEMO/vault.ready"
setsid /usr/bin/python3 tests/fakes/vault_server.py --port "$PORT" \
	--cert "$PKI/server.crt" --key "$PKI/server.key" \
	--client-ca "$PKI/ca.crt" --root-token-file "$DEMO/vault-root-token" \
	--ready-file "$DEMO/vault.ready" > "$DEMO/vault.log" 2>&1 &
echo $! > "$DEMO/vault.pid"
i=0
until [ -s "$DEMO/vault.ready" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "quickstart: the local Vault did not start:" >&2
		cat "$DEMO/vault.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "==> a security team writes the secret into Vault (KV v2, secret/payments/db)"
# Token and value go through private files, never argv.
printf 'X-Vault-Token: %s\n' "$(cat "$DEMO/vault-root-token")" > "$DEMO/vault-headers"
printf '{"data":{"username":"payments","password":"%s"}}' \
	"$(openssl rand -base64 18)" > "$DEMO/secret.json"
curl -sS --fail --cacert "$PKI/ca.crt" --cert "$PKI/client.crt" \
	--key "$PKI/client.key" -H @"$DEMO/vault-headers" \
	--data @"$DEMO/secret.json" "$VAULT/v1/secret/data/payments/db" >/dev/null
rm -f "$DEMO/secret.json"

echo "==> the fetcher's user, and its own copy of the client certificate and key"
# secretsfs talks to Vault from a separate process running as this
# unprivileged user; the keys it uses are its files and nobody else's.
id secretsfs >/dev/null 2>&1 ||
	useradd --system --no-create-home --shell /usr/sbin/nologin secretsfs
chmod 0711 "$DEMO"
FETCH=$DEMO/fetcher
install -d -m 0700 -o secretsfs -g secretsfs "$FETCH"
for f in ca.crt client.crt client.key; do
	install -m 0600 -o secretsfs -g secretsfs "$PKI/$f" "$FETCH/$f"
done

echo "==> writing the secretsfs config and the audit key"
[ -f "$DEMO/audit.key" ] || openssl rand -hex 32 > "$DEMO/audit.key"
sed "s|@FETCH@|$FETCH|g; s|@MOUNT@|$MNT|; s|@DEMO@|$DEMO|g; s|@VAULT@|$VAULT|" \
	conf/quickstart.json > "$DEMO/secretsfs.json"
"$BIN" check-config "$DEMO/secretsfs.json"

echo "==> mounting secretsfs on $MNT (log: $DEMO/secretsfs.log)"
setsid "$BIN" mount -f -c "$DEMO/secretsfs.json" > "$DEMO/secretsfs.log" 2>&1 &
echo $! > "$DEMO/secretsfs.pid"
i=0
until mountpoint -q "$MNT" && ls "$MNT" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$(cat "$DEMO/secretsfs.pid")" 2>/dev/null; then
		echo "quickstart: the mount did not come up:" >&2
		cat "$DEMO/secretsfs.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo
echo "==> ls -l $MNT $MNT/db"
ls -l "$MNT" "$MNT/db"
echo
echo "==> $MNT/db_password, read by the unprivileged user 'nobody': from Vault, over mTLS"
setpriv --reuid nobody --regid nogroup --clear-groups cat "$MNT/db_password"
echo
echo
echo "==> another user is refused by the file's mode"
setpriv --reuid daemon --regid daemon --clear-groups cat "$MNT/db_password" || true
echo
echo "==> writes are refused: the filesystem is read-only"
( echo x > "$MNT/db_password" ) 2>&1 || true
( touch "$MNT/new_file" ) 2>&1 || true
echo
echo "==> what secretsfs logged (no value, no token)"
cat "$DEMO/secretsfs.log"
echo
echo "==> its processes: the FUSE process, the privileged helper, the fetcher"
for pid in $(cat "$DEMO/secretsfs.pid") $(pgrep -x secretsfs-priv) $(pgrep -x secretsfs-fetch); do
	printf '%-16s pid %-7s uid %-5s CapEff %s\n' "$(cat /proc/$pid/comm)" "$pid" \
		"$(awk '/^Uid:/ { print $2 }' /proc/$pid/status)" \
		"$(awk '/^CapEff:/ { print $2 }' /proc/$pid/status)"
done
echo
echo "==> the audit trail: every open above, with its version and a MAC chain"
"$BIN" audit show "$DEMO/audit.log"
echo
"$BIN" audit verify -c "$DEMO/secretsfs.json" "$DEMO/audit.log"
echo
echo "secretsfs is serving $MNT (pid $(cat "$DEMO/secretsfs.pid")); the local Vault is pid $(cat "$DEMO/vault.pid")."
echo "To unmount and stop:  kill $(cat "$DEMO/secretsfs.pid") $(cat "$DEMO/vault.pid")     (SIGTERM unmounts cleanly)"
