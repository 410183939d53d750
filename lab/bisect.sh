#!/bin/bash
# bisect.sh: build every commit of the series on its own (bisectability),
# incrementally in one build directory, with the test config.  Prints one
# line per patch and "BISECT patches=<n> bisect_fail=<n>".  A commit whose
# tree already built with the same config fragments, kbuild.sh and compiler
# is not built again (build/bisect-ok/).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
ok=$top/build/bisect-ok
mkdir -p "$ok"
inputs=$(cat "$top/lab/config/nmi-test.config" "$top/lab/config/series-only.config" \
	"$top/lab/config/variants" "$top/lab/kbuild.sh" \
	$(for f in ${KCONFIG_EXTRA:-}; do echo "$top/$f"; done) | sha256sum)
inputs="$inputs $(gcc --version | head -n1)"
# Newest first, in build/linux itself when it is the clean series branch:
# the first build then has the series' configuration and source paths, so
# ccache has every object from the series' own build, and each older commit
# recompiles only what differs from the one before (CCACHE_BASEDIR makes
# the paths relative; another worktree would share nothing).  Otherwise,
# oldest first in the worktree build/src-bisect.
commits=$(git -C "$tree" rev-list --reverse base..series)
total=$(echo "$commits" | wc -w)
inplace=
if [ "$(git -C "$tree" symbolic-ref -q HEAD)" = refs/heads/series ] &&
   [ -z "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
	inplace=1
	trap 'git -C "$tree" checkout -q series' EXIT
	commits=$(echo "$commits" | tac)
fi
fail=0
for c in $commits; do
	n=$(git -C "$tree" rev-list --count base.."$c")
	subj=$(git -C "$tree" log -1 --format=%s "$c")
	key=$(echo "$(git -C "$tree" rev-parse "$c^{tree}") $inputs" | sha256sum | cut -c1-16)
	if [ -e "$ok/$key" ]; then
		echo "PASS  bisect:$n $subj (built before)"
		continue
	fi
	if [ -n "$inplace" ]; then
		git -C "$tree" checkout -q --detach "$c" && "$top/lab/kbuild.sh" "$tree" bisect
	else
		"$top/lab/kbuild.sh" "$c" bisect
	fi > "$top/build/bisect-$n.log" 2>&1
	if [ $? = 0 ]; then
		touch "$ok/$key"
		echo "PASS  bisect:$n $subj"
	else
		echo "FAIL  bisect:$n $subj (build/bisect-$n.log)"
		fail=$((fail + 1))
	fi
done
n=$total
echo "BISECT patches=$n bisect_fail=$fail"
[ "$fail" = 0 ]
