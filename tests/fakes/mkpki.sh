#!/bin/bash
# mkpki.sh OUTDIR: the throw-away test PKI used by the fakes and the system tests.
#
# Makes, in OUTDIR (EC P-256 keys, private keys mode 0600):
#   ca.crt/.key                test CA ("secretsfs test CA")
#   server.crt/.key            serverAuth, SANs 127.0.0.1, ::1, localhost; signed by ca
#   client.crt/.key            clientAuth, CN=secretsfs-client; signed by ca
#   client2.crt/.key           clientAuth, CN=secretsfs-client2; signed by ca (rotation tests)
#   client-expired.crt/.key    CN=secretsfs-client, signed by ca, valid 2020-01-01..2020-01-02
#   other-ca.crt/.key          an unrelated CA ("secretsfs other test CA")
#   client-otherca.crt/.key    CN=secretsfs-client, signed by other-ca
#   server-otherca.crt/.key    same SANs as server.crt, signed by other-ca
#
# Idempotent: when every file is there and nothing expires within a day it does nothing.
# Safe to run concurrently on the same OUTDIR (flock). Silent unless something fails.
set -euo pipefail

out=${1:?usage: mkpki.sh OUTDIR}
umask 077
mkdir -p "$out"
out=$(cd "$out" && pwd)

exec 9>"$out/.mkpki.lock"
flock 9

keys="ca other-ca server server-otherca client client2 client-expired client-otherca"
fresh="ca other-ca server server-otherca client client2 client-otherca"

uptodate() {
	local k
	for k in $keys; do
		[ -s "$out/$k.crt" ] && [ -s "$out/$k.key" ] || return 1
	done
	for k in $fresh; do
		openssl x509 -in "$out/$k.crt" -noout -checkend 86400 >/dev/null 2>&1 || return 1
	done
	return 0
}

if uptodate; then
	exit 0
fi

tmp=$(mktemp -d "$out/.mkpki.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# openssl is chatty on stderr even when it succeeds: keep its output for failures only.
run() {
	if ! "$@" >>"$tmp/log" 2>&1; then
		echo "mkpki.sh: failed: $*" >&2
		cat "$tmp/log" >&2
		exit 1
	fi
}

cat >"$tmp/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no

[dn]
CN = placeholder

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:::1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer

[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer

# "openssl ca" is the one tool in OpenSSL 3.0 that takes an arbitrary validity window
# (-startdate/-enddate); x509 -req only knows "from now for N days".
[ca]
default_ca = pastca

[pastca]
dir = $tmp/pastca
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none

[anything]
organizationName = optional
commonName = supplied
EOF
mkdir -p "$tmp/pastca/new"
: >"$tmp/pastca/index.txt"
openssl rand -hex 8 >"$tmp/pastca/serial"

cnf=$tmp/openssl.cnf

newkey() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key"
}

mkca() {	# name CN
	newkey "$1"
	run openssl req -x509 -new -config "$cnf" -extensions v3_ca -key "$tmp/$1.key" \
	    -subj "/O=secretsfs tests/CN=$2" -days 3650 -sha256 -out "$tmp/$1.crt"
}

mkleaf() {	# name CN issuer profile
	newkey "$1"
	run openssl req -new -config "$cnf" -key "$tmp/$1.key" -subj "/O=secretsfs tests/CN=$2" \
	    -out "$tmp/$1.csr"
	run openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$3.crt" -CAkey "$tmp/$3.key" \
	    -set_serial "0x$(openssl rand -hex 8)" -days 825 -sha256 \
	    -extfile "$cnf" -extensions "$4" -out "$tmp/$1.crt"
}

mkca ca "secretsfs test CA"
mkca other-ca "secretsfs other test CA"
mkleaf server localhost ca server
mkleaf server-otherca localhost other-ca server
mkleaf client secretsfs-client ca client
mkleaf client2 secretsfs-client2 ca client
mkleaf client-otherca secretsfs-client other-ca client

newkey client-expired
run openssl req -new -config "$cnf" -key "$tmp/client-expired.key" \
    -subj "/O=secretsfs tests/CN=secretsfs-client" -out "$tmp/client-expired.csr"
run openssl ca -batch -config "$cnf" -notext -cert "$tmp/ca.crt" -keyfile "$tmp/ca.key" \
    -startdate 20200101000000Z -enddate 20200102000000Z -extensions client \
    -in "$tmp/client-expired.csr" -out "$tmp/client-expired.crt"

for k in $keys; do
	chmod 0600 "$tmp/$k.key"
	chmod 0644 "$tmp/$k.crt"
done
# Keys first, so that a reader never sees a certificate without its key.
for k in $keys; do
	mv -f "$tmp/$k.key" "$out/$k.key"
done
for k in $keys; do
	mv -f "$tmp/$k.crt" "$out/$k.crt"
done
