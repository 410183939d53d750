#!/bin/bash
# Build one kernel variant.
#   kbuild.sh series      build/linux working tree      -> build/out-series
#   kbuild.sh instrument  base + instrument patches     -> build/out-instrument
#                         (built in build/out-bisect, see below)
#   kbuild.sh REF NAME    any commit of build/linux       -> build/out-NAME
#   kbuild.sh DIR NAME    the working tree DIR (a worktree) -> build/out-NAME
# NAME's row of lab/config/variants gives its ARCH (the environment's ARCH
# wins) and config fragments; a NAME not there builds as "series".  More
# fragments for a one-off build: KCONFIG_EXTRA="file ..." (paths relative
# to the repo).
# Prints the build log to build/out-NAME/build.log; fails on objtool warnings
# and on fragment options that did not make it into .config.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:?usage: kbuild.sh series|instrument|REF NAME}
name=${2:-$variant}
tree=$top/build/linux
label=$name
variants=$top/lab/config/variants
row=$(awk -v n="$label" '!/^#/ && $1 == n { print; exit }' "$variants")
[ -n "$row" ] || row=$(awk '!/^#/ && $1 == "series" { print; exit }' "$variants")
read -r _ row_arch row_config _ <<< "$row"
arch=${ARCH:-$row_arch}
# The base ("instrument") is one of the commits the bisect builds, with
# the same fragments: it is built where the bisect builds (build/linux
# itself, checked out at that commit, when it is the clean series branch;
# else the worktree build/src-bisect) into the bisect's output directory,
# where only what differs from the last commit built there is compiled (a
# separate directory shares nothing with the series in ccache: the series'
# own Kconfig options change autoconf.h, which every object includes), and
# bzImage, vmlinux and the modules are copied to build/out-instrument --
# also when the bisect itself builds that commit (lab/bisect.sh).
[ "$variant" = instrument ] && [ "$name" = instrument ] && [ "$arch" = x86_64 ] && name=bisect
out=$top/build/out-$name
snap=
rev=
if [ "$name" = bisect ] && [ "$variant" = instrument ] &&
   [ "$(git -C "$tree" symbolic-ref -q HEAD)" = refs/heads/series ] &&
   [ -z "$(git -C "$tree" status --porcelain --untracked-files=no)" ]; then
	git -C "$tree" checkout -q --detach instrument
	trap 'git -C "$tree" checkout -q series' EXIT
	variant=$tree
fi

if [ "$variant" = series ]; then
	src=$tree
elif [ -d "$variant" ]; then
	src=$(realpath "$variant")
	rev=$(git -C "$src" rev-parse HEAD)
else
	src=$top/build/src-$name
	rev=$(git -C "$tree" rev-parse "$variant^{commit}")
	git -C "$tree" worktree prune
	if [ ! -d "$src" ]; then
		git -C "$tree" worktree add -q --detach "$src" "$rev"
	else
		git -C "$src" checkout -q --detach "$rev"
		git -C "$src" reset -q --hard "$rev"
	fi
fi
# The bisect's build of the instrument commit is the base kernel.
if [ "$name" = bisect ] && [ "$arch" = x86_64 ] &&
   [ "$rev" = "$(git -C "$tree" rev-parse -q --verify 'instrument^{commit}' || true)" ]; then
	snap=$top/build/out-instrument
fi

export CCACHE_BASEDIR=$top/build CCACHE_NOHASHDIR=1 CCACHE_SLOPPINESS=time_macros
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2025'
export KBUILD_BUILD_USER=lab KBUILD_BUILD_HOST=lab KBUILD_BUILD_VERSION=1
command -v ccache >/dev/null && ccache -M 8G >/dev/null
mkv=(make -C "$src" O="$out" ARCH="$arch" CC="ccache gcc" HOSTCC="ccache gcc" -j"$(nproc)")
mk=("${mkv[@]}" -s)

mkdir -p "$out"
# One build per output directory at a time: another kbuild.sh of the same
# directory (say the base built for a check while a bisect runs in
# out-bisect) waits here instead of compiling into it at the same time.
exec 9> "$out/.kbuild.lock"
if ! flock -n 9; then
	echo "kbuild: $label: $out is being built by another kbuild.sh; waiting" >&2
	flock 9
