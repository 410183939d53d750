# The NMI lab's front door.  See README.md.
#
#   make run      boot the patched kernel under the NMI workload; report
#   make check    the whole test suite; last line "N passed, M failed"
#
# Pieces: deps tree kernel ksft initramfs export torture model boot clean
# Before sending: series-check [series-check-full] send-preview

# Debian's Python: the lab's Python libraries are Debian packages (make deps:
# python3-matplotlib, python3-ply, python3-git), which another python3 first
# on PATH (pyenv, a venv) does not see.
PY      := /usr/bin/python3
LAB     := lab
B       := build
SECONDS ?= 30
TORTURE_SECONDS ?= 600
HPET_SOAK_SECONDS ?= 600

.PHONY: all run check timing-reset deps tree kernel base-kernel ksft initramfs export \
	torture torture-base model windows bisect boot boot-i386 series-check \
	series-check-full send-preview bench hpet-soak wide-kernel sanitizers lockfree kvm hpet-switch lab-test clean distclean help

all: help

help:
	@sed -n '2,8p' Makefile | sed 's/^# \{0,1\}//'

run: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py run --seconds $(SECONDS) --nmi-rate $(or $(NMI_RATE),0)

check: timing-reset deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py check

T := $(LAB)/timed.sh

timing-reset:
	@$(T) --reset

deps:
	@$(T) deps $(LAB)/deps.sh

tree: deps
	@$(T) tree $(LAB)/tree.sh

export:
	@$(LAB)/export.sh

kernel:
	@$(T) kernel $(LAB)/kbuild.sh series

# The base: pristine kernel + the instrument patches (torture test, selftests).
base-kernel:
	@$(LAB)/kbuild.sh instrument

ksft:
	@$(T) ksft $(LAB)/ksft.sh $(B)/linux $(B)/ksft

initramfs:
	@$(T) initramfs $(LAB)/mkinitramfs.sh $(B)/initramfs-series.cpio.gz $(B)/out-series $(B)/ksft

# Torture with all hazards on the series (TORTURE_SECONDS, default 10 min).
torture: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py torture --seconds $(TORTURE_SECONDS)

# The same on the base, for comparison.
torture-base: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py torture --seconds $(TORTURE_SECONDS) --variant instrument

model:
	bash model/run.sh

# A nested NMI at every instruction of the NMI entry, through the gdbstub.
windows: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py windows --out $(B)/runs/windows

# Base and series side by side: NMI entry/dispatch instructions (in the
# test configuration and in the prod one, lab/config/prod.config: bench.py
# builds build/out-{instrument,series}-prod), external events lost and their
# latency, the highest internal NMI rate, NMI backtraces on 64 vCPUs (about
# 10 min; QUICK=1: 5 min; plus the prod kernels' builds).  The instruction
# counts alone: lab/lab.py bench --insn-only.  A benchmark, never part of
# make check.  Results in build/bench/.
bench: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py bench $(if $(QUICK),--quick)

# The HPET NMI watchdog beside the torture test with all hazards
# (HPET_SOAK_SECONDS, default 10 min): nothing lost, no false lockup, every
# HPET NMI accounted for.  Ends with an "HPETSOAK ..." line.
hpet-soak: deps tree kernel ksft
	$(PY) $(LAB)/lab.py hpet-soak --soak $(HPET_SOAK_SECONDS)

# The hard-lockup detector switched hpet -> buddy -> hpet -> buddy -> hpet
# at run time (kernel.hardlockup_detector), a minute apart, beside the
# torture test; each switch printed; ends with an "HPETSWITCH ..." line.
hpet-switch: deps tree kernel ksft
	$(PY) $(LAB)/lab.py hpet-soak --switch $(or $(HPET_SWITCH_STEP),60)

# The whole kernel with lab/config/wide.config (FRED, KVM VMX and SVM, Xen
# PV, SEV, UV and the NMI drivers), linked and checked by objtool like the
# boot kernel, then booted under the NMI workload (30 s, host NMIs at 200/s).
wide-kernel: deps tree ksft
	$(LAB)/kbuild.sh series wide-kernel
	$(PY) $(LAB)/lab.py boot workload --variant wide-kernel --nmi-rate 200 --append lab.seconds=30

# The test kernel with KASAN, then with KCSAN (lab/config/variants): built
# and checked by objtool (noinstr code calling instrumented code fails the
# build), then booted under the torture test with all hazards (60 s): no
# KASAN or KCSAN report, nothing lost.  make check's part build runs the
# cheap half, object by object without linking (lab/sancheck.sh).
sanitizers: deps tree ksft
	for v in kasan kcsan; do \
		$(LAB)/kbuild.sh series $$v && \
		$(PY) $(LAB)/lab.py torture --variant $$v --seconds 60 || exit 1; \
	done

# How often the dispatcher takes a lock or does port I/O on internal NMIs
# under a PMU-like load: steady NMI IPIs (250/s per CPU, no bursts), no
# hazards, no user-mode load, 60 s.  Ends with a "LOCKFREE ..." line.
lockfree: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py torture --seconds 60 --hazards none \
		--params bursts=0:ipi_rate=250:ext_rate=10 --append lab.user_load=0

# KVM as host in the guest (kvm_amd on TCG's SVM): KVM selftests, nested SVM
# included, while the host injects NMIs and beside the torture test
# (lab/kvm_check.py; VARIANT=instrument: the base).  Ends with a "KVMSFT ..."
# line.  make check runs it as its part kvm.
kvm: deps tree
	$(PY) $(LAB)/lab.py kvm --variant $(or $(VARIANT),series)

# Build every patch of the series on its own (slow: one build per patch).
bisect:
	@$(LAB)/bisect.sh

# make boot PLAN=smoke [VARIANT=instrument]
boot: kernel ksft initramfs
	$(PY) $(LAB)/lab.py boot $(or $(PLAN),smoke) --variant $(or $(VARIANT),series)

# The series built for i386 and booted under qemu-system-i386 (make check
# part i386); VARIANT=instrument boots the base.
boot-i386: deps
	$(PY) $(LAB)/lab.py boot-i386 --variant $(or $(VARIANT),series)

# Ready to send?  checkpatch, bisect, W=1 + sparse on the touched objects
# (wide, i386, allnoconfig; new warnings against the base), kernel-doc and
# Sphinx.  Ends with "SERIES patches=<n> checkpatch=<n> prose=<n> ... new_warnings=<n>".
series-check: deps
	$(PY) $(LAB)/lab.py series-check

# The same plus x86_64 and i386 defconfig builds of the whole kernel (slow).
series-check-full: deps
	$(PY) $(LAB)/lab.py series-check --full

# What b4 send would send for the series (a dry run; offline).
send-preview:
	@$(LAB)/send-preview.sh

lab-test:
	$(PY) -m unittest discover -s $(LAB)/tests -v

clean:
	rm -rf $(B)/out-* $(B)/src-* $(B)/runs $(B)/ksft $(B)/ksft.build $(B)/initramfs-* \
		$(B)/w1-logs $(B)/bisect-ok

# Also removes build/linux: commit and 'make export' first.
distclean:
	rm -rf $(B)
