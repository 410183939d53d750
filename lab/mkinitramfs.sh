#!/bin/bash
# mkinitramfs.sh OUT KERNEL_OUT_DIR KSFT_DIR [KVMSFT_DIR]
# busybox-static, the lab's init and plans, the x86 selftest binaries (in
# /ksft), the KVM selftests when KVMSFT_DIR is given (in /kvmsft,
# lab/kvmsft.sh) and the torture, test_lockup and KVM modules (when the kernel
# built them) in one gzip'ed cpio.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$1 kout=$2 ksft=$3 kvmsft=${4:-}
[ -d "$kout" ] || { echo "mkinitramfs: no kernel build at $kout" >&2; exit 1; }
[ -z "$kvmsft" ] || [ -d "$kvmsft" ] ||
	{ echo "mkinitramfs: no KVM selftests at $kvmsft" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,plans,ksft,lib/modules}
cp /usr/bin/busybox "$root/bin/busybox"
for a in $(/usr/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
install -m 755 "$top/lab/initramfs/init" "$root/init"
cp "$top"/lab/initramfs/plans/*.sh "$root/plans/"
for d in ksft kvmsft; do
	[ -n "${!d}" ] && [ -d "${!d}" ] || continue
	mkdir -p "$root/$d"
	find "${!d}" -maxdepth 1 -type f -perm -u+x -exec cp {} "$root/$d/" \;
done
for m in nmi_torture test_lockup irqbypass kvm kvm-amd kvm-intel; do
	ko=$(find "$kout" -name $m.ko | head -n1)
	[ -z "$ko" ] || cp "$ko" "$root/lib/modules/"
done
( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet ) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
