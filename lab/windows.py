#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Nested-NMI windows: stop an NMI at each instruction of asm_exc_nmi, inject another.

For every instruction address of the 64-bit NMI entry (asm_exc_nmi as the
running kernel has it, i.e. vmlinux's code after the boot-time alternatives
patching, disassembled with objdump), an outer NMI is stopped exactly there
through QEMU's gdbstub (the GDB remote protocol, spoken here directly over
the unix socket) and a second NMI is injected: HMP "nmi" while stopped, then
one single step with interrupts allowed (Qqemu.sstep=0x1).  If NMIs are
unmasked there, the step lands on asm_exc_nmi; otherwise it executes the
instruction and the NMI stays pending.  The guest then runs, with
breakpoints on asm_exc_nmi (every NMI delivery is recorded with its hardware
frame) and on nmi_final_iret (the saved and working frames are checked),
until the outer NMI has returned to the context it interrupted.  That
return is caught on the IRETQ itself and stepped with interrupts held off,
so the interrupted context is compared at the very instruction boundary
the IRETQ returns to; one more step with interrupts allowed takes any NMI
still pending, whose return is awaited the same way.

Expected outcome per address, from the entry code (Documentation/arch/x86/
nmi-nesting.rst) and the path the outer NMI takes (traced by single steps
first, in the same boot):

  latched    NMIs still masked by the hardware there: the NMI is taken at
             the first point an IRET unmasked them -- right after the
             DEBUG_ENTRY unmask knob's IRETQ (nested there: +1 nested, +1
             repeat), after a nested NMI's IRETQ, after the return to user
             mode (a new user-mode NMI), after a trap's IRET in the handler
             (only where traps return with IRET, see below), after the
             outer's final IRETQ (a new first NMI at the context the outer
             interrupted: nested +0, repeats +0)
  nested     taken at once; the outer's working frame is redirected to
             nmi_repeat: nested +1, one more handler run (repeats +1)
  ignored    taken at once in [nmi_repeat, nmi_repeat_end) of a repeat:
             nothing changes, the handler runs anyway
  first      taken at once but a new first NMI on the IST stack (the user
             path after its handler unmasked NMIs)
  c-latch    a first NMI on the IST stack while the user path's handler runs
             on the thread stack: exc_nmi's latch holds it back (latched +1)

Traps in the handler (#BP of a kprobe, #PF with a fixup: the hazard boots).
A kernel with the return without IRET from traps in NMI context (vmlinux
has nmi_trap_iret; error_return's .Lerror_return_kernel tests the NMI bits
of preempt_count and returns with POPF and RET) leaves NMIs masked across
them, unless its DEBUG_ENTRY knob nmi_trap_iret (a u8, read from the guest
through the gdbstub before every variant; --trap-iret writes 1 after each
boot) asks for IRET.  Without IRET nothing in the user path unmasks NMIs:
an NMI injected anywhere in it, in a trap of its handler or in the trap's
return is held by the CPU until the IRET to user mode and taken at the
interrupted user context (latched, no C-level latch: latched +0); in a
kernel-mode outer with the unmask knob off it is held until the outer's
final IRETQ (latched at the interrupted kernel context, nested +0, repeats
+0).  With IRET (nmi_trap_iret=1, or a kernel without the return) the
first trap's IRET unmasks NMIs: one injected before it is taken right
after it inside the handler and held back by exc_nmi's latch (c-latch,
latched +1), one injected later (the #PF after the int3, the user path
after the call of exc_nmi) is taken at once.  Each traced trap return
without IRET must also leave the handler with the registers of the trap
frame (GPRs, RIP, RSP, CS, RFLAGS but RF), as IRET would: a difference
fails the variant ("trap return").

Checks after every injection: each NMI was taken exactly where expected
(hardware frame RIP/CS), with the registers of the context it interrupted;
a nested NMI returned to the very instruction it interrupted with all
registers intact and redirected (or left alone) the outer's working frame;
the outer's saved frame (top-160..top-128) held the interrupted context at
every final IRETQ and was never touched by a nested NMI; the NMI count and
nmi_stats nested/repeats/latched moved by exactly the expected amounts; the
entry's stack slots are back to zero; the interrupted context's registers
(GPRs, RFLAGS, segments and bases, CR2, CR3) are identical when the outer
NMI returns there.  At the end of each boot its console must show no oops,
warning, lockdep report or lockup (unknown-NMI lines are expected: the
injected NMIs have no source).

