#!/usr/bin/env bash
# Installs the Debian 12 packages the build and the tests need, only when
# one is missing (so `make` stays fast on a ready machine). Needs root.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev libprotoc-dev
      libssl-dev libsqlite3-dev sqlite3 libpq-dev libmariadb-dev check libyaml-dev libjansson-dev
      libmicrohttpd-dev libcurl4-openssl-dev  # --http: Spawn's HTTP protocol (gateway/http)
      libgnutls28-dev  # --http over HTTPS: the certificate callback (gateway/http/http_tls.c)
      python3 python3-grpcio python3-protobuf
      protobuf-compiler-grpc  # grpc_python_plugin: plain gRPC stubs (tests/reach)
      python3-yaml systemd  # tests/deploy: the manifests (PyYAML), systemd-analyze verify
      postgresql mariadb-server
      openssl  # the CLI: test certificates (tests/tls/mkcerts.sh, dbtls_test.py)
      nftables  # the cluster harness's partitions (tests/cluster)
      dnsmasq-base  # a test's own DNS server (a name with several gateway addresses)
      prometheus  # promtool checks the /metrics exposition; a real server scrapes it
      clang libclang-rt-14-dev)  # libFuzzer (make test-fuzz / make fuzz)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js (for sdk/node): the machine image ships Node 20; a bare Debian 12
# gets Debian's nodejs and npm.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
# Package postinst scripts must not start system database services: the
# tests run private instances on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
