#!/bin/bash
# kconfig.sh SRC OUT ARCH FRAGMENT...: the one way the lab configures a
# kernel (kbuild.sh, widecheck.sh, series_check.py): tinyconfig, then the
# fragments merged on top (a later one overrides an earlier one, as in
# merge_config.sh), then olddefconfig.  What must have stuck is the
# caller's to check.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: kconfig.sh SRC OUT ARCH FRAGMENT..." >&2; exit 2; }
src=$1 out=$2 arch=$3
shift 3
mk=(make -s -C "$src" O="$out" ARCH="$arch" CC="ccache gcc" HOSTCC="ccache gcc"
    -j"$(nproc)")
mkdir -p "$out"
"${mk[@]}" tinyconfig >/dev/null
KCONFIG_CONFIG=$out/.config ARCH=$arch "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
	"$out/.config" "$@" >/dev/null
"${mk[@]}" olddefconfig >/dev/null
