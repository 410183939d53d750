#!/bin/bash
# kvmsft.sh SRC OUT [TEST ...]: build KVM selftests (tools/testing/selftests/kvm,
# x86_64) of kernel tree SRC, static, and put the binaries in OUT (flat: the
# x86_64/ prefix is dropped).  TEST: a name without the x86_64/ directory;
# the default is KVMSFT_TESTS: lab/kvm_check.py's subset (TESTS) and the
# tests it leaves out (LEFT_OUT), which says why.
set -euo pipefail
KVMSFT_TESTS="cpuid_test fix_hypercall_test kvm_create_max_vcpus
kvm_pv_test platform_info_test set_sregs_test smm_test state_test svm_int_ctl_test
svm_nested_shutdown_test svm_vmcall_test sync_regs_test triple_fault_event_test
userspace_io_test userspace_msr_exit_test xapic_ipi_test
debug_regs hardware_disable_test nested_exceptions_test set_memory_region_test svm_nested_soft_inject_test"
src=$(realpath "$1") out=$(realpath -m "$2")
shift 2
tests=${*:-$KVMSFT_TESTS}
work=$out.build
rm -rf "$out"
mkdir -p "$work/kvm" "$out"
make -s -C "$src" O="$work/hdr" headers_install INSTALL_HDR_PATH="$work/usr" >/dev/null
# The KVM Makefile links with $(CFLAGS) on the line, so EXTRA_CFLAGS=-static
# makes static binaries (its -no-pie agrees).  Only the tests asked for are
# built: their objects plus libkvm.
kvm=$src/tools/testing/selftests/kvm
targets=() paths=()
for t in $tests; do
	if [ -f "$kvm/$t.c" ]; then p=$t
	elif [ -f "$kvm/x86_64/$t.c" ]; then p=x86_64/$t
	else echo "kvmsft: no test $t in $kvm" >&2; exit 1
	fi
	targets+=("$work/kvm/$p") paths+=("$p")
done
make -C "$kvm" OUTPUT="$work/kvm" ARCH=x86 \
	KHDR_INCLUDES="-isystem $work/usr/include" EXTRA_CFLAGS=-static \
	CC="ccache gcc" -j"$(nproc)" "${targets[@]}" > "$work/build.log" 2>&1 || {
	grep -E 'error|Error' "$work/build.log" | head -20 >&2
	echo "kvmsft: build failed (log: $work/build.log)" >&2
	exit 1
}
for p in "${paths[@]}"; do
	file "$work/kvm/$p" | grep -q 'statically linked' ||
		{ echo "kvmsft: $p is not static" >&2; exit 1; }
	cp "$work/kvm/$p" "$out/$(basename "$p")"
done
echo "kvmsft: $(ls "$out" | wc -l) KVM selftest binaries in $out"
