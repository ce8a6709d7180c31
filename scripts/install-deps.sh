#!/usr/bin/env bash
# Installs what building and testing ohm needs on a fresh Debian 12 machine (run as root, or
# with sudo available). Idempotent: packages already present are left alone.
set -euo pipefail
pkgs=(
  cmake ninja-build g++ clang libclang-rt-14-dev   # toolchain (clang for the libFuzzer targets)
  lld                                              # links the ~50 ASan test executables ~4x faster than ld.bfd
  nlohmann-json3-dev libcli11-dev                  # JSON, command line
  libonig-dev libutf8proc-dev                      # tokenizers: regex (as HF tokenizers), Unicode normalization
  zlib1g-dev liblzma-dev pkg-config                # tokenizers: .gz/.xz tokenizer.json
  libgtest-dev libgmock-dev libbenchmark-dev       # tests, micro-benchmarks
  libcpp-httplib-dev libsqlite3-dev libssl-dev libyaml-dev  # hub: HTTP server, metadata, sha256, model cards
  libcmark-gfm-dev libcmark-gfm-extensions-dev     # hub: web UI (model cards: CommonMark + GFM tables)
  libsodium-dev                                    # safety: encrypted upload (X25519 sealed boxes, XChaCha20-Poly1305)
  libedit-dev                                      # cli: line editing and history in `ohm chat`
  libbz2-dev                                       # eval: HellaSwag data as published (.txt.bz2); task YAML uses libyaml
  libcairo2-dev                                    # eval: PNG bar charts (ohm quantize --report)
  clang-tidy                                       # lint: scripts/clang-tidy-changed.sh
  g++-aarch64-linux-gnu qemu-user googletest       # aarch64 cross build + tests (scripts/cross-aarch64.sh)
  python3 python3-venv                             # hub: official-client test (scripts/hub-client-venv.sh)
  chromium                                         # hub: web UI test (tests/hub/test_hub_webui.py)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
