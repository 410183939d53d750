#!/bin/bash
# bisect.sh: build every commit of the series on its own (bisectability),
# incrementally in one build directory, with the test config.  Prints one
# line per patch and "BISECT patches=<n> bisect_fail=<n>".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$top/build/linux
n=0 fail=0
for c in $(git -C "$tree" rev-list --reverse base..series); do
	n=$((n + 1))
	subj=$(git -C "$tree" log -1 --format=%s "$c")
	if "$top/lab/kbuild.sh" "$c" bisect > "$top/build/bisect-$n.log" 2>&1; then
		echo "PASS  bisect:$n $subj"
	else
		echo "FAIL  bisect:$n $subj (build/bisect-$n.log)"
		fail=$((fail + 1))
	fi
done
echo "BISECT patches=$n bisect_fail=$fail"
[ "$fail" = 0 ]
