#!/bin/bash
# sancheck.sh [SRC]: the series' noinstr code under KASAN and under KCSAN,
# object by object.  For each of the kasan and kcsan rows of
# lab/config/variants (into build/out-san-NAME): configure, build every
# object the series touches whose source has noinstr code, plus the
# entry code, and run objtool's noinstr check on it.  A call that leaves
# .noinstr.text for a sanitizer's runtime (__asan_*, __kasan_*, __tsan_*,
# __kcsan_*, kcsan_*, __msan_*, __sanitizer_*) fails: an instrumented
# helper (test_bit(), atomic_read(), cpumask_test_cpu() ...) used in noinstr
# code outside instrumentation_begin()/instrumentation_end().  A call into
# another object cannot be judged on one object (objtool sees no section
# for it); make sanitizers checks the linked vmlinux.o of both kernels.
# arch/x86/kernel (nmi.o) and arch/x86/entry are built without KCSAN
# (their Makefiles), so there the KCSAN pass has nothing to find; each pass
# says how many of its objects the sanitizer instrumented.
# Cheap enough for make check: no kernel is linked.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src=$(realpath "${1:-$top/build/linux}")
export CCACHE_BASEDIR=$top/build
sanitizer='__asan_|__kasan_|__tsan_|__kcsan_|kcsan_|__msan_|__sanitizer_'
objs=arch/x86/entry/entry_64.o
for f in $(git -C "$src" diff --name-only base..HEAD -- '*.c' | grep -v '^tools/'); do
	[ -f "$src/$f" ] && grep -qE 'noinstr|instrumentation_begin|DEFINE_IDTENTRY' "$src/$f" && objs="$objs ${f%.c}.o"
done
fail=0
for v in kasan kcsan; do
	out=$top/build/out-san-$v
	read -r _ arch config _ < <(awk -v n="$v" '!/^#/ && $1 == n { print; exit }' \
		"$top/lab/config/variants")
	frags=()
	for f in ${config//,/ }; do frags+=("$top/lab/config/$f.config"); done
	"$top/lab/kconfig.sh" "$src" "$out" "$arch" "${frags[@]}"
	opt=CONFIG_${v^^}
	grep -q "^$opt=y" "$out/.config" || { echo "sancheck: $opt did not stick" >&2; exit 1; }
	mk=(make -s -C "$src" O="$out" ARCH="$arch" CC="ccache gcc" HOSTCC="ccache gcc"
	    -j"$(nproc)")
	log=$out/sancheck.log
	"${mk[@]}" prepare > "$log" 2>&1 && "${mk[@]}" $objs >> "$log" 2>&1 ||
		{ tail -20 "$log" >&2; echo "sancheck: $v: build failed" >&2; exit 1; }
	bad=0
	inst=0
	for o in $objs; do
		n=$(nm -u "$out/$o" | grep -cE " ($sanitizer)" || true)
		[ "$n" -gt 0 ] && inst=$((inst + 1))
		w=$("$out/tools/objtool/objtool" --noinstr --link "$out/$o" 2>&1 || true)
		if grep -E "call to ($sanitizer)[A-Za-z0-9_.]*\(\) leaves \.noinstr\.text" \
			<<< "$w" >&2; then
			bad=$((bad + 1))
		fi
	done
	if [ "$inst" -eq 0 ]; then
		# The pass would check nothing: the configuration lost the sanitizer.
		echo "sancheck: $v: no object instrumented, nothing checked" >&2
		fail=1
	elif [ "$bad" -gt 0 ]; then
		echo "sancheck: $v: sanitizer calls in noinstr code in $bad object(s)" >&2
		fail=1
	else
		echo "sancheck: $v: $(echo $objs | wc -w) objects ($objs), $inst instrumented, no sanitizer call in noinstr code"
	fi
done
exit $fail
