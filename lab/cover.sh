#!/bin/bash
# cover.sh: write patches/0000-cover-letter.patch from lab/cover-letter.txt
# (subject on the first line, then the body) and the tree: shortlog,
# diffstat, Cc lines from scripts/get_maintainer.pl, base-commit.  Stable
# output: a fixed date, no commit ids but the base's.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
src=$top/lab/cover-letter.txt
out=${1:-$top/patches}/0000-cover-letter.patch
n=$(git -C "$tree" rev-list --count base..HEAD)
name=$(git -C "$tree" config user.name)
mail=$(git -C "$tree" config user.email)
cc=$(cd "$tree" && perl scripts/get_maintainer.pl --no-rolestats --no-git --no-git-fallback \
	--no-tree $(git -C "$tree" format-patch --stdout base..HEAD > /tmp/cover-all.patch; echo /tmp/cover-all.patch) 2>/dev/null |
	grep -v -F "$mail" | sort -u || true)
{
	echo "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001"
	echo "From: $name <$mail>"
	echo "Date: Sat, 21 Nov 2026 00:00:00 +0000"
	printf 'Subject: [PATCH 00/%02d] %s\n' "$n" "$(head -n1 "$src")"
	while IFS= read -r c; do [ -n "$c" ] && echo "Cc: $c"; done <<< "$cc"
	echo "MIME-Version: 1.0"
	echo "Content-Type: text/plain; charset=UTF-8"
	echo "Content-Transfer-Encoding: 8bit"
	echo
	tail -n +3 "$src"
	echo
	git -C "$tree" shortlog base..HEAD | sed 's/^\([^ ]\)/\1/'
	git -C "$tree" diff --stat=72 base..HEAD | sed 's/^/ /'
	echo
	echo "base-commit: $(git -C "$tree" rev-parse base)"
} > "$out"
rm -f /tmp/cover-all.patch
echo "cover: $out"
