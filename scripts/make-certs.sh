#!/bin/sh
# scripts/make-certs.sh — certificates for a TLS cluster, made with openssl
# exactly as docs/SECURITY.md ("Making certificates with openssl") shows:
# a CA, one certificate per node (the URI SAN paxosd://node/ID, both
# extended key usages, the hosts as SANs) and client certificates whose
# CommonName names the user. The tests (cmd/paxosd/tls_openssl_e2e_test.go)
# and 'make bench-tls' use it, so what the documentation tells operators to
# run is what is tested.
#
# Usage: scripts/make-certs.sh DIR [NODES] [CLIENTS]
#   DIR      where the files go (made if missing): ca.crt, ca.key,
#            nodeID.crt, nodeID.key per node, NAME.crt, NAME.key per client
#   NODES    node ids, e.g. "1 2 3" (the default; "" for none)
#   CLIENTS  client CommonNames, e.g. "alice node-2" (default "client")
#
# Environment:
#   HOSTS    the nodes' SANs besides the URI, comma-separated openssl
#            entries (default "IP:127.0.0.1,DNS:localhost")
#   CA_NAME  the CA's CommonName (default "paxosd CA"); an existing ca.crt
#            and ca.key in DIR are reused, so a second run adds certificates
#            signed by the same CA
#   DAYS     validity of the node and client certificates (default 825)
set -eu

me=make-certs.sh
die() {
	echo "$me: $*" >&2
	exit 1
}

[ $# -ge 1 ] || die "usage: $me DIR [NODES] [CLIENTS]"
dir=$1
nodes=${2-1 2 3}
clients=${3-client}
hosts=${HOSTS:-IP:127.0.0.1,DNS:localhost}
ca_name=${CA_NAME:-paxosd CA}
days=${DAYS:-825}
command -v openssl >/dev/null 2>&1 || die "openssl is not installed (Debian: apt-get install openssl; scripts/install-deps.sh installs it)"
for id in $nodes; do
	case $id in '' | *[!0-9]* | 0) die "NODES=$nodes: want node ids above 0, e.g. \"1 2 3\"" ;; esac
done

mkdir -p "$dir"
cd "$dir"
# openssl prints its progress on stderr; only its failures matter here.
quiet() {
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "failed: $*"
	fi
}

if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
	quiet openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-keyout ca.key -out ca.crt -days 3650 -subj "/CN=$ca_name" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

# sign NAME EXTFILE: NAME.csr signed by the CA into NAME.crt.
sign() {
	quiet openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
		-days "$days" -out "$1.crt" -extfile "$2"
	rm -f "$1.csr" "$2"
	chmod 600 "$1.key"
}

for id in $nodes; do
	quiet openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-keyout "node$id.key" -out "node$id.csr" -subj "/CN=node-$id"
	cat >"node$id.ext" <<EOF
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = URI:paxosd://node/$id, $hosts
EOF
	sign "node$id" "node$id.ext"
done

for name in $clients; do
	quiet openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-keyout "$name.key" -out "$name.csr" -subj "/CN=$name"
	printf 'basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' >"$name.ext"
	sign "$name" "$name.ext"
done
