#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy, warnings as errors) on the C++ files this branch
# changed: against the merge base with origin/main, or HEAD~1 when there is no such remote or
# HEAD is on it.
# Headers are checked through the .cpp files that include them (HeaderFilterRegex).
#   scripts/clang-tidy-changed.sh [BASE]   (BASE: a commit to diff against instead)
# Uses build/asan's compile_commands.json, else build/release's (configure one first).
set -euo pipefail
cd "$(dirname "$0")/.."
tidy=${CLANG_TIDY:-$(command -v clang-tidy || command -v clang-tidy-14 || true)}
[ -n "$tidy" ] || { echo "clang-tidy-changed: clang-tidy not found (scripts/install-deps.sh)" >&2; exit 1; }
db=""
for d in build/asan build/release; do
  if [ -f "$d/compile_commands.json" ]; then db=$d; break; fi
done
[ -n "$db" ] || { echo "clang-tidy-changed: no compile_commands.json in build/asan or build/release" >&2; exit 1; }

if [ $# -ge 1 ]; then
  base=$1
elif git rev-parse -q --verify origin/main >/dev/null &&
  [ "$(git merge-base HEAD origin/main)" != "$(git rev-parse HEAD)" ]; then
  base=$(git merge-base HEAD origin/main)
else  # no remote, or HEAD is on origin/main (CI on main): the last commit's files
  base=$(git rev-parse -q --verify HEAD~1 || true)
fi
[ -n "$base" ] || { echo "clang-tidy-changed: no base commit (a single-commit history)"; exit 0; }

# Changed, still present .cpp files that the compile database knows (generated or excluded
# files, e.g. the Hub's with OHM_HUB=OFF, are skipped), plus the .cpp beside a changed header.
mapfile -t changed < <(git diff --name-only --diff-filter=d "$base" -- '*.cpp' '*.h' '*.hpp')
files=()
for f in "${changed[@]}"; do
  case $f in
    *.cpp) files+=("$f") ;;
    *.h | *.hpp)
      for c in "${f%.*}.cpp" "src/${f#include/ohm/}"; do
        c=${c%.*}.cpp
        [ -f "$c" ] && files+=("$c")
      done ;;
  esac
done
mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u | while read -r f; do
  [ -n "$f" ] && grep -qF "\"$PWD/$f\"" "$db/compile_commands.json" && echo "$f"
done)
if [ ${#files[@]} -eq 0 ]; then
  echo "clang-tidy-changed: no compiled C++ file changed since ${base:0:12}"
  exit 0
fi
echo "clang-tidy-changed: ${#files[@]} file(s) changed since ${base:0:12} ($db)"
jobs=${OHM_TIDY_JOBS:-$(nproc)}
status=0
# (clang-tidy counts the suppressed warnings of system headers on stderr: dropped.)
printf '%s\n' "${files[@]}" |
  xargs -P "$jobs" -n 4 "$tidy" -p "$db" --quiet --warnings-as-errors='*' 2>&1 |
  { grep -v -E '^[0-9]+ warnings? generated\.$' || true; } || status=$?
if [ "$status" -ne 0 ]; then
  echo "clang-tidy-changed: findings above (checks and reasons in .clang-tidy)" >&2
else
  echo "clang-tidy-changed: clean"
fi
exit "$status"
