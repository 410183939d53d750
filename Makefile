# The NMI lab's front door.  See README.md.
#
#   make run      boot the patched kernel under the NMI workload; report
#   make check    the whole test suite; last line "N passed, M failed"
#
# Pieces: deps tree kernel ksft initramfs export torture model boot clean

PY      := python3
LAB     := lab
B       := build
SECONDS ?= 30
TORTURE_SECONDS ?= 600

.PHONY: all run check deps tree kernel base-kernel ksft initramfs export \
	torture torture-base model windows bisect boot lab-test clean distclean help

all: help

help:
	@sed -n '2,7p' Makefile | sed 's/^# \{0,1\}//'

run: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py run --seconds $(SECONDS) --nmi-rate $(or $(NMI_RATE),0)

check: deps tree kernel ksft initramfs
	$(PY) $(LAB)/lab.py check

deps:
	@$(LAB)/deps.sh

tree: deps
	@$(LAB)/tree.sh

export:
	@$(LAB)/export.sh

kernel:
	@$(LAB)/kbuild.sh series

# The base: pristine kernel + the instrument patches (torture test, selftests).
base-kernel:
	@$(LAB)/kbuild.sh instrument

ksft:
	@$(LAB)/ksft.sh $(B)/linux $(B)/ksft

initramfs:
	@$(LAB)/mkinitramfs.sh $(B)/initramfs-series.cpio.gz $(B)/out-series $(B)/ksft

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
	$(PY) $(LAB)/windows.py --out $(B)/runs/windows

# Build every patch of the series on its own (slow: one build per patch).
bisect:
	@$(LAB)/bisect.sh

# make boot PLAN=smoke [VARIANT=instrument]
boot: kernel ksft initramfs
	$(PY) $(LAB)/lab.py boot $(or $(PLAN),smoke) --variant $(or $(VARIANT),series)

lab-test:
	$(PY) -m unittest discover -s $(LAB)/tests -v

clean:
	rm -rf $(B)/out-* $(B)/src-* $(B)/runs $(B)/ksft $(B)/ksft.build $(B)/initramfs-*

# Also removes build/linux: commit and 'make export' first.
distclean:
	rm -rf $(B)
