#!/usr/bin/env bash
# Installs the Debian packages the tests need, only those that are missing.
#
# The fault-injection suite (chaos/) puts each paxosd node in a network
# namespace and injects partitions, packet loss and delay with iptables in
# those namespaces: it needs `ip` (iproute2) and `iptables`. The tests of
# cmd/paxosd check contrib/systemd/paxosd.service with `systemd-analyze
# verify` (package systemd; installing it starts no service in a
# container), and load the status page in headless Chromium
# (cmd/paxosd/statuspage_e2e_test.go: package chromium). The Python client
# (clients/python) needs msgpack for Debian's python3 (package
# python3-msgpack, which brings python3): its tests run in wire/ and
# cmd/paxosd/python_e2e_test.go. The TLS tests and 'make bench-tls' make
# their certificates with openssl (scripts/make-certs.sh). Nothing else is installed; without root (or without apt-get) the script only reports what
# is missing, and the tests that need it skip themselves with a message
# saying so.
set -euo pipefail

# command -> Debian package that provides it
declare -A want=(
	[ip]=iproute2
	[iptables]=iptables
	[iptables-legacy]=iptables
	[systemd-analyze]=systemd
	[chromium]=chromium
	[openssl]=openssl
)

missing=()
for cmd in "${!want[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
		pkg=${want[$cmd]}
		case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
	fi
done

# Python modules, for Debian's own python3 (a python3 earlier on PATH, a
# pyenv one say, does not see Debian's packages; the tests look for either).
if ! /usr/bin/python3 -c 'import msgpack' >/dev/null 2>&1; then
	missing+=(python3-msgpack)
fi

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: missing packages: ${missing[*]} (not root or no apt-get: not installing; the tests that need them will skip)" >&2
	exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the package lists only when the first attempt fails (stale lists),
# so that a machine with fresh lists does not hit the network twice.
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
