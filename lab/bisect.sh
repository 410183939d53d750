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
	"$top/lab/kbuild.sh" \
	$(for f in ${KCONFIG_EXTRA:-}; do echo "$top/$f"; done) | sha256sum)
inputs="$inputs $(gcc --version | head -n1)"
n=0 fail=0
for c in $(git -C "$tree" rev-list --reverse base..series); do
	n=$((n + 1))
	subj=$(git -C "$tree" log -1 --format=%s "$c")
	key=$(echo "$(git -C "$tree" rev-parse "$c^{tree}") $inputs" | sha256sum | cut -c1-16)
	if [ -e "$ok/$key" ]; then
		echo "PASS  bisect:$n $subj (built before)"
	elif "$top/lab/kbuild.sh" "$c" bisect > "$top/build/bisect-$n.log" 2>&1; then
		touch "$ok/$key"
		echo "PASS  bisect:$n $subj"
	else
		echo "FAIL  bisect:$n $subj (build/bisect-$n.log)"
		fail=$((fail + 1))
	fi
done
echo "BISECT patches=$n bisect_fail=$fail"
[ "$fail" = 0 ]
