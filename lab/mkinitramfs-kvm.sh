#!/bin/bash
# mkinitramfs-kvm.sh OUT KERNEL_OUT_DIR KVMSFT_DIR
# The lab's initramfs (lab/mkinitramfs.sh: busybox, init, plans, the torture
# module; no x86 selftests) with the KVM selftests (lab/kvmsft.sh) in
# /kvmsft, as a second cpio archive after the first: the kernel unpacks
# both.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1 kout=$2 kvmsft=$3
[ -d "$kvmsft" ] || { echo "mkinitramfs-kvm: no KVM selftests at $kvmsft" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root" "$out.base"' EXIT
"$top/lab/mkinitramfs.sh" "$out.base" "$kout" /nonexistent
mkdir -p "$root/kvmsft"
find "$kvmsft" -maxdepth 1 -type f -perm -u+x -exec cp {} "$root/kvmsft/" \;
{
	cat "$out.base"
	( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet ) | gzip -1
} > "$out.tmp"
mv "$out.tmp" "$out"
