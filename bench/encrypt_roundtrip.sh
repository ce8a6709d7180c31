#!/usr/bin/env bash
# Encrypted-upload benchmark (docs/encryption.md, "Measured"): a random file of SIZE bytes
# (default 1 GiB) through `ohm encrypt` / `ohm decrypt`, then through a local `ohm hub serve` with
# `ohm push --encrypt` / `ohm pull --decrypt`; each step under /usr/bin/time -v (wall, CPU, peak
# RSS), and the decrypted bytes compared with the original (cmp).
#
# Usage: bench/encrypt_roundtrip.sh OHM_BINARY [SIZE] [DIR]
# Works in a new directory under DIR (default: TMPDIR), removed at the end; it needs about
# 6 x SIZE of free disk.
set -euo pipefail
ohm=$(realpath "$1")
size=${2:-1073741824}
work=$(mktemp -d "${3:-${TMPDIR:-/tmp}}/ohm-enc-bench-XXXXXX")
cd "$work"
echo "ohm $($ohm --version), size $size bytes, in $work"

step() {  # step NAME CMD...: runs CMD under /usr/bin/time -v and prints the figures
  local name=$1
  shift
  /usr/bin/time -v "$@" >"$name.out" 2>"$name.time" || {
    cat "$name.time"
    exit 1
  }
  awk -v n="$name" -F': ' '
    /Elapsed/ {wall=$2} /User time/ {user=$2} /System time/ {sys=$2}
    /Maximum resident/ {rss=$2}
    END {printf "%-14s wall %s  user %ss  sys %ss  peak RSS %.1f MB\n", n, wall, user, sys, rss/1024}
  ' "$name.time"
}

head -c "$size" /dev/urandom >plain.bin
"$ohm" keygen --out me.key >me.pub 2>/dev/null

step encrypt "$ohm" encrypt plain.bin plain.bin.ohmenc -R me.key
step decrypt "$ohm" decrypt plain.bin.ohmenc decrypted.bin -i me.key
cmp plain.bin decrypted.bin && echo "encrypt/decrypt: bit-identical ($(stat -c %s plain.bin.ohmenc) encrypted bytes)"
rm -f plain.bin.ohmenc decrypted.bin

# Through the Hub: push --encrypt (encrypt to TMPDIR + sha256 + upload), pull --decrypt.
"$ohm" hub user add alice --data hub >/dev/null
token=$("$ohm" hub token create --data hub --user alice --scope write)
"$ohm" hub serve --data hub --port 0 >server.port 2>server.log &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s server.port ] && break; sleep 0.1; done
endpoint=http://127.0.0.1:$(head -1 server.port | sed 's/.*://')
mkdir upload
mv plain.bin upload/
export HF_TOKEN=$token HF_ENDPOINT=$endpoint
step push "$ohm" push upload alice/enc-bench --encrypt -R me.key -q
step pull "$ohm" pull alice/enc-bench --decrypt -i me.key --cache-dir cache -q
snap=$(cat pull.out)
cmp upload/plain.bin "$snap/plain.bin" && echo "push --encrypt / pull --decrypt: bit-identical"
kill $server
wait $server 2>/dev/null || true
trap - EXIT
rm -rf "$work"
