#!/bin/bash
# mkinitramfs-i386.sh OUT KERNEL_OUT_DIR
# The i386 boot's initramfs: lab/initramfs/init32.c built static and 32-bit
# (the lab's busybox is 64-bit) as /init, and the torture module when the
# kernel built it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1 kout=$2
[ -d "$kout" ] || { echo "mkinitramfs-i386: no kernel build at $kout" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{dev,proc,sys,lib/modules}
gcc -m32 -static -O2 -Wall -Werror -o "$root/init" "$top/lab/initramfs/init32.c"
ko=$(find "$kout" -name nmi_torture.ko | head -n1)
[ -z "$ko" ] || cp "$ko" "$root/lib/modules/"
( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet ) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