fi
# Options that only the series defines (lab/config/series-only.config): each
# one that the tree being built defines, right after nmi-test.config, so the
# base and every patch of the series build with the same fragments.
only=$out/series-only.config
: > "$only"
while IFS= read -r line; do
	sym=${line%%=*}
	grep -rqx --include='Kconfig*' "config ${sym#CONFIG_}" "$src/lib" "$src/arch/x86" \
		"$src/kernel" && echo "$line" >> "$only"
done < <(grep '^CONFIG_' "$top/lab/config/series-only.config")
frags=()
for f in ${row_config//,/ }; do
	if [ "$f" = series-only ]; then
		frags+=("$only")
	else
		frags+=("$top/lab/config/$f.config")
	fi
done
for f in ${KCONFIG_EXTRA:-}; do frags+=("$top/$f"); done

# Reconfigure only when a fragment changed, so incremental builds stay quick.
want=$(cat "${frags[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$out/.config" ] || [ "$(cat "$out/.frag-sum" 2>/dev/null)" != "$want" ]; then
	"$top/lab/kconfig.sh" "$src" "$out" "$arch" "${frags[@]}"
	echo "$want" > "$out/.frag-sum"
	# Every symbol's effective wish (a later fragment overrides an earlier
	# one, as in merge_config.sh) must be in .config.  The series-only
	# options need not, but in the series itself: a patch may define an
	# option that a later patch makes selectable (HARDLOCKUP_DETECTOR_HPET).
	check=("${frags[@]}")
	# A worktree at the series' head (the i386 build beside the bisect,
	# lab/check.py) is the series too.
	[ "$variant" = series ] ||
		[ "$rev" = "$(git -C "$tree" rev-parse -q --verify 'series^{commit}' || true)" ] ||
		check=("${frags[@]/$only/\/dev\/null}")
	bad=0
	while IFS= read -r line; do
		case "$line" in
		*=n) grep -q "^${line%%=*}=" "$out/.config" && { echo "kbuild: $line did not stick" >&2; bad=1; } ;;
		*) grep -qx -- "$line" "$out/.config" || { echo "kbuild: $line did not stick" >&2; bad=1; } ;;
		esac
	done < <(grep -h '^CONFIG_' "${check[@]}" | tac | awk -F= '!seen[$1]++')
	[ $bad = 0 ] || { rm -f "$out/.frag-sum"; exit 1; }
fi

start=$(date +%s)
# Progress for whoever waits: objects compiled so far, once a minute.
ticker=
if [ -z "${KBUILD_QUIET:-}" ]; then
	# Without the lock's descriptor: the ticker must not hold the lock.
	while sleep 60; do
		echo "kbuild: $label: $(grep -c '^  CC' "$out/build.log" 2>/dev/null) objects" \
			"compiled in $(( $(date +%s) - start )) s" >&2
	done 9>&- &
	ticker=$!
fi
set +e
"${mkv[@]}" bzImage modules > "$out/build.log" 2>&1
rc=$?
set -e
[ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true
end=$(date +%s)
echo "$((end - start))" > "$out/build-seconds"
# make check's timing table (lab/timing.py).
echo "kernel:$label $((end - start))" >> "$top/build/timings.txt"
if [ $rc != 0 ]; then
	grep -E 'error|Error|ERROR' "$out/build.log" | head -20 >&2
	echo "kbuild: $label failed (log: $out/build.log)" >&2
	exit 1
fi
if grep -n 'objtool:\|vmlinux.o: warning' "$out/build.log" >&2; then
	echo "kbuild: $label: objtool warnings (log: $out/build.log)" >&2
	exit 1
fi
if [ -n "$snap" ]; then
	rm -rf "$snap.tmp"
	mkdir -p "$snap.tmp/arch/x86/boot"
	cp "$out/arch/x86/boot/bzImage" "$snap.tmp/arch/x86/boot/"
	cp "$out/vmlinux" "$out/System.map" "$out/.config" "$out/build.log" \
		"$out/build-seconds" "$snap.tmp/"
	(cd "$out" && find . -name '*.ko' -exec cp --parents {} "$snap.tmp" \;)
	rm -rf "$snap"
	mv "$snap.tmp" "$snap"
	echo "kbuild: $label: the bisect's build of the base copied to $snap"
fi
echo "kbuild: $label built in $((end - start)) s -> ${snap:-$out}/arch/x86/boot/bzImage"
