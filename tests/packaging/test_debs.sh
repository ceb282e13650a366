#!/usr/bin/env bash
# Build the .deb packages of a build tree with CPack (into a temporary
# directory, the build tree's binaries as they are), then:
#   - lintian reports no error and no warning on any of them;
#   - every package has /usr/share/doc/<package>/copyright (Apache-2.0, the
#     root LICENSE) and changelog.Debian.gz whose entry is the package's
#     version; every program in /usr/bin has a man page naming every
#     option its --help lists;
#   - meridian-common's postrm purge removes the secrets and the user, a
#     remove keeps them;
# and, like an install:
#   - each expected package exists, with its name, version, Depends (library
#     dependencies from dpkg-shlibdeps, meridian-common for daemons), conffiles
#     and maintainer scripts;
#   - all packages unpack into one scratch root, meridian-init-secrets (what
#     postinst runs) prepares its secrets;
#   - every binary in it answers --version; every daemon accepts its shipped
#     default config with --check (paths under /etc/meridian pointed into the
#     scratch root) and rejects a broken one;
#   - the shipped regions file passes `meridian-regions check`.
set -euo pipefail
build=${1:?usage: test_debs.sh BUILD_DIR CPACK COMPONENTS VERSION}
cpack=${2:?}
IFS=, read -r -a comps <<< "${3:?}"
version=${4:?}

for tool in "$cpack" dpkg-deb dpkg-shlibdeps lintian unshare; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/deps: cmake dpkg-dev lintian util-linux)"; exit 1; }
done
src=$(cd "$(dirname "$0")/../.." && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

if ! "$cpack" --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/pkgs" > "$tmp/cpack.log" 2>&1; then
    cat "$tmp/cpack.log"
    echo "FAIL: cpack"
    exit 1
fi

root=$tmp/root
mkdir -p "$root"
for c in "${comps[@]}"; do
    deb=$tmp/pkgs/meridian-${c}_${version}-1_amd64.deb
    if [ ! -f "$deb" ]; then
        bad "package meridian-$c was not built (have: $(cd "$tmp/pkgs" && echo ./*.deb))"
        continue
    fi
    ok
    [ "$(dpkg-deb -f "$deb" Package)" = "meridian-$c" ] && ok || bad "$deb: wrong Package"
    [ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ] && ok || bad "$deb: wrong Version"
    depends=$(dpkg-deb -f "$deb" Depends)
    contents=$(dpkg-deb -c "$deb")
    ctrl=$tmp/ctrl-$c
    dpkg-deb -e "$deb" "$ctrl"
    case $c in
    relay | control | healthcheck)
        [[ $depends == *"meridian-common (= $version-1)"* ]] && ok || bad "meridian-$c Depends lacks meridian-common: $depends"
        [[ $depends == *libc6* ]] && ok || bad "meridian-$c Depends lacks shared library dependencies: $depends"
        grep -qx "/etc/meridian/$c.json" "$ctrl/conffiles" && ok || bad "meridian-$c: /etc/meridian/$c.json is not a conffile"
        for s in postinst prerm postrm; do
            [ -x "$ctrl/$s" ] && ok || bad "meridian-$c has no executable $s"
        done
        # (no grep -q on a pipe: with pipefail an early exit is a failure)
        [[ $contents == *"./lib/systemd/system/meridian-$c.service"* ]] && ok || bad "meridian-$c ships no systemd unit"
        ;;
    common)
        [[ $depends == *adduser* ]] && ok || bad "meridian-common must depend on adduser: $depends"
        grep -qx /etc/meridian/regions.json "$ctrl/conffiles" && ok || bad "meridian-common: regions.json is not a conffile"
        grep -q 'adduser --system' "$ctrl/postinst" && ok || bad "meridian-common postinst does not create the user"
        ;;
    esac
    # Every package documents its licence and its history.
    [[ $contents == *"./usr/share/doc/meridian-$c/copyright"* ]] && ok || bad "meridian-$c has no copyright file"
    [[ $contents == *"./usr/share/doc/meridian-$c/changelog.Debian.gz"* ]] && ok || bad "meridian-$c has no changelog.Debian.gz"
    dpkg-deb -x "$deb" "$root"
done

# Licence: one, everywhere. The copyright file names Apache-2.0 for all
# files; the root LICENSE is that licence; the JS SDK says the same.
copyright=$root/usr/share/doc/meridian-common/copyright
if [ -f "$copyright" ]; then
    grep -q '^License: Apache-2.0$' "$copyright" && ok || bad "copyright does not name Apache-2.0"
    head -3 "$src/LICENSE" | grep -q 'Apache License' && ok || bad "the root LICENSE is not the Apache License"
    grep -q '"license": "Apache-2.0"' "$src/clients/js/package.json" && ok || bad "clients/js/package.json has another licence"
