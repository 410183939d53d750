#!/bin/bash
# widecheck.sh [SRC]: compile every object the series touches under
# lab/config/wide.config (FRED, KVM VMX/SVM, Xen PV, SEV, UV, kgdb, GHES,
# hpwdt, IPMI...), which the boot config leaves out.  Warnings fail.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src=$(realpath "${1:-$top/build/linux}")
out=$top/build/out-wide
export CCACHE_BASEDIR=$top/build
mk=(make -s -C "$src" O="$out" CC="ccache gcc" HOSTCC="ccache gcc" -j"$(nproc)")
mkdir -p "$out"
# Its row of lab/config/variants: arch and fragments.
read -r _ arch config _ < <(awk '!/^#/ && $1 == "widecheck" { print; exit }' \
	"$top/lab/config/variants")
frags=()
for f in ${config//,/ }; do frags+=("$top/lab/config/$f.config"); done
"$top/lab/kconfig.sh" "$src" "$out" "$arch" "${frags[@]}"
for c in X86_FRED KVM_INTEL KVM_AMD XEN_PV X86_UV AMD_MEM_ENCRYPT KGDB ACPI_APEI_GHES \
	 HPWDT_NMI_DECODING IPMI_WATCHDOG HYPERV X86_MCE_INJECT HARDLOCKUP_DETECTOR_HPET IRQ_REMAP; do
	grep -q "^CONFIG_$c=y" "$out/.config" || { echo "widecheck: CONFIG_$c did not stick" >&2; exit 1; }
done
# nmi_kunit.c is #included by nmi.c, not built on its own.
objs=$(git -C "$src" diff --name-only base..HEAD -- '*.c' '*.S' | grep -v '^tools/' |
	grep -v 'nmi_kunit\.c$' | sed 's/\.[cS]$/.o/')
objs="$objs arch/x86/kvm/vmx/vmenter.o arch/x86/kvm/vmx/vmx.o arch/x86/kvm/svm/svm.o
	arch/x86/entry/entry_64_fred.o arch/x86/entry/entry_fred.o arch/x86/xen/xen-asm.o
	arch/x86/xen/enlighten_pv.o arch/x86/coco/sev/core.o"
"${mk[@]}" prepare >/dev/null
log=$out/widecheck.log
"${mk[@]}" $objs > "$log" 2>&1 || { tail -20 "$log" >&2; echo "widecheck: build failed" >&2; exit 1; }
if grep -E 'warning:|error:' "$log" >&2; then
	echo "widecheck: warnings (log: $log)" >&2
	exit 1
fi
echo "widecheck: $(echo $objs | wc -w) objects built clean under wide.config"
