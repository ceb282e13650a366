# shellcheck shell=bash
# The local deployment's certificates, made with the openssl CLI: one CA
# per state directory, a certificate per NATS server (its address as an IP
# SAN; usable as server and as client, because routes and gateways dial
# other servers) and a client certificate per daemon role and region for
# mutual TLS. Everything is made once and kept in the state, so a second
# scripts/up reuses it; a certificate the CA does not verify (the CA was
# replaced) or that expires within a day is made again.

PKI_DAYS=${PKI_DAYS:-825}

# pki_ca DIR: DIR/ca.pem and DIR/ca.key.
pki_ca() {
    local dir=$1
    if [[ -s $dir/ca.pem && -s $dir/ca.key ]] && openssl x509 -in "$dir/ca.pem" -noout -checkend 86400 >/dev/null 2>&1; then
        return 0
    fi
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$PKI_DAYS" \
            -subj "/CN=Meridian local CA ($(hostname))" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" >>"$dir/openssl.log" 2>&1
    ) || mr_die "cannot make the local CA (see $dir/openssl.log)"
    chmod 644 "$dir/ca.pem"
}

# pki_cert DIR NAME USAGE [IP...]: DIR/NAME.pem and DIR/NAME.key signed by
# DIR's CA; USAGE is the extendedKeyUsage ("serverAuth,clientAuth" or
# "clientAuth"), each IP becomes an IP SAN.
pki_cert() {
    local dir=$1 name=$2 usage=$3
    shift 3
    local pem=$dir/$name.pem key=$dir/$name.key
    if [[ -s $pem && -s $key ]] &&
        openssl verify -CAfile "$dir/ca.pem" "$pem" >/dev/null 2>&1 &&
        openssl x509 -in "$pem" -noout -checkend 86400 >/dev/null 2>&1; then
        return 0
    fi
    local ext=$dir/$name.ext san="" ip
    for ip in "$@"; do san+="${san:+, }IP:$ip"; done
    {
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature, keyEncipherment"
        echo "extendedKeyUsage = $usage"
        [[ -n $san ]] && echo "subjectAltName = $san"
    } >"$ext"
    (
        umask 077
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$key" -out "$dir/$name.csr" -subj "/CN=meridian $name" >>"$dir/openssl.log" 2>&1 &&
            openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
                -CAcreateserial -CAserial "$dir/ca.srl" -out "$pem" -days "$PKI_DAYS" \
                -extfile "$ext" >>"$dir/openssl.log" 2>&1
    ) || mr_die "cannot make the certificate $name (see $dir/openssl.log)"
    rm -f "$dir/$name.csr"
}
