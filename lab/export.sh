#!/bin/bash
# make export: write build/linux's commits on top of the base back into
# patches/ (format-patch files + series).  Output is stable: zero commit ids,
# no signature, author dates kept from the commits.  The cover letter
# (patches/0000-cover-letter.patch) is b4's, from lab/cover-letter.txt
# (lab/cover.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
out=$top/patches
[ "${1:-}" = --to ] && out=$2

[ -d "$tree/.git" ] || { echo "export: no tree at $tree (make tree)" >&2; exit 1; }
if [ -n "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
	echo "export: $tree has uncommitted changes; commit them first" >&2
	exit 1
fi
mkdir -p "$out"
find "$out" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-cover-letter.patch' -delete
git -C "$tree" format-patch -q --zero-commit --no-signature \
	--no-renames --abbrev=12 -o "$out" base..HEAD
( cd "$out" && ls [0-9][0-9][0-9][0-9]-*.patch 2>/dev/null | grep -v '^0000-cover-letter.patch$' ) > "$out/series" || true
# The cover letter: lab/cover-letter.txt plus what the tree says.
[ ! -f "$top/lab/cover-letter.txt" ] || "$top/lab/cover.sh" "$out" > /dev/null
echo "export: $(wc -l < "$out/series") patches in $out"