Variants (outer contexts) and the boots providing them (-smp 1, CPU 0
receives the host's NMIs; lab.unmask_early=1 in all):

  idle (plan smoke; outer interrupts default_idle_call):
    kernel         outer NMI from kernel mode, target in its first pass
    repeat         a nested NMI at the first unmasked instruction makes the
                   outer repeat; target in the repeat pass
    nested         target inside that nested NMI (it took test 2)
    nested-final   target inside a nested NMI that hit nmi_final_iret (test 3)
    nested-repeat  target inside a nested NMI that hit nmi_repeat (test 1)
  user (plan ksft running nmi_regs_64: user-mode loop with known registers):
    user           outer NMI from user mode: the user path, masked throughout
  hazard (plan torture, no NMI sources, hazards int3,pf in every handler
  run; user load from the NMI selftests):
    user-hz        outer from user mode, with traps in its handler: masked
                   throughout where traps return without IRET (as user);
                   with IRET, the handler's int3 IRET unmasks NMIs: up to
                   the call of exc_nmi the nested NMI is held back by the
                   C-level latch, after it it is a new first NMI
    kernel-int3, kernel-pf, user-int3, user-pf
                   target inside exc_int3 / exc_page_fault taken by the
                   outer NMI's handler
    kernel-gap     outer interrupts the first instruction of entry_SYSCALL_64
                   (user GS base, user RSP -- pointed into the NMI stack by
                   nmi_syscall_rsp_64 when possible)
    user-fastret   outer from user mode; targets: every instruction of the
                   return without IRET as the handler's first int3 and
                   first #PF run it (.Lerror_return_kernel to the RET and
                   any return thunk), traced by single steps from there
                   until the handler runs again at the trap frame's RIP
    kernel-fastret the same from kernel mode, with the unmask knob off
                   (0 written into CPU 0's NMI stack slot for the variant)
                   Both run only where traps return without IRET.
  hazard-pti (the same with pti=on nofsgsbase: the CR3 switches and the
  SWAPGS exit test become live code):
    kernel/pti, user-hz/pti, kernel-gap/pti, user-fastret/pti
  user-stuff (the user boot with retbleed=stuff,force spectre_v2=retpoline:
  the user path's RSB call depth reset becomes live code; not in a sample):
    user/stuff
  hazard-stuff (the hazard boot with retbleed=stuff,force
  spectre_v2=retpoline: call depth tracking's return thunk would change
  the flags after POPF, so the kernel gates the return without IRET off
  -- the patched jump is read from the guest --, and the traps return
  with IRET: the fastret variants do not run, user-int3 and user-pf
  check the IRET behaviour; in the sample):
    user-fastret/stuff, kernel-fastret/stuff, user-int3/stuff, user-pf/stuff

Code that no boot runs.  An instruction that is not reachable in the code
of any boot run and was not covered is excluded from the total -- and
listed, each with its reason, under "excluded" -- only when it provably
cannot run:
  padding  INT3 fill after an unconditional jump over it (what the
           alternatives patcher writes into a site longer than its code);
  feature  code behind ALTERNATIVE "jmp 1f", "", X86_FEATURE_X (found in
           vmlinux's .altinstructions) whose jump stayed in every boot, for
           a feature the kernel sets only on CPUs with CPUID bits QEMU's TCG
           does not implement (UNREACHABLE_FEATURES: PCID, KERNEL_IBRS),
           confirmed against the QEMU in use (-cpu ...,+pcid reads back off).
Anything else uncovered is printed as "not covered" and stays in the total.

Timing: -icount shift=0,align=off,sleep=on (see Guest.start for why not
sleep=off).  --mutant breaks one rule of the entry code in the guest's
memory after boot, to show that the checks catch it.

Usage: windows.py [--sample N] [--kernel bzImage] [--vmlinux vmlinux]
                  [--initrd initramfs] [--boots ...] [--variants ...]
                  [--trap-iret]
Output: per variant "windows: summary <variant> covered= total= failures="
(total: the addresses of its path it set out to inject at; in a sample,
the sampled ones), per outer context of issue 6 (kernel mode, user mode,
inside an int3, inside a #PF of the handler) a "windows: required" line
saying complete (in a sample: "sample passed") or INCOMPLETE, then the
"not covered" and "excluded" addresses.  A sample takes N addresses of
asm_exc_nmi, N/2 of what only a later boot makes live, and N/2 (at least
2) of the first traced return without IRET, spread over its parts
(checks, copy, pops, popf, ret).
Last line: WINDOWS covered=<n> total=<n> failures=<n> excluded=<n> (total:
instruction addresses of asm_exc_nmi over the boots run, plus the two trap
windows, plus the instructions of the traced returns without IRET, minus
the excluded ones); exit status 0 only when nothing failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import vm
from gdbstub import LabError, Stuck
from guest import BOOTS, DEFAULT_BOOTS, Guest, SAMPLE_BOOTS
from inject import Injector
from kcode import (SLOT_UNMASK, disassemble_vmlinux, exclusions, fastret_entry, fastret_gate,
                   fastret_regions, feature_gates, nmi_count_offset, read_alt_sites, read_banner, read_symbols,
                   unreachable_features)
from tally import summary_line
from scenario import Scenario, base_variant, required_summary, sample_addresses, variant_summary


HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


# The summary line of a sweep that could not run.
WINDOWS_FAILED = [('covered', 0), ('total', 0), ('failures', 1), ('excluded', 0)]


class Runner(Injector):
    def __init__(self, args):
        self.args = args
        self.results = []
        self.top = None
        self.traces = {}
        self.reboots = 0
        self.guest = None
        self.knob = None
        self.vstats = {}
        self.gates = []
        self.fastret_at = None
        self.fastret_gate = None
        self.fastret = False
        self.path_known = set()
        self.return_problems = {}

    # -- static preparation --
    def prepare(self):
        a = self.args
        self.syms, self.symtab = read_symbols(a.vmlinux)
        need = ('asm_exc_nmi', 'nmi_repeat', 'nmi_repeat_end', 'nmi_final_iret',
                'init_top_pgt', 'linux_banner', '__per_cpu_offset', 'nmi_stats', 'irq_stat',
                'exc_nmi', 'default_idle_call', 'exc_int3', 'exc_page_fault', 'entry_SYSCALL_64')
        miss = [n for n in need if n not in self.syms]
        if miss:
            raise LabError('vmlinux lacks %s' % ', '.join(miss))
        start, size = self.syms['asm_exc_nmi']
        if not size:
            raise LabError('asm_exc_nmi has no size in vmlinux')
        self.static_insns = disassemble_vmlinux(a.vmlinux, start, start + size)
        self.gates = feature_gates(read_alt_sites(a.vmlinux, start, start + size),
                                   self.static_insns)
        # Where an outer NMI returns to the context it interrupted: its own
        # final IRETQ (kernel mode) or the common IRET to user mode.
        self.iret_sites = {self.syms['nmi_final_iret'][0]}
        if 'native_irq_return_iret' in self.syms:
            self.iret_sites.add(self.syms['native_irq_return_iret'][0])
        a.banner = read_banner(a.vmlinux, self.syms)
        # The return without IRET from traps in NMI context: error_return's
        # NMI test, in a kernel that has it (and its nmi_trap_iret knob).
        if 'nmi_trap_iret' in self.syms and self.syms.get('error_return', (0, 0))[1]:
            start, size = self.syms['error_return']
            insns = disassemble_vmlinux(a.vmlinux, start, start + size)
            self.fastret_at = fastret_entry(insns)
            if self.fastret_at is None:
                raise LabError('vmlinux has nmi_trap_iret but error_return no NMI test')
            self.fastret_gate = fastret_gate(insns, self.fastret_at)
        start, size = self.syms['exc_nmi']
        self.nmi_count_off = nmi_count_offset(subprocess.run(
            ['objdump', '-d', '--no-show-raw-insn', '--start-address=%#x' % start,
             '--stop-address=%#x' % (start + size), a.vmlinux],
            check=True, capture_output=True, text=True).stdout)

    # -- the whole run --
    # Variants that run only where traps in NMI context return without IRET.
    FASTRET_VARIANTS = ('user-fastret', 'kernel-fastret')

    # Variants that run with the unmask knob off (CPU 0's NMI stack slot).
    UNMASK_OFF = ('kernel-fastret',)

    def variants_of(self, boot):
        if boot == 'hazard-pti':
            return ['kernel/pti', 'user-hz/pti', 'kernel-gap/pti', 'user-fastret/pti']
        if boot == 'user-stuff':
            return ['user/stuff']
        if boot == 'hazard-stuff':
            # Call depth tracking gates the return without IRET off: the
            # fastret variants do not run, the int3 and #PF ones expect IRET.
            return ['user-fastret/stuff', 'kernel-fastret/stuff', 'user-int3/stuff',
                    'user-pf/stuff']
        return {'idle': ['kernel', 'repeat', 'nested', 'nested-final', 'nested-repeat'],
                'user': ['user'],
                'hazard': ['user-hz', 'kernel-int3', 'kernel-pf', 'user-int3', 'user-pf',
                           'kernel-gap', 'user-fastret', 'kernel-fastret']}[boot]

    def new_guest(self, boot):
        g = Guest(boot, self.args, self.syms,
                  os.path.join(self.args.out, '%s-%d' % (boot, self.reboots)), self.log)
        self.reboots += 1
        g.start()
        if 'nmi_trap_iret' in self.syms and self.args.trap_iret:
            g.kwrite(self.syms['nmi_trap_iret'][0], b'\x01')
        return g

    def trap_return(self, guest):
        """How traps in NMI context return in this guest: True when without
        IRET (the kernel has error_return's NMI return and its DEBUG_ENTRY
        knob, the u8 nmi_trap_iret, read through the gdbstub, is 0)."""
        if self.fastret_at is None or self.gated(guest):
            return False
        return guest.kread(self.syms['nmi_trap_iret'][0], 1)[0] == 0

    def gated(self, guest):
        """True when the alternatives patched the jump to IRET into the NMI
        return's feature gate (Xen PV, call depth tracking): a JMP where
        vmlinux has NOPs."""
        return self.fastret_gate is not None and \
            guest.kread(self.fastret_gate, 1)[0] in (0xe9, 0xeb)

    def describe_trap_return(self, guest):
        if self.fastret_at is None:
            return 'traps in NMI context return with IRET (no nmi_trap_iret in vmlinux)'
        if self.gated(guest):
            return 'traps in NMI context return with IRET (a CPU feature gate: %#x)' % (
                self.fastret_gate)
        v = guest.kread(self.syms['nmi_trap_iret'][0], 1)[0]
        return 'traps in NMI context return %s (nmi_trap_iret=%d%s)' % (
            'without IRET' if not v else 'with IRET', v,
            ', forced by --trap-iret' if self.args.trap_iret else '')

    def set_unmask(self, guest, variant):
        """The unmask knob as the variant wants it: off for UNMASK_OFF (written
        into CPU 0's NMI stack slot, which only the entry code reads; -smp 1),
        else (and for variant None) as the boot set it.  Sets self.knob."""
        slot = self.top - SLOT_UNMASK
        if guest.unmask_boot is None:
            guest.unmask_boot = guest.kread64(slot)[0]
        want = guest.unmask_boot
        if variant is not None and base_variant(variant) in self.UNMASK_OFF:
            want = 0
        if guest.kread64(slot)[0] != want:
            guest.kwrite(slot, want.to_bytes(8, 'little'))
        self.knob = guest.kread64(slot)[0]

    # Console findings that fail a boot.  The injected NMIs are unclaimed by
    # design, so "unknown reason" lines are expected here.
    CONSOLE_KINDS = ('oops', 'warn', 'lockdep', 'lockup')

    def retire(self, guest):
        """Let the guest run a moment (deferred printk, lockdep, RCU), stop
        it and scan its console: an oops or a warning anywhere in the boot
        is a failure of that boot."""
        import scan
        try:
            if guest.proc and guest.proc.poll() is None and guest.gdb:
                guest.set_bps(set())
                guest.gdb.run_for(1.0)
        except (LabError, Stuck, OSError):
            pass
        guest.stop()
        try:
            found = scan.scan_file(os.path.join(guest.outdir, 'console.log'))
        except OSError:
            return
        lines = [l for k in self.CONSOLE_KINDS for l in found.get(k, [])]
        if lines:
            print('FAIL %s console: %s' % (guest.boot_name, ' | '.join(lines[:3])), flush=True)
            self.results.append({'variant': guest.boot_name, 'where': 'console', 'addr': None,
                                 'ok': False, 'reasons': ['console of %s: %s' % (
                                     os.path.basename(guest.outdir), ' | '.join(lines[:5]))]})

    def log(self, msg):
        if self.args.verbose:
            print(msg, flush=True)

    def run(self):
        """All boots in turn; returns {address: {'text', 'live'}} of every
        instruction of asm_exc_nmi seen in any boot's code."""
        a = self.args
        self.prepare()
        self.windows = {}
        self.layouts = {}
        self.selected = set()
        for boot in a.boots:
            t0 = time.monotonic()
            try:
                self.guest = self.new_guest(boot)
                print('windows: %s boot ready in %.0f s; %s' % (
                    boot, self.guest.boot_seconds, self.describe_trap_return(self.guest)),
                    flush=True)
                self.live_layout(self.guest)
                self.layouts[boot] = self.layout
                self.add_windows(boot)
                self.run_boot(boot)
            except (LabError, Stuck) as e:
                print('FAIL %s boot: %s' % (boot, e), flush=True)
                self.results.append({'variant': boot, 'where': 'boot', 'ok': False,
                                     'reasons': ['%s boot: %s' % (boot, e)], 'addr': None})
            finally:
                if self.guest:
                    self.retire(self.guest)
                    self.guest = None
            print('windows: %s boot done in %.0f s' % (boot, time.monotonic() - t0), flush=True)
        return self.windows

    def add_windows(self, boot):
        """Record this boot's instructions; pick the ones to inject at."""
        L = self.layout
        known_live = {x for x, w in self.windows.items() if w['live']}
        for i in L.insns:
            w = self.windows.setdefault(i.addr, {'text': i.text, 'live': False})
            w['live'] = w['live'] or i.addr in L.live
        if not self.args.sample:
            self.selected |= set(L.addresses())
            return
        # The first code layout gets a sample of its live code; a boot whose
        # alternatives differ (pti=on, nofsgsbase) one of what only it runs.
        fresh = [(x, L.region(x)) for x in L.addresses()
                 if x in L.live and x not in known_live]
        if not fresh:
            return
        n = self.args.sample if not self.selected else max(1, self.args.sample // 2)
        pick = sample_addresses(fresh, n)
        self.selected |= set(pick)
        print('windows: %s boot: sample of %d: %s' % (
            boot, len(pick), ' '.join(self.fmt(x) for x in pick)), flush=True)

    def add_path_windows(self, variant, path):
        """Record the instructions of a traced path outside asm_exc_nmi (the
        traps' returns without IRET) as windows; in a sample, pick some of
        what no earlier variant's path had (--sample N: N/2, at least 2,
        spread over the parts of the return; a later one: half that)."""
        for i in path:
            w = self.windows.setdefault(i.addr, {'text': i.text, 'live': True})
            w['live'] = True
        if not self.args.sample:
            self.selected |= {i.addr for i in path}
            return
        cl, done = [], set()
        for a, region in fastret_regions(path):
            if a not in self.path_known and a not in done:
                cl.append((a, region))
                done.add(a)
        if not cl:
            return
        n = max(2, self.args.sample // 2)
        if self.path_known:
            n = max(1, n // 2)
        pick = sample_addresses(cl, n)
        self.path_known |= done
        self.selected |= set(pick)
        print('windows: %s: sample of %d of the %d instructions of its path: %s' % (
            variant, len(pick), len({i.addr for i in path}),
            ' '.join(self.fmt(x) for x in pick)), flush=True)

    def learn(self, guest):
        """The NMI stack top and the unmask knob, from one plain NMI."""
        S = Scenario(self, guest)
        S.refresh()
        p0 = dict(S.regs)
        if not S.inject():
            raise LabError('NMI not taken at the anchor %s' % self.fmt(p0['rip']))
        self.knob = guest.kread64(self.top - SLOT_UNMASK)[0]
        S.finish(p0)
        if not self.knob:
            print('windows: the unmask knob is off (lab.unmask_early not set?): nested '
                  'variants cannot run', flush=True)

    MUTANTS = {
        # Checks of the checker: each breaks one rule of the entry code.
        'no-repeat-test': 'test 1 (RIP in the repeat region) never true',
        'no-final-test': 'test 3 (RIP == nmi_final_iret) always false',
        'no-nested-count': 'a nested NMI does not count itself',
    }

    def apply_mutant(self, guest):
        name = self.args.mutant
        if not name:
            return
        L = self.layout
        if name == 'no-repeat-test':
            a, new = L.test1_jcc, b'\x66\x90'
        elif name == 'no-final-test':
            # jne .Lnmi_first -> jmp .Lnmi_first (short forms, same displacement)
            a = L.test3_jcc
            old = guest.kread(a, 2)
            if not 0x70 <= old[0] <= 0x7f:
                raise LabError('mutant: test 3 is not a short jcc')
            new = b'\xeb' + old[1:2]
        elif name == 'no-nested-count':
            inc = [i for i in L.insns if L.lnmi_nested <= i.addr < L.nested_iret and
                   i.mnem.startswith('inc')]
            if not inc:
                raise LabError('mutant: no inc in the nested path')
            a, new = inc[0].addr, b'\x0f\x1f\x44\x00\x00'
        else:
            raise LabError('unknown mutant %s' % name)
        ins = L.by_addr[a]
        if ins.size != len(new):
            raise LabError('mutant %s: %s is %d bytes' % (name, ins.text, ins.size))
        guest.kwrite(a, new)
        print('windows: MUTANT %s: %s (%s) replaced' % (name, self.fmt(a), ins.text), flush=True)

    def run_boot(self, boot):
        a = self.args
        self.apply_mutant(self.guest)
        for variant in self.variants_of(boot):
            if a.variants and variant not in a.variants:
                continue
            context = self.context_of(variant)
            t0 = time.monotonic()
            self.fastret = self.trap_return(self.guest)
            if base_variant(variant) in self.FASTRET_VARIANTS and not self.fastret:
                print('windows: variant %s not run: %s' % (
                    variant, self.describe_trap_return(self.guest)), flush=True)
                continue
            try:
                self.anchor(self.guest, context)
                if self.top is None:
                    self.learn(self.guest)
                self.set_unmask(self.guest, variant)
                if not self.knob and base_variant(variant) in ('repeat', 'nested', 'nested-final',
                                                 'nested-repeat'):
                    continue
                self.anchor(self.guest, context)
                targets, masked = self.targets(self.guest, variant)
            except (LabError, Stuck) as e:
                # The path itself could not be run: a failure of the variant.
                self.report_return_problems(variant, boot)
                print('FAIL %s trace: %s' % (variant, e), flush=True)
                self.vstats[variant] = {'boot': boot, 'path': 0, 'todo': 0}
                self.results.append({'variant': variant, 'boot': boot, 'addr': None,
                                     'where': 'trace', 'ok': False,
                                     'reasons': ['trace: %s' % e]})
                self.retire(self.guest)
                self.guest = self.new_guest(boot)
                self.apply_mutant(self.guest)
                continue
            self.report_return_problems(variant, boot)
            todo = [t for t in targets if isinstance(t, str) or t in self.selected]
            self.vstats[variant] = {'boot': boot, 'path': len(targets), 'todo': len(todo)}
            nfail = 0
            for i, t in enumerate(todo):
                try:
                    if i and i % a.reanchor == 0:
                        self.guest.gdb.run_for(0.05)
                        self.anchor(self.guest, context, fresh=True)
                    else:
                        self.anchor(self.guest, context)
                    rec = self.inject_at(self.guest, variant, t, masked.get(t, False))
                except (LabError, Stuck) as e:
                    # The guest died or the stub failed under this injection.
                    addr = self.syms[t][0] if isinstance(t, str) else t
                    rec = {'variant': variant, 'boot': boot, 'addr': addr,
                           'where': self.fmt(addr), 'ok': False, 'reboot': True,
                           'reasons': ['guest lost: %s' % e]}
                self.results.append(rec)
                if rec['ok']:
                    self.log('ok %s %s (%s, %.2f s)' % (variant, rec['where'], rec['expect'],
                                                        rec['seconds']))
                    continue
                nfail += 1
                print('FAIL %s %s: %s' % (variant, rec['where'], '; '.join(rec['reasons'])),
                      flush=True)
                if rec.get('stuck') or rec.get('reboot'):
                    # The guest state is not trusted any more: start afresh.
                    self.retire(self.guest)
                    self.guest = self.new_guest(boot)
                    self.apply_mutant(self.guest)
                    self.set_unmask(self.guest, variant)
            self.set_unmask(self.guest, None)
            print('windows: variant %-13s %3d injections, %d failed, %.0f s' % (
                variant, len(todo), nfail, time.monotonic() - t0), flush=True)

    def report_return_problems(self, variant, boot):
        """Trap returns of the variant's trace that did not restore the trap
        frame: one failure each."""
        for why in self.return_problems.pop(variant, []):
            print('FAIL %s trap return: %s' % (variant, why), flush=True)
            self.results.append({'variant': variant, 'boot': boot, 'addr': None,
                                 'where': 'trap return', 'ok': False, 'reasons': [why]})

    def targets(self, guest, variant):
        """The variant's targets (addresses from a trace of its path, or trap
        symbols) and, per target, whether NMIs are masked there."""
        L = self.layout
        name, variant = variant, base_variant(variant)
        if variant in ('kernel-int3', 'kernel-pf', 'user-int3', 'user-pf'):
            sym = 'exc_int3' if variant.endswith('int3') else 'exc_page_fault'
            # Kernel outer: the knob unmasked NMIs before the handler runs.
            # User outer: the int3 is the first trap, the #PF comes after its
            # IRET -- unless traps return without IRET: then nothing in the
            # user path unmasks NMIs, nor in the kernel one with the knob off.
            if self.fastret:
                masked = variant.startswith('user') or not self.knob
            else:
                masked = variant == 'user-int3' or (variant == 'kernel-int3' and not self.knob)
            return [sym], {sym: masked}
        if variant in self.FASTRET_VARIANTS:
            # The traps' returns without IRET: NMIs stay masked throughout
            # (the user path never unmasks them; the kernel one runs with
            # the knob off, or else they were unmasked before the handler).
            path = self.trace_fastret(guest, name)
            self.traces[name] = [self.fmt(i.addr) for i in path]
            seen = []
            for i in path:
                if i.addr not in seen:
                    seen.append(i.addr)
            self.add_path_windows(name, path)
            m = variant == 'user-fastret' or not self.knob
            return seen, {x: m for x in seen}
        order = self.trace(guest, name)
        self.traces[name] = [self.fmt(x) for x in order]
        seen = []
        for x in order:
            if x not in seen:
                seen.append(x)
        masked = {}
        if variant in ('kernel', 'kernel-gap'):
            unmask_at = order.index(L.label1) if (self.knob and L.label1 in order) else len(order)
            for i, x in enumerate(order):
                masked.setdefault(x, i < unmask_at)
        elif variant == 'user-hz':
            # Masked up to the handler's first trap, whose IRET unmasks NMIs
            # (after the call of exc_nmi) -- or, when traps return without
            # IRET, up to the return to user mode.
            call = L.call_exc_nmi_user
            cut = order.index(call) if call in order and not self.fastret else len(order)
            for i, x in enumerate(order):
                masked.setdefault(x, i <= cut)
        else:
            for x in order:
                masked[x] = variant in ('nested', 'nested-final', 'nested-repeat', 'user')
        return seen, masked


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    b = os.path.join(TOP, 'build')
    p.add_argument('--kernel', default=os.path.join(b, 'out-series/arch/x86/boot/bzImage'))
    p.add_argument('--vmlinux', default=os.path.join(b, 'out-series/vmlinux'))
    p.add_argument('--initrd', default=os.path.join(b, 'initramfs-series.cpio.gz'))
    p.add_argument('--out', default=os.path.join(b, 'runs/windows'))
    p.add_argument('--sample', type=int, default=0,
                   help='only N addresses (a deterministic subset spread over the regions '
                   'of the code), in every variant that reaches them; plus N/2 of the '
                   'addresses only a later boot (hazard-pti) makes live, and N/2 (at least '
                   '2) of the traced trap return without IRET')
    p.add_argument('--boots', default=None,
                   help='boots to run, in order: ' + ', '.join(BOOTS) + ' (default: ' +
                   ','.join(DEFAULT_BOOTS) + '; with --sample: ' + ','.join(SAMPLE_BOOTS) + ')')
    p.add_argument('--variants', default='', help='only these variants (comma list)')
    p.add_argument('--no-icount', dest='icount', action='store_false',
                   help='run without -icount (not deterministic)')
    p.add_argument('--icount-sleep', default='on', choices=('on', 'off'),
                   help='-icount sleep= (off warps the clock at single steps)')
    p.add_argument('--boot-timeout', type=float, default=180)
    p.add_argument('--step-timeout', type=float, default=30,
                   help='seconds for the guest to reach a point')
    p.add_argument('--reanchor', type=int, default=16,
                   help='let the guest run and re-pick the context every N injections')
    p.add_argument('--no-copy', dest='copy', action='store_false',
                   help='use the inputs in place (default: snapshot them into --out)')
    p.add_argument('--trap-iret', action='store_true',
                   help='make traps in NMI context return with IRET (nmi_trap_iret=1, written '
                   'after boot): the expectations of a kernel without the return without IRET')
    p.add_argument('--mutant', choices=sorted(Runner.MUTANTS),
                   help='break the entry code in the guest on purpose (checks the checker)')
    p.add_argument('-v', '--verbose', action='store_true')
    args = p.parse_args(argv)
    if args.boots is None:
        args.boots = ','.join(SAMPLE_BOOTS if args.sample else DEFAULT_BOOTS)
    args.boots = [x for x in args.boots.split(',') if x]
    for b in args.boots:
        if b not in BOOTS:
            p.error('unknown boot %s (known: %s)' % (b, ', '.join(BOOTS)))
    args.variants = [x for x in args.variants.split(',') if x]
    os.makedirs(args.out, exist_ok=True)
    if args.copy:
        snap = os.path.join(args.out, 'inputs')
        os.makedirs(snap, exist_ok=True)
        for attr, name in (('kernel', 'bzImage'), ('vmlinux', 'vmlinux'),
                           ('initrd', 'initramfs.cpio.gz')):
            src = getattr(args, attr)
            if not os.path.exists(src):
                print('windows: %s missing' % src, file=sys.stderr)
                print(summary_line('WINDOWS', WINDOWS_FAILED))
                return 2
            dst = os.path.join(snap, name)
            shutil.copyfile(src, dst)
            setattr(args, attr, dst)
    t0 = time.monotonic()
    r = Runner(args)
    try:
        windows = r.run()
    except LabError as e:
        print('windows: %s' % e, file=sys.stderr)
        print(summary_line('WINDOWS', WINDOWS_FAILED))
        return 2
    windows = windows or {}
    extra = ['exc_int3', 'exc_page_fault'] if any(b.startswith('hazard') for b in args.boots) \
        else []
    covered = set()
    for rec in r.results:
        if rec.get('addr') is not None:
            covered.add(rec['addr'])
    failures = [x for x in r.results if not x['ok']]
    # Uncovered code that no boot ran: excluded from the total only when it
    # provably cannot run (padding, or behind a feature QEMU cannot offer).
    dead = {x for x, w in windows.items() if x not in covered and not w['live']}
    unreachable, notes = unreachable_features(vm.CPU) if dead else ({}, [])
    layouts = list(getattr(r, 'layouts', {}).values())
    excluded = exclusions(dead, layouts, r.gates, unreachable, r.fmt)
    total = len(windows) + len(extra) - len(excluded)
    rows = variant_summary(r.vstats, r.results)
    expected = [v for b in args.boots for v in r.variants_of(b)
                if not args.variants or v in args.variants]
    required = required_summary(rows, expected)
    summary = {'total': total, 'covered': len(covered), 'failures': len(failures),
               'excluded': {r.fmt(x): why for x, why in excluded.items()},
               'seconds': round(time.monotonic() - t0, 1),
               'variants': [dict(zip(('variant', 'covered', 'total', 'failures', 'path'), v))
                            for v in rows],
               'required': [dict(zip(('context', 'variants', 'covered', 'total', 'failures',
                                      'complete'), q)) for q in required],
               'layouts': {b: L.describe() for b, L in getattr(r, 'layouts', {}).items()},
               'static_only': [r.fmt(x) for x in getattr(r, 'static_only', [])],
               'knob': r.knob, 'traces': r.traces, 'results': r.results}
    with open(os.path.join(args.out, 'windows.json'), 'w') as f:
        json.dump(summary, f, indent=1, default=str)
    for v, cov, tot, nf, path in rows:
        print('windows: summary %-15s covered=%-3d total=%-3d failures=%d%s' % (
            v, cov, tot, nf, ' (sample of a path of %d)' % path if args.sample else ''))
    for what, names, cov, tot, nf, complete in required:
        # A sample covers all it set out to, but the paths only in part.
        print('windows: required %s (%s): covered=%d total=%d failures=%d %s' % (
            what, ' '.join(names) or 'not run', cov, tot, nf,
            'INCOMPLETE' if not complete else 'sample passed' if args.sample else 'complete'))
    for x in sorted(windows):
        if x in covered or x in excluded or (args.sample and x not in r.selected):
            continue
        w = windows[x]
        why = 'not on any path exercised here' if w['live'] else \
            'dead code in every boot run, not shown to be unreachable'
        print('windows: not covered %s (%s): %s' % (r.fmt(x), w['text'], why))
    for note in notes:
        print('windows: %s' % note)
    for x, why in sorted(excluded.items()):
        print('windows: excluded %s (%s): %s' % (r.fmt(x), windows[x]['text'], why))
    for rec in failures:
        print('FAIL %s %s: %s' % (rec['variant'], rec['where'], '; '.join(rec['reasons'])))
    print('windows: %.0f s, details in %s' % (time.monotonic() - t0,
                                              os.path.join(args.out, 'windows.json')))
    print(summary_line('WINDOWS', [('covered', len(covered)), ('total', total),
                                   ('failures', len(failures)), ('excluded', len(excluded))]))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
