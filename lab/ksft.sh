#!/bin/bash
# ksft.sh SRC OUT: build tools/testing/selftests/x86 of kernel tree SRC,
# static, 64- and 32-bit, and put the binaries in OUT (flat).
set -euo pipefail
src=$(realpath "$1") out=$(realpath -m "$2")
work=$out.build
rm -rf "$out"
mkdir -p "$work/x86" "$out"
make -s -C "$src" O="$work/hdr" headers_install INSTALL_HDR_PATH="$work/usr" >/dev/null
make -s -C "$src/tools/testing/selftests/x86" OUTPUT="$work/x86" \
	KHDR_INCLUDES="-isystem $work/usr/include" EXTRA_CFLAGS=-static \
	CC="ccache gcc" -j"$(nproc)" > "$work/build.log" 2>&1 || {
	tail -30 "$work/build.log" >&2
	echo "ksft: build failed (log: $work/build.log)" >&2
	exit 1
}
find "$work/x86" -maxdepth 1 -type f -perm -u+x \( -name '*_32' -o -name '*_64' \) -exec cp {} "$out/" \;
echo "ksft: $(ls "$out" | wc -l) x86 selftest binaries in $out"