fi
# The changelog's latest entry is this version.
changelog=$root/usr/share/doc/meridian-common/changelog.Debian.gz
if [ -f "$changelog" ]; then
    first=$(zcat "$changelog" | head -1)
    [[ $first == "meridian ($version-1) "* ]] && ok || bad "changelog.Debian.gz starts with \"$first\", not version $version-1 (edit packaging/debian/changelog)"
fi

# lintian: no error and no warning (informational tags are allowed).
lint=$(lintian --tag-display-limit 0 "$tmp"/pkgs/*.deb 2>&1 | grep -E '^[EW]: ' || true)
if [ -z "$lint" ]; then ok; else bad "lintian:"; echo "$lint"; fi

# What meridian-common's postinst does to a fresh /etc/meridian.
if [ -x "$root/usr/lib/meridian/meridian-init-secrets" ]; then
    "$root/usr/lib/meridian/meridian-init-secrets" --root "$root" && ok || bad "meridian-init-secrets failed"
    [ -s "$root/etc/meridian/token.secret" ] && [ "$(stat -c %a "$root/etc/meridian/token.secret")" = 640 ] && ok ||
        bad "token.secret missing or not mode 0640"
    [ "$(wc -c < "$root/etc/meridian/relay_admin.key")" -ge 17 ] && [ "$(stat -c %a "$root/etc/meridian/relay_admin.key")" = 640 ] && ok ||
        bad "relay_admin.key missing, short or not mode 0640"
    grep -q '"admin_api_key_file": "/etc/meridian/relay_admin.key"' "$root/etc/meridian/relay.json" && ok ||
        bad "the packaged relay.json does not use relay_admin.key"
    grep -q '"listen": "0.0.0.0' "$root/etc/meridian/relay.json" && bad "the packaged relay listens on 0.0.0.0" || ok
    before=$(cat "$root/etc/meridian/token.secret" "$root/etc/meridian/api_keys" | md5sum)
    "$root/usr/lib/meridian/meridian-init-secrets" --root "$root"
    [ "$before" = "$(cat "$root/etc/meridian/token.secret" "$root/etc/meridian/api_keys" | md5sum)" ] && ok ||
        bad "meridian-init-secrets replaced existing secrets"
else
    bad "meridian-common lacks /usr/lib/meridian/meridian-init-secrets"
fi

# Known gaps, reported to the lead: these binaries do not implement the flag
# yet. A listed binary must still lack it (the test fails once the flag
# exists, so the entry is removed with the gap) and must at least run
# (--help). Daemons without --check must not call it from their unit.
no_version=" "
no_check=" "

bins=("$root"/usr/bin/*)
[ -e "${bins[0]}" ] || { bad "no binaries in the packages"; bins=(); }
for b in "${bins[@]}"; do
    name=$(basename "$b")
    if [[ $no_version == *" $name "* ]]; then
        if out=$("$b" --version 2>&1) && [[ $out == *"$version"* ]]; then
            bad "$name now answers --version: remove it from no_version in $0"
        else
            ok
        fi
        if out=$("$b" --help 2>&1) && [[ $out == *usage* ]]; then ok; else bad "$name --help: $out"; fi
        continue
    fi
    if out=$("$b" --version 2>&1) && [[ $out == *"$version"* ]]; then ok; else bad "$name --version: exit $?, output: $out"; fi
done

# Man pages: one per program, made from its --help; every option the
# program lists is in its page.
for b in "${bins[@]}"; do
    name=$(basename "$b")
    page=$root/usr/share/man/man1/$name.1.gz
    if [ ! -f "$page" ]; then
        bad "$name has no man page ($page)"
        continue
    fi
    text=$(zcat "$page" | sed 's/\\-/-/g')
    missing=""
    for opt in $("$b" --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
        [[ $text == *"$opt"* ]] || missing="$missing $opt"
    done
    [ -z "$missing" ] && ok || bad "$name's man page lacks$missing"
done

# meridian-common's purge, run in a private mount namespace whose /etc is a
# scratch tmpfs, with getent/deluser/delgroup stubbed: the host is untouched.
postrm=$tmp/ctrl-common/postrm
if [ -x "$postrm" ]; then
    stubs=$tmp/stubs
    mkdir -p "$stubs"
    printf '#!/bin/sh\nexit 0\n' > "$stubs/getent"
    # shellcheck disable=SC2016 # the stub expands these when it runs, not here
    printf '#!/bin/sh\necho "$(basename "$0") $*" >> %s/calls\n' "$tmp" > "$stubs/deluser"
    cp "$stubs/deluser" "$stubs/delgroup"
    chmod +x "$stubs"/*
    # shellcheck disable=SC2016 # the inner shell expands its own variables
    purge_out=$(unshare --mount --propagation private sh -c '
        set -e
        mount -t tmpfs tmpfs /etc
        mkdir -p /etc/meridian/nats
        touch /etc/meridian/token.secret /etc/meridian/relay_admin.key /etc/meridian/api_keys /etc/meridian/nats/relay-x.nk
        PATH="$1:$PATH" "$2" remove
        [ -e /etc/meridian/token.secret ] || { echo "remove deleted the secrets"; exit 1; }
        PATH="$1:$PATH" "$2" purge
        [ ! -e /etc/meridian ] || { echo "purge left: $(find /etc/meridian)"; exit 1; }
        # Files an operator added are kept and named.
        mkdir -p /etc/meridian && touch /etc/meridian/token.secret /etc/meridian/mine.json
        PATH="$1:$PATH" "$2" purge 2>&1
        [ -e /etc/meridian/mine.json ] && [ ! -e /etc/meridian/token.secret ] || { echo "purge removed an operator file or kept a secret"; exit 1; }
    ' sh "$stubs" "$postrm" 2>&1) && ok || bad "meridian-common postrm: $purge_out"
    [[ $purge_out == *"still holds: mine.json"* ]] && ok || bad "postrm purge does not name what it left: $purge_out"
    grep -q '^deluser --system --quiet meridian$' "$tmp/calls" 2>/dev/null && ok || bad "purge does not remove the meridian user"
    grep -q '^delgroup --system --quiet --only-if-empty meridian$' "$tmp/calls" 2>/dev/null && ok || bad "purge does not remove the meridian group"
else
    bad "meridian-common has no postrm"
fi

# A config copied out of the root with /etc/meridian pointing into the root.
rooted() { sed "s#/etc/meridian/#$root/etc/meridian/#g" "$1" > "$2"; }
for c in relay control healthcheck; do
    bin=$root/usr/bin/meridian-$c
    [ -x "$bin" ] || continue
    cfg=$root/etc/meridian/$c.json
    if [ ! -f "$cfg" ]; then bad "meridian-$c ships no /etc/meridian/$c.json"; continue; fi
    rooted "$cfg" "$tmp/$c.json"
    if [[ $no_check == *" meridian-$c "* ]]; then
        if "$bin" --check --config "$tmp/$c.json" > /dev/null 2>&1; then
            bad "meridian-$c now accepts --check: remove it from no_check in $0 and add ExecStartPre to its unit"
        else
            ok
        fi
        grep -q '^Exec.*--check' "$root/lib/systemd/system/meridian-$c.service" &&
            bad "meridian-$c.service runs --check, which meridian-$c lacks" || ok
        continue
    fi
    if out=$("$bin" --check --config "$tmp/$c.json" 2>&1); then ok; else bad "meridian-$c --check rejects its default config: $out"; fi
    # A config the daemon must refuse: an unknown key.
    sed '0,/{/s//{"no_such_key": 1,/' "$tmp/$c.json" > "$tmp/$c-bad.json"
    if "$bin" --check --config "$tmp/$c-bad.json" > "$tmp/out" 2>&1; then
        bad "meridian-$c --check accepts an unknown key"
    else
        grep -q no_such_key "$tmp/out" && ok || bad "meridian-$c --check does not name the bad key: $(cat "$tmp/out")"
    fi
done

# Every unit starts a binary and reads a config that the packages ship.
for unit in "$root"/lib/systemd/system/meridian-*.service; do
    [ -e "$unit" ] || continue
    # shellcheck disable=SC2013 # words, not lines: each line gives a binary and a config
    for path in $(sed -n 's/^ExecStart\(Pre\)\?=\([^ ]*\).*--config \([^ ]*\).*/\2 \3/p' "$unit"); do
        [ -e "$root$path" ] && ok || bad "$(basename "$unit") refers to $path, which no package ships"
    done
done

if [ -x "$root/usr/bin/meridian-regions" ]; then
    if out=$("$root/usr/bin/meridian-regions" check "$root/etc/meridian/regions.json" 2>&1); then ok; else bad "meridian-regions check of the shipped regions.json: $out"; fi
fi

echo "packaging debs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
