#!/bin/sh
# Makes throwaway certificates for tests/test_https_client.c in directory $1: a CA (ca.pem), a
# leaf for localhost/127.0.0.1 signed by it (leaf.pem, leaf.key), a leaf for another name signed
# by it (wrong.pem, wrong.key), and a localhost leaf signed by a CA nobody trusts (rogue.pem,
# rogue.key). Needs the openssl command.
set -eu
dir=$1
cd "$dir"
days=2
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout ca.key -out ca.pem -days $days -subj "/CN=intentd test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -x509 $ec -keyout rogue-ca.key -out rogue-ca.pem -days $days \
    -subj "/CN=intentd rogue CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign" 2>/dev/null
leaf() { # name, CA prefix, subjectAltName
    openssl req -new $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$4" 2>/dev/null
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" \
        >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days $days \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
leaf leaf ca "DNS:localhost,IP:127.0.0.1" localhost
leaf wrong ca "DNS:wrong.example" wrong.example
leaf rogue rogue-ca "DNS:localhost,IP:127.0.0.1" localhost
