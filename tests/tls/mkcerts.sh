#!/usr/bin/env bash
# mkcerts.sh DIR - a private PKI for the TLS tests, made with the openssl CLI.
#
# Writes into DIR (created if missing); every key is EC P-256, every
# certificate is signed by a test CA made here, valid for 2 days unless said:
#   ca.pem ca.key             the test CA (trust anchor for everything below)
#   server.pem server.key     the gateway: SAN DNS:localhost, IP:127.0.0.1, IP:::1;
#                             EKU serverAuth and clientAuth (a cluster member dials its
#                             peers with its own certificate)
#   server2.pem server2.key   the same names, a new key and serial: a renewed certificate
#   client.pem client.key     SAN URI:spiffe://spawn.test/client DNS:client.spawn.test
#   host.pem host.key         SAN URI:spiffe://spawn.test/host   DNS:host.spawn.test
#   admin.pem admin.key       SAN URI:spiffe://spawn.test/admin  DNS:admin.spawn.test
#   other.pem other.key       SAN URI:spiffe://spawn.test/other  DNS:other.spawn.test
#   expired.pem expired.key   SAN URI:spiffe://spawn.test/client, valid 2020-01-01..2020-01-02
#   db.pem db.key             a database server: SAN DNS:localhost, IP:127.0.0.1
#   peer.pem peer.key         a cluster member as on Kubernetes: SAN URI:spiffe://spawn.test/peer
#                             DNS:peer.spawn.test only (no address: members dialled at their
#                             IPs need --peer-tls-server-name); serverAuth and clientAuth
#   peer2.pem peer2.key       the same with URI:spiffe://spawn.test/peer2 (a renewal that a
#                             policy can tell apart)
#   rogue-ca.pem rogue-ca.key a second CA nobody trusts
#   rogue.pem rogue.key       SAN URI:spiffe://spawn.test/client, signed by rogue-ca
# Each NAME.pem holds only the leaf; NAME-chain.pem holds leaf + CA.
# Idempotent: an existing DIR/ca.pem is kept (delete DIR to start over).
set -euo pipefail
dir=${1:?usage: mkcerts.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f ca.pem ] && [ -f rogue.pem ] && [ -f db.pem ] && [ -f peer.pem ] && [ -f peer2.pem ] && exit 0

newkey() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; chmod 600 "$1.key"; }

mkca() { # mkca NAME CN
	newkey "$1"
	openssl req -x509 -new -key "$1.key" -sha256 -days 3 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem" 2>/dev/null
	mkdir -p "$1.db"
	: >"$1.db/index.txt"
	openssl rand -hex 16 >"$1.db/serial"
	cat >"$1.cnf" <<EOF
[ca]
default_ca = local
[local]
dir = $PWD/$1.db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $PWD/$1.pem
private_key = $PWD/$1.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = copy
email_in_dn = no
[anything]
commonName = supplied
EOF
}

# leaf NAME CA SAN EKU [STARTDATE ENDDATE]
leaf() {
	local name=$1 ca=$2 san=$3 eku=$4
	newkey "$name"
	openssl req -new -key "$name.key" -subj "/CN=$name" -addext "subjectAltName=$san" \
		-addext "extendedKeyUsage=$eku" -addext "basicConstraints=critical,CA:FALSE" \
		-out "$name.csr" 2>/dev/null
	local dates=(-days 2)
	if [ $# -ge 6 ]; then dates=(-startdate "$5" -enddate "$6"); fi
	openssl ca -batch -notext -config "$ca.cnf" "${dates[@]}" -in "$name.csr" -out "$name.pem" 2>/dev/null
	rm -f "$name.csr"
	cat "$name.pem" "$ca.pem" >"$name-chain.pem"
}

mkca ca "spawn test CA"
mkca rogue-ca "rogue CA"
leaf server ca "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth,clientAuth
leaf server2 ca "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth,clientAuth
leaf db ca "DNS:localhost,IP:127.0.0.1" serverAuth
leaf peer ca "URI:spiffe://spawn.test/peer,DNS:peer.spawn.test" serverAuth,clientAuth
leaf peer2 ca "URI:spiffe://spawn.test/peer2,DNS:peer.spawn.test" serverAuth,clientAuth
for who in client host admin other; do
	leaf "$who" ca "URI:spiffe://spawn.test/$who,DNS:$who.spawn.test" clientAuth
done
leaf expired ca "URI:spiffe://spawn.test/client,DNS:client.spawn.test" clientAuth \
	20200101000000Z 20200102000000Z
leaf rogue rogue-ca "URI:spiffe://spawn.test/client,DNS:client.spawn.test" clientAuth
