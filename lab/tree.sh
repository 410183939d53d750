#!/bin/bash
# make tree: build/linux = pinned base (one commit) + patches/series (git am,
# one commit per patch).  An existing tree is reused when it is clean and holds
# nothing that is not already in patches/; otherwise it refuses (FORCE=1 wipes).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/lab/lab.conf"
tree=$top/build/linux
git_() { git -C "$tree" -c user.name=lab -c user.email=lab@localhost "$@"; }

base_commit() { git -C "$tree" rev-list --max-parents=0 HEAD 2>/dev/null | tail -n1; }

if [ -d "$tree/.git" ] && [ "${FORCE:-0}" != 1 ]; then
	if [ -n "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
		echo "tree: $tree has uncommitted changes; commit and 'make export', or FORCE=1" >&2
		exit 1
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	"$top/lab/export.sh" --to "$tmp" >/dev/null
	if ! diff -q -r -x 0000-cover-letter.patch "$tmp" "$top/patches" >/dev/null; then
		echo "tree: $tree holds commits that differ from patches/; 'make export' first, or FORCE=1" >&2
		exit 1
	fi
else
	rm -rf "$tree"
	mkdir -p "$tree"
	tarball=$BASE_TARBALL
	sum=$(sha256sum "$tarball" | cut -d' ' -f1)
	if [ "$sum" != "$BASE_TARBALL_SHA256" ]; then
		echo "tree: ************************************************************" >&2
		echo "tree: WARNING: $tarball is not the pinned base" >&2
		echo "tree: WARNING: (sha256 $sum)" >&2
		echo "tree: WARNING: continuing with $(dpkg-query -W -f='${Version}' "$BASE_PKG")" >&2
		echo "tree: ************************************************************" >&2
	fi
	echo "tree: unpacking $tarball"
	tar -C "$tree" --strip-components=1 -xJf "$tarball"
	# Debian's tarball appends "ignore everything at the top level" to
	# .gitignore for its packaging repository; upstream has no such rule,
	# and with it git would not see new files of the series.
	python3 - "$tree/.gitignore" <<-'PY'
	import sys
	p = sys.argv[1]
	s = open(p).read()
	i = s.find('#\n# Debian packaging')
	if i >= 0:
	    open(p, 'w').write(s[:i])
	PY
	git_ init -q -b series
	# Fixed identity and dates: the base commit id is the same on every machine.
	export GIT_AUTHOR_DATE='2025-01-01T00:00:00Z' GIT_COMMITTER_DATE='2025-01-01T00:00:00Z'
	git_ add -A -f .
	git_ commit -q -m "$BASE_NAME"
	unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
	git_ tag -f base >/dev/null
fi

git_ checkout -q -B series base
git_ reset -q --hard base
n=0
[ "$INSTRUMENT_PATCHES" -gt 0 ] || git_ tag -f instrument >/dev/null
while read -r p; do
	case "$p" in ''|'#'*) continue ;; esac
	if ! git_ am -q --keep-cr "$top/patches/$p"; then
		git_ am --abort || true
		echo "tree: patches/$p does not apply to the base" >&2
		exit 1
	fi
	n=$((n + 1))
	[ "$n" != "$INSTRUMENT_PATCHES" ] || git_ tag -f instrument >/dev/null
done < "$top/patches/series"
[ "$n" -ge "$INSTRUMENT_PATCHES" ] || git_ tag -f instrument >/dev/null
echo "tree: $tree = base + $n patches (branch 'series'; tags 'base', 'instrument')"
