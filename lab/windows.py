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
  nested     taken at once; the outer's working frame is redirected to
             nmi_repeat: nested +1, one more handler run (repeats +1)
  ignored    taken at once in [nmi_repeat, nmi_repeat_end) of a repeat:
             nothing changes, the handler runs anyway
  first      taken at once but a new first NMI on the IST stack (the user
             path after its handler unmasked NMIs)
  c-latch    a first NMI on the IST stack while the user path's handler runs
             on the thread stack: exc_nmi's latch holds it back (latched +1)

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
    user-hz        outer from user mode; its handler's int3 IRET unmasks
                   NMIs: the nested NMI is held back by the C-level latch
    kernel-int3, kernel-pf, user-int3, user-pf
                   target inside exc_int3 / exc_page_fault taken by the
                   outer NMI's handler
    kernel-gap     outer interrupts the first instruction of entry_SYSCALL_64
                   (user GS base, user RSP -- pointed into the NMI stack by
                   nmi_syscall_rsp_64 when possible)
  hazard-pti (the same with pti=on nofsgsbase: the CR3 switches and the
  SWAPGS exit test become live code):
    kernel/pti, user-hz/pti, kernel-gap/pti
  user-stuff (the user boot with retbleed=stuff,force spectre_v2=retpoline:
  the user path's RSB call depth reset becomes live code; not in a sample):
    user/stuff

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
Output: per variant "windows: summary <variant> covered= total= failures="
(total: the addresses of its path it set out to inject at; in a sample,
the sampled ones), per outer context of issue 6 (kernel mode, user mode,
inside an int3, inside a #PF of the handler) a "windows: required" line
saying complete (in a sample: "sample passed") or INCOMPLETE, then the
"not covered" and "excluded" addresses.
Last line: WINDOWS covered=<n> total=<n> failures=<n> excluded=<n> (total:
instruction addresses of asm_exc_nmi over the boots run, plus the two trap
windows, minus the excluded ones); exit status 0 only when nothing failed.
"""

import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import vm

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)

KERNEL_CS = 0x10
KERNEL_DS = 0x18
START_KERNEL_MAP = 0xffffffff80000000
# CONFIG_CALL_PADDING: the bytes before a function where call depth
# tracking puts its accounting thunk.
CALL_PADDING = 16

# Stack slots, bytes below the top of the NMI stack (asm/nmi_stack.h).
SLOT_FLAG = 56
SLOT_NESTED = 64
SLOT_REPEATS = 72
SLOT_UNMASK = 80
WORK_FRAME = 120          # top-120 .. top-88: rip cs flags rsp ss
SAVED_FRAME = 160         # top-160 .. top-128

NMI_STATS_FIELDS = ('internal', 'external', 'fallback', 'unknown', 'unknown_b2b',
                    'unknown_expired', 'swallowed', 'late_ipis', 'latched', 'nested', 'repeats',
                    'recovered', 'ext_polls', 'poll_nmis')

# Registers compared between the interruption and the return.
CONTEXT_REGS = ('rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
                'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
                'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs',
                'fs_base', 'gs_base', 'k_gs_base', 'cr0', 'cr2', 'cr3', 'cr4',
                'efer')
# What an NMI delivery leaves alone (the frame regs are checked separately).
GPRS_NO_SP = ('rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp',
              'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')


class LabError(Exception):
    """The test could not be carried out (infrastructure, not a verdict)."""


class Stuck(Exception):
    """The guest did not reach an expected point in time."""


# ---------------------------------------------------------------------------
# Pure parts: symbols, disassembly, layout, expectations, verdicts.
# ---------------------------------------------------------------------------

def parse_nm(text):
    """nm [-S] output -> {name: (address, size or None)} (first definition wins)."""
    syms = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 4:
            addr, size, _typ, name = f
        elif len(f) == 3:
            (addr, _typ, name), size = f, None
        else:
            continue
        try:
            a = int(addr, 16)
            s = int(size, 16) if size is not None else None
        except ValueError:
            continue
        syms.setdefault(name, (a, s))
    return syms


INSN_RE = re.compile(r'^\s*([0-9a-f]+):\t(?:(?:[0-9a-f]{2} )+\s*\t)?(.*)$')
TARGET_RE = re.compile(r'^(?:[a-z]+\s+)?(?:0x)?([0-9a-f]+)(?:\s+<[^>]*>)?$')


class Insn:
    __slots__ = ('addr', 'size', 'text', 'mnem', 'ops', 'target')

    def __init__(self, addr, text):
        self.addr = addr
        self.text = ' '.join(text.split())
        parts = self.text.split(' ', 1)
        self.mnem = parts[0]
        self.ops = parts[1] if len(parts) > 1 else ''
        # Prefixes objdump prints as part of the mnemonic field.
        if self.mnem in ('bnd', 'notrack', 'lock', 'rep', 'repz', 'repnz', 'ds', 'cs') \
                and self.ops:
            p = self.ops.split(' ', 1)
            self.mnem, self.ops = p[0], (p[1] if len(p) > 1 else '')
        self.size = None
        self.target = None
        if self.is_branch() or self.is_call():
            m = TARGET_RE.match(self.ops)
            if m and not self.ops.startswith('*'):
                self.target = int(m.group(1), 16)

    def is_call(self):
        return self.mnem.startswith('call')

    def is_jmp(self):
        return self.mnem in ('jmp', 'jmpq')

    def is_jcc(self):
        return self.mnem.startswith('j') and not self.is_jmp()

    def is_branch(self):
        return self.mnem.startswith('j')

    def is_iret(self):
        return self.mnem in ('iretq', 'iret', 'iretl')

    def ends_flow(self):
        return self.is_jmp() or self.is_iret() or self.mnem in ('ret', 'retq', 'ud2', 'int3')

    def __repr__(self):
        return '<%x: %s>' % (self.addr, self.text)


def parse_objdump(text, start=None, end=None):
    """objdump -d output -> [Insn] in address order, sizes filled in.

    Continuation lines (raw bytes of a long instruction) and labels are
    skipped.  When end is given, the last instruction's size runs up to it.
    """
    insns = []
    for line in text.splitlines():
        m = INSN_RE.match(line)
        if not m:
            continue
        body = m.group(2).strip()
        if not body or re.fullmatch(r'(?:[0-9a-f]{2} ?)+', body):
            continue            # a continuation line of raw bytes
        a = int(m.group(1), 16)
        if (start is not None and a < start) or (end is not None and a >= end):
            continue
        insns.append(Insn(a, body))
    insns.sort(key=lambda i: i.addr)
    for i, ins in enumerate(insns):
        if i + 1 < len(insns):
            ins.size = insns[i + 1].addr - ins.addr
        elif end is not None:
            ins.size = end - ins.addr
    return insns


def disassemble_bytes(data, base):
    """Disassemble raw x86-64 code at virtual address base (objdump)."""
    with tempfile.NamedTemporaryFile(suffix='.bin') as f:
        f.write(data)
        f.flush()
        out = subprocess.run(['objdump', '-D', '-b', 'binary', '-m', 'i386:x86-64',
                              '--no-show-raw-insn', '--adjust-vma=%#x' % base, f.name],
                             check=True, capture_output=True, text=True).stdout
    return parse_objdump(out, base, base + len(data))


NMI_COUNT_RE = re.compile(r'\binc[lw]?\s+%gs:\S+\s+#\s*[0-9a-f]+\s+<irq_stat(?:\+0x([0-9a-f]+))?>')


def nmi_count_offset(text):
    """The offset of __nmi_count in irq_stat, from exc_nmi's disassembly
    (its inc_irq_stat(__nmi_count)).  irq_cpustat_t's layout depends on the
    configuration (a u8 comes first with KVM_INTEL) and vmlinux has no debug
    information, so the code that counts says where the count is."""
    offs = {int(m.group(1) or '0', 16) for m in NMI_COUNT_RE.finditer(text)}
    if len(offs) != 1:
        raise LabError('exc_nmi: %s increment of irq_stat found (%s)' % (
            'no' if not offs else 'more than one', sorted(offs)))
    return offs.pop()


def disassemble_vmlinux(vmlinux, start, end):
    out = subprocess.run(['objdump', '-d', '--no-show-raw-insn',
                          '--start-address=%#x' % start, '--stop-address=%#x' % end,
                          vmlinux], check=True, capture_output=True, text=True).stdout
    return parse_objdump(out, start, end)


def reachable(insns, entries):
    """Addresses reachable by control flow from entries within insns.

    Calls return to the next instruction; jumps out of the range end the
    path; iretq/ret/jmp end the fall-through.
    """
    by_addr = {i.addr: i for i in insns}
    seen = set()
    work = [e for e in entries if e in by_addr]
    while work:
        a = work.pop()
        if a in seen or a not in by_addr:
            continue
        seen.add(a)
        ins = by_addr[a]
        if ins.target is not None and (ins.is_branch()) and ins.target in by_addr:
            work.append(ins.target)
        if not ins.ends_flow() and ins.size:
            work.append(a + ins.size)
    return seen


class Layout:
    """The structure of asm_exc_nmi, found in its disassembly.

    Regions (by address):
      entry    asm_exc_nmi .. the user/kernel split (the first jcc)
      user     the user-mode path, up to the kernel-mode label
      tests    the nesting tests (test 1, 2, 3)
      nested   what a nested NMI does: redirect, count, return
      first    a first NMI copies the hardware frame to the saved frame
      repeat   [nmi_repeat, nmi_repeat_end)
      knob     the DEBUG_ENTRY unmask knob up to and including its IRETQ
      run      paranoid_entry, exc_nmi, the exit up to the final IRETQ
      final    nmi_final_iret
      pad      anything after the final IRETQ
    """

    REGIONS = ('entry', 'user', 'tests', 'nested', 'first', 'repeat', 'knob', 'run',
               'final', 'pad')

    def __init__(self, insns, syms):
        if not insns:
            raise LabError('asm_exc_nmi: no instructions')
        self.insns = insns
        self.by_addr = {i.addr: i for i in insns}
        self.start = insns[0].addr
        self.end = insns[-1].addr + (insns[-1].size or 1)
        try:
            self.nmi_repeat = syms['nmi_repeat'][0]
            self.nmi_repeat_end = syms['nmi_repeat_end'][0]
            self.final = syms['nmi_final_iret'][0]
        except KeyError as e:
            raise LabError('symbol %s missing: not the reworked NMI entry' % e)
        for name in ('nmi_repeat', 'nmi_repeat_end', 'final'):
            if getattr(self, name) not in self.by_addr:
                raise LabError('%s is not an instruction boundary' % name)
        if not self.by_addr[self.final].is_iret():
            raise LabError('nmi_final_iret is not an iretq')
        seq = [i for i in insns if i.addr < self.nmi_repeat]
        split = next((i for i in seq if i.is_jcc()), None)
        if split is None or split.target is None:
            raise LabError('no user/kernel split (first conditional jump)')
        self.split = split.addr
        self.kernel = split.target
        # The iretq of the nested path, then the first NMI's copy.
        iret = next((i for i in seq if i.addr > self.kernel and i.is_iret()), None)
        if iret is None:
            raise LabError('no iretq of the nested path')
        self.nested_iret = iret.addr
        self.lnmi_first = iret.addr + iret.size
        t3 = [i for i in seq if self.kernel <= i.addr < self.nested_iret and i.is_jcc()
              and i.target == self.lnmi_first]
        if not t3:
            raise LabError('no jump to the first-NMI path (test 3)')
        self.test3_jcc = t3[-1].addr
        self.lnmi_nested = t3[-1].addr + t3[-1].size
        jb = [i for i in seq if self.kernel <= i.addr < self.test3_jcc and i.is_jcc()
              and i.target not in (None, self.lnmi_first)
              and i.target > self.test3_jcc]
        self.test1_jcc = jb[0].addr if jb else None
        self.nested_out = jb[0].target if jb else None
        # The unmask knob: the first iretq after nmi_repeat_end that is not
        # the final one; label "1:" follows it.
        knob = next((i for i in insns if self.nmi_repeat_end <= i.addr < self.final
                     and i.is_iret()), None)
        self.knob_iret = knob.addr if knob else None
        self.label1 = knob.addr + knob.size if knob else self.nmi_repeat_end
        # With call depth tracking (retbleed=stuff) the call goes to the
        # accounting thunk in the padding right before exc_nmi.
        exc_nmi = syms.get('exc_nmi', (None,))[0]
        self.call_exc_nmi_user = next(
            (i.addr for i in insns if self.split < i.addr < self.kernel and i.is_call()
             and exc_nmi is not None and i.target is not None
             and exc_nmi - CALL_PADDING <= i.target <= exc_nmi), None)
        entries = [self.start, self.nmi_repeat, self.label1]
        self.live = reachable(insns, entries)

    def region(self, a):
        if a <= self.split:
            return 'entry'
        if a < self.kernel:
            return 'user'
        if a < self.lnmi_nested:
            return 'tests'
        if a < self.lnmi_first:
            return 'nested'
        if a < self.nmi_repeat:
            return 'first'
        if a < self.nmi_repeat_end:
            return 'repeat'
        if a < self.label1:
            return 'knob'
        if a < self.final:
            return 'run'
        if a == self.final:
            return 'final'
        return 'pad'

    def addresses(self):
        return [i.addr for i in self.insns]

    def describe(self):
        return {'start': hex(self.start), 'end': hex(self.end), 'split': hex(self.split),
                'kernel': hex(self.kernel), 'nested': hex(self.lnmi_nested),
                'first': hex(self.lnmi_first), 'nmi_repeat': hex(self.nmi_repeat),
                'nmi_repeat_end': hex(self.nmi_repeat_end),
                'knob_iret': hex(self.knob_iret) if self.knob_iret else None,
                'label1': hex(self.label1), 'final': hex(self.final),
                'instructions': len(self.insns), 'live': len(self.live)}


# ---------------------------------------------------------------------------
# Code no boot can run: the alternatives table and the exclusion rules.
# ---------------------------------------------------------------------------

# struct alt_instr (arch/x86/include/asm/alternative.h), packed:
# s32 instr_offset, s32 repl_offset, u32 ft_flags (cpuid:16, flags:16),
# u8 instrlen, u8 replacementlen.
ALT_INSTR = struct.Struct('<iiIBB')
ALT_FLAG_NOT = 1

# Features whose code no boot of this sweep can run.  The kernel sets each
# of them only on a CPU with CPUID bits that QEMU's TCG does not implement:
# QEMU filters them from any -cpu model, -cpu max included ("TCG doesn't
# support requested feature").  Each is confirmed against the QEMU in use
# (qemu_cpu_props) before any address behind it is excluded.  Numbers from
# the 6.12 arch/x86/include/asm/cpufeatures.h.
#   bit: (X86_FEATURE_ name, QEMU CPU properties any of which the kernel
#         needs, what sets it)
UNREACHABLE_FEATURES = {
    4 * 32 + 17: ('PCID', ('pcid',), 'CPUID.01H:ECX.PCID'),
    7 * 32 + 12: ('KERNEL_IBRS', ('spec-ctrl', 'ibrs'),
                  'the spectre_v2 IBRS mode, chosen only on a CPU with IBRS '
                  '(CPUID.07H:EDX.SPEC_CTRL or CPUID.80000008H:EBX.IBRS)'),
}


class AltSite:
    """One entry of .altinstructions: len bytes at addr are replaced by
    repl_len bytes at repl when feature is set (flags: ALT_FLAG_NOT, ...)."""
    __slots__ = ('addr', 'len', 'feature', 'flags', 'repl', 'repl_len')

    def __init__(self, addr, length, feature, flags, repl, repl_len):
        self.addr, self.len, self.feature, self.flags = addr, length, feature, flags
        self.repl, self.repl_len = repl, repl_len

    @property
    def end(self):
        return self.addr + self.len

    def __repr__(self):
        return '<alt %x+%d feature %d*32+%d>' % (self.addr, self.len, self.feature // 32,
                                                self.feature % 32)


def elf_sections(data):
    """ELF64 little-endian image -> {name: (address, file offset, size)}."""
    if data[:4] != b'\x7fELF' or data[4] != 2 or data[5] != 1:
        raise LabError('not a little-endian ELF64 file')
    shoff, = struct.unpack_from('<Q', data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', data, 0x3a)
    hdrs = [struct.unpack_from('<IIQQQQ', data, shoff + i * shentsize) for i in range(shnum)]
    strtab = hdrs[shstrndx][4]
    out = {}
    for name, _typ, _flags, addr, off, size in hdrs:
        n = data[strtab + name:data.index(b'\0', strtab + name)].decode('latin1')
        out[n] = (addr, off, size)
    return out


def parse_altinstructions(blob, base):
    """The raw .altinstructions section (loaded at base) -> [AltSite]."""
    sites = []
    n = ALT_INSTR.size
    for k in range(0, len(blob) - n + 1, n):
        io, ro, ft, il, rl = ALT_INSTR.unpack_from(blob, k)
        sites.append(AltSite(base + k + io, il, ft & 0xffff, ft >> 16, base + k + 4 + ro, rl))
    return sites


def read_alt_sites(vmlinux, start, end):
    """The alternative sites of vmlinux that patch code in [start, end)."""
    with open(vmlinux, 'rb') as f:
        data = f.read()
    secs = elf_sections(data)
    if '.altinstructions' not in secs:
        return []
    addr, off, size = secs['.altinstructions']
    return [s for s in parse_altinstructions(data[off:off + size], addr)
            if start <= s.addr < end]


def feature_gates(sites, static_insns):
    """Sites of the form ALTERNATIVE "jmp 1f", "", FEATURE: the original is a
    jump over the code that follows, the replacement empty, so that code
    runs only when FEATURE is set.  -> [(site, jump target)]"""
    by_addr = {i.addr: i for i in static_insns}
    gates = []
    for s in sites:
        if s.flags & ALT_FLAG_NOT or s.repl_len:
            continue
        ins = by_addr.get(s.addr)
        if ins is not None and ins.is_jmp() and ins.target is not None and \
                ins.target > s.end and ins.size == s.len:
            gates.append((s, ins.target))
    return gates


def padding_of(L, x):
    """If x is int3 fill after an unconditional jump over it in layout L (what
    the alternatives patcher writes into a site longer than its code: a JMP
    and INT3 up to the site's end), return that jump, else None."""
    ins = L.by_addr.get(x)
    if ins is None or ins.mnem != 'int3':
        return None
    k = L.insns.index(ins)
    while k > 0 and L.insns[k - 1].mnem == 'int3':
        k -= 1
    if k == 0:
        return None
    j = L.insns[k - 1]
    if j.is_jmp() and j.target is not None and j.target > x:
        return j
    return None


def exclusions(dead, layouts, gates, unreachable, fmt):
    """The addresses of dead that no boot can execute, with the reason.

    dead: instruction addresses that are not reachable in any layout (boot)
    run and were not covered.  layouts: the Layout of every boot run.  gates:
    feature_gates().  unreachable: {feature bit: why no boot can set it}
    (confirmed against QEMU).  An address is excluded when, in every layout
    that has an instruction there, it is int3 fill behind a jump over it;
    or when it lies behind a feature gate whose jump stayed in the code of
    every boot and whose feature no boot can set.  -> {address: reason}
    """
    out = {}
    for x in sorted(dead):
        have = [L for L in layouts if x in L.by_addr]
        if not have:
            continue
        jumps = [padding_of(L, x) for L in have]
        if all(jumps):
            j = jumps[0]
            out[x] = 'int3 fill after the unconditional jump at %s to %s (alternatives ' \
                'padding): never executed' % (fmt(j.addr), fmt(j.target))
            continue
        for site, target in gates:
            if not site.end <= x < target or site.feature not in unreachable:
                continue
            kept = all(L.by_addr.get(site.addr) is not None and
                       L.by_addr[site.addr].is_jmp() and
                       L.by_addr[site.addr].target == target for L in layouts)
            if not kept:
                continue
            name, _props, _what = UNREACHABLE_FEATURES[site.feature]
            out[x] = 'behind ALTERNATIVE "jmp %s", "", X86_FEATURE_%s at %s (the jump is ' \
                'in every boot\'s code); %s' % (fmt(target), name, fmt(site.addr),
                                                unreachable[site.feature])
            break
    return out


def qemu_cpu_props(cpu, props, qemu=vm.QEMU):
    """Ask QEMU (TCG) for -cpu cpu with props switched on; returns
    ({prop: whether the vCPU has it}, QEMU's warnings)."""
    d = tempfile.mkdtemp(prefix='windows-cpu-')
    sock = os.path.join(d, 'qmp.sock')
    cmd = [qemu, '-accel', 'tcg', '-cpu', cpu + ''.join(',+' + p for p in props),
           '-nodefaults', '-display', 'none', '-S', '-qmp', 'unix:%s,server=on,wait=off' % sock]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    got = {}
    try:
        q = vm.QMP(sock)
        path = q.cmd('query-cpus-fast')[0]['qom-path']
        for p in props:
            got[p] = bool(q.cmd('qom-get', path=path, property=p))
        q.close()
    finally:
        proc.kill()
        err = proc.communicate(timeout=30)[1]
        shutil.rmtree(d, ignore_errors=True)
    return got, [l.split('warning: ', 1)[-1] for l in err.splitlines() if 'warning' in l]


def unreachable_features(cpu, probe=qemu_cpu_props):
    """{feature bit: reason} for the UNREACHABLE_FEATURES this QEMU cannot
    offer, and notes on those it can (their code is then not excluded)."""
    props = sorted({p for _n, ps, _w in UNREACHABLE_FEATURES.values() for p in ps})
    try:
        got, warnings = probe(cpu, props)
    except (OSError, EOFError, ValueError, RuntimeError, subprocess.SubprocessError) as e:
        return {}, ['QEMU CPU probe failed (%s): nothing excluded behind a feature' % e]
    out, notes = {}, []
    for bit, (name, ps, what) in sorted(UNREACHABLE_FEATURES.items()):
        on = [p for p in ps if got.get(p, True)]
        if on:
            notes.append('QEMU offers %s: X86_FEATURE_%s is reachable, add a boot that sets '
                         'it' % (','.join(on), name))
            continue
        out[bit] = 'X86_FEATURE_%s needs %s, which QEMU TCG does not offer' % (name, what)
        notes.append('QEMU: -cpu %s,%s gives %s: no boot can set X86_FEATURE_%s%s' % (
            cpu, ','.join('+' + p for p in ps), ' '.join('%s=off' % p for p in ps), name,
            ''.join(' ("%s")' % w for w in warnings if any('.%s ' % p in w for p in ps))))
    return out, notes


def symbolize(addr, symtab):
    """symtab: sorted [(address, name)] -> 'name+0xoff' (or hex)."""
    lo, hi = 0, len(symtab)
    while lo < hi:
        mid = (lo + hi) // 2
        if symtab[mid][0] <= addr:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return '%#x' % addr
    base, name = symtab[lo - 1]
    off = addr - base
    if off > 0x100000:
        return '%#x' % addr
    return '%s+%#x' % (name, off) if off else name


class Expect:
    """Expected outcome of one injection scenario.

    deliveries: where each injected NMI is taken, in order: 'here' (at the
    instruction it was injected on), an address, 'user-ctx' (the outer's
    interrupted user context), 'kernel-outside' (kernel mode, outside
    asm_exc_nmi) -- the outer's own delivery is not listed.
    effect: 'latched', 'nested', 'ignored', 'first', 'c-latch' (for the report)
    d: expected counter deltas over the whole scenario.
    redirect: for an NMI taken at once: True if it must redirect the outer's
    working frame to nmi_repeat, False if it must leave it alone, None when
    the outer is not on the IST path.
    """

    def __init__(self, effect, deliveries, nmi, nested=0, repeats=0, latched=0,
                 redirect=None):
        self.effect = effect
        self.deliveries = deliveries
        self.d = {'nmi': nmi, 'nested': nested, 'repeats': repeats, 'latched': latched}
        self.redirect = redirect

    def __repr__(self):
        return 'Expect(%s, %s, %s)' % (self.effect, self.deliveries, self.d)


def expect_for(variant, addr, layout, knob, masked):
    """The outcome the entry code prescribes (see the module docstring).

    masked: whether NMIs are still masked by the hardware when the outer
    (or, for the nested variants, the nested NMI) is at addr; the caller
    derives it from the trace of the path (instructions before the unmask
    point), so it is a property of the code, not of the observation.
    """
    L = layout
    variant = base_variant(variant)
    if variant in ('kernel', 'kernel-gap'):
        if masked:
            if knob:
                return Expect('latched', [L.label1], nmi=2, nested=1, repeats=1)
            return Expect('latched', ['kernel-ctx'], nmi=2)
        return Expect('nested', ['here'], nmi=2, nested=1, repeats=1, redirect=True)
    if variant == 'repeat':
        # Prelude: a nested NMI at label1 (redirect, +1 nested, +1 repeat).
        if L.nmi_repeat <= addr < L.nmi_repeat_end:
            return Expect('ignored', ['here', 'here'], nmi=2, nested=1, repeats=1,
                          redirect=False)
        return Expect('nested', ['here', 'here'], nmi=3, nested=2, repeats=2, redirect=True)
    if variant == 'nested':
        return Expect('latched', ['here', L.label1], nmi=2, nested=2, repeats=1)
    if variant == 'nested-final':
        return Expect('latched', ['here', L.final], nmi=2, nested=2, repeats=1)
    if variant == 'nested-repeat':
        return Expect('latched', ['here', 'here', L.nmi_repeat], nmi=2, nested=1, repeats=1)
    if variant == 'user':
        return Expect('latched', ['user-ctx'], nmi=2)
    if variant == 'user-hz':
        if masked:
            return Expect('c-latch', ['kernel-outside'], nmi=2, latched=1)
        return Expect('first', ['here'], nmi=2, redirect=None)
    if variant in ('kernel-int3', 'kernel-pf'):
        if masked:
            return Expect('latched', ['kernel-outside'], nmi=2, nested=1, repeats=1)
        return Expect('nested', ['here'], nmi=2, nested=1, repeats=1, redirect=True)
    if variant == 'user-int3':
        if masked:
            return Expect('c-latch', ['kernel-outside'], nmi=2, latched=1)
        return Expect('c-latch', ['here'], nmi=2, latched=1, redirect=None)
    if variant == 'user-pf':
        if masked:
            return Expect('c-latch', ['kernel-outside'], nmi=2, latched=1)
        return Expect('c-latch', ['here'], nmi=2, latched=1, redirect=None)
    raise ValueError(variant)


def base_variant(variant):
    """'kernel-gap/pti' -> 'kernel-gap': the same scenario in another boot."""
    return variant.split('/')[0]


def delivery_matches(want, got, ctx):
    """want: an Expect delivery; got: {'rip','cs'}; ctx: {'here','user','kernel', 'range'}."""
    rip, cs = got['rip'], got['cs']
    if want == 'here':
        return rip == ctx['here'] and (cs & 3) == ctx.get('here_cpl', 0)
    if want == 'user-ctx':
        return (cs & 3) == 3 and rip == ctx['outer_rip']
    if want == 'kernel-ctx':
        return (cs & 3) == 0 and rip == ctx['outer_rip']
    if want == 'kernel-outside':
        lo, hi = ctx['range']
        return (cs & 3) == 0 and not lo <= rip < hi
    return (cs & 3) == 0 and rip == want


def judge(exp, obs, ctx):
    """Compare an observation with the expectation; returns a list of reasons.

    obs: {'deliveries': [{'rip','cs','at'}...] (injected NMIs only, in order),
          'delta': {'nmi','nested','repeats','latched'},
          'problems': [str] (checks done while running: registers, frames),
          'heres': [address of each injection]}
    """
    reasons = list(obs.get('problems', []))
    dl = obs['deliveries']
    want = exp.deliveries
    if len(dl) != len(want):
        reasons.append('%d NMI deliveries after the outer, expected %d (%s)' % (
            len(dl), len(want), ', '.join(ctx['fmt'](d['rip']) for d in dl) or 'none'))
    for i, (w, d) in enumerate(zip(want, dl)):
        c = dict(ctx)
        c['here'] = obs['heres'][i] if i < len(obs['heres']) else None
        c['here_cpl'] = obs.get('here_cpl', [0] * len(want))[i] \
            if i < len(obs.get('here_cpl', [])) else 0
        if not delivery_matches(w, d, c):
            reasons.append('NMI #%d taken at %s (cs %#x), expected %s' % (
                i + 1, ctx['fmt'](d['rip']), d['cs'],
                w if isinstance(w, str) else ctx['fmt'](w)))
    for k, v in exp.d.items():
        got = obs['delta'].get(k)
        if got != v:
            reasons.append('%s %+d, expected %+d' % (k, got if got is not None else 0, v))
    return reasons


def sample_addresses(classified, n):
    """Deterministic subset of n addresses, spread over the regions.

    classified: [(address, region)] in address order.  Round robin over the
    regions in order; inside a region, both ends first, then the middle, the
    quarters and so on, so that each region contributes its first and last
    instruction before anything else.
    """
    if n <= 0:
        return []
    by_region = {}
    order = []
    for a, r in classified:
        if r not in by_region:
            by_region[r] = []
            order.append(r)
        by_region[r].append(a)

    def spread(lst):
        # Both ends, then the middle, then the quarters, ...
        m = len(lst)
        idx, seen = [], set()

        def add(p):
            if 0 <= p < m and p not in seen:
                seen.add(p)
                idx.append(p)
        add(0)
        add(m - 1)
        k = 2
        while len(idx) < m and k <= 2 * m:
            for j in range(1, k, 2):
                add(j * (m - 1) // k)
            k *= 2
        for p in range(m):
            add(p)
        return [lst[p] for p in idx]

    queues = {r: spread(v) for r, v in by_region.items()}
    out = []
    while len(out) < n and any(queues.values()):
        for r in order:
            if queues[r] and len(out) < n:
                out.append(queues[r].pop(0))
    return sorted(out)


def parse_regs_xml(docs):
    """[(name, bits)] from QEMU's target description (a list of XML texts in
    document order; comments are ignored)."""
    regs = []
    for doc in docs:
        doc = re.sub(r'<!--.*?-->', '', doc, flags=re.S)
        for m in re.finditer(r'<reg\s+([^>]*)/?>', doc):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if 'name' in attrs and 'bitsize' in attrs:
                regs.append((attrs['name'], int(attrs['bitsize'])))
    return regs


def decode_g(hexstr, layout):
    """'g' packet payload -> {name: int} for registers up to 64 bits."""
    data = bytes.fromhex(hexstr)
    out = {}
    off = 0
    for name, bits in layout:
        n = bits // 8
        if off + n > len(data):
            break
        if bits <= 64:
            out[name] = int.from_bytes(data[off:off + n], 'little')
        off += n
    return out


def parse_stop(reply):
    """Stop reply -> ('signal', n) / ('exited', n) / ('other', text)."""
    if reply[:1] in ('T', 'S') and len(reply) >= 3:
        return ('signal', int(reply[1:3], 16))
    if reply[:1] in ('W', 'X'):
        return ('exited', int(reply[1:3] or '0', 16))
    return ('other', reply)


def frame(vals):
    return {'rip': vals[0], 'cs': vals[1], 'rflags': vals[2], 'rsp': vals[3], 'ss': vals[4]}


def regs_diff(a, b, names):
    return ['%s %#x -> %#x' % (n, a[n], b[n]) for n in names
            if n in a and n in b and a[n] != b[n]]


# ---------------------------------------------------------------------------
# GDB remote protocol client (QEMU gdbstub on a unix socket).
# ---------------------------------------------------------------------------

class Gdb:
    def __init__(self, path, timeout=30.0, running=False):
        """running: the VM runs (QEMU without -S): stop it first; QEMU drops
        the byte that stops it and sends a stop reply."""
        try:
            self.sock = vm.connect_unix(path, timeout)
        except OSError:
            raise LabError('gdbstub %s: no connection' % path)
        self.buf = b''
        self.packets = 0
        if running:
            self.interrupt()
            kind = parse_stop(self.recv(30))
            if kind[0] != 'signal':
                raise LabError('gdbstub: no stop reply (%s)' % (kind,))
        self.cmd('qSupported:xmlRegisters=i386')
        self.layout = parse_regs_xml(self._xml_docs('target.xml', set()))
        if not any(n == 'rip' for n, _ in self.layout):
            raise LabError('gdbstub: no x86-64 register description')
        self.phys = self.cmd('Qqemu.PhyMemMode:1') == 'OK'
        self._sstep = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _xml_docs(self, name, seen):
        if name in seen:
            return []
        seen.add(name)
        doc = ''
        while True:
            r = self.cmd('qXfer:features:read:%s:%x,800' % (name, len(doc)))
            if not r or r[0] not in 'ml':
                raise LabError('qXfer %s: %r' % (name, r[:40]))
            doc += r[1:]
            if r[0] == 'l':
                break
        docs = [doc]
        for inc in re.findall(r'<xi:include\s+href="([^"]+)"', re.sub(r'<!--.*?-->', '', doc,
                                                                       flags=re.S)):
            docs += self._xml_docs(inc, seen)
        return docs

    def _raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise LabError('gdbstub: %s (QEMU gone?)' % e)

    def interrupt(self):
        self._raw(b'\x03')

    def send(self, payload):
        data = payload.encode('latin1')
        self._raw(b'$' + data + b'#%02x' % (sum(data) & 0xff))
        self.packets += 1

    def recv(self, timeout=60.0):
        self.sock.settimeout(timeout)
        while True:
            i = self.buf.find(b'$')
            if i >= 0:
                j = self.buf.find(b'#', i)
                if j >= 0 and len(self.buf) >= j + 3:
                    data = self.buf[i + 1:j]
                    self.buf = self.buf[j + 3:]
                    self._raw(b'+')
                    return data.decode('latin1')
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise Stuck('gdbstub: no reply in %.0f s' % timeout)
            except OSError as e:
                raise LabError('gdbstub: %s (QEMU gone?)' % e)
            if not d:
                raise LabError('gdbstub: connection closed (QEMU gone?)')
            self.buf += d

    def cmd(self, payload, timeout=60.0):
        self.send(payload)
        return self.recv(timeout)

    def monitor(self, line):
        self.send('qRcmd,' + line.encode().hex())
        out = ''
        while True:
            r = self.recv()
            if r.startswith('O') and r != 'OK':
                out += bytes.fromhex(r[1:]).decode('latin1', 'replace')
                continue
            if r != 'OK':
                raise LabError('monitor %s: %s' % (line, r))
            return out

    def sstep(self, flags):
        if self._sstep != flags:
            if self.cmd('Qqemu.sstep=%#x' % flags) != 'OK':
                raise LabError('Qqemu.sstep not supported')
            self._sstep = flags

    def regs(self):
        return decode_g(self.cmd('g'), self.layout)

    def read(self, addr, n):
        """Memory in the gdbstub's current mode (physical when self.phys)."""
        out = b''
        while n > 0:
            k = min(n, 0x400)
            r = self.cmd('m%x,%x' % (addr, k))
            if not r or r[0] == 'E':
                raise LabError('read %#x: %s' % (addr, r))
            out += bytes.fromhex(r)
            addr += k
            n -= k
        return out

    def write(self, addr, data):
        r = self.cmd('M%x,%x:%s' % (addr, len(data), data.hex()))
        if r != 'OK':
            raise LabError('write %#x: %s' % (addr, r))

    def bp(self, addr, on=True):
        r = self.cmd('%s0,%x,1' % ('Z' if on else 'z', addr))
        if r != 'OK':
            raise LabError('breakpoint %#x: %s' % (addr, r))

    def step(self):
        kind = parse_stop(self.cmd('s', 30))
        if kind[0] != 'signal':
            raise LabError('step: %s' % (kind,))

    def cont(self, timeout):
        """Continue; True when stopped by a breakpoint, False on timeout."""
        self.send('c')
        try:
            r = self.recv(timeout)
        except Stuck:
            self.interrupt()
            r = self.recv(30)
            kind = parse_stop(r)
            if kind == ('signal', 5):       # hit just as we interrupted
                return True
            return False
        kind = parse_stop(r)
        if kind[0] == 'exited':
            raise LabError('guest exited (%s)' % r)
        return True

    def run_for(self, seconds):
        """Let the guest run for a while, then stop it."""
        self.send('c')
        try:
            r = self.recv(seconds)
            return parse_stop(r)
        except Stuck:
            self.interrupt()
            return parse_stop(self.recv(30))


def read_symbols(vmlinux):
    """vmlinux's symbols: ({name: (address, size)}, sorted [(address, name)]
    of the kernel text and data for symbolize())."""
    out = subprocess.run(['nm', '-S', vmlinux], check=True, capture_output=True,
                         text=True).stdout
    syms = parse_nm(out)
    symtab = sorted((v[0], k) for k, v in syms.items()
                    if v[0] >= 0xffffffff80000000 and not k.startswith('__pfx_')
                    and not k.startswith('.L'))
    return syms, symtab


def read_banner(vmlinux, syms):
    """The first 48 bytes of linux_banner in vmlinux, to check that a running
    kernel is the one whose symbols we use."""
    banner = syms['linux_banner'][0]
    dump = subprocess.run(['objdump', '-s', '--start-address=%#x' % banner,
                           '--stop-address=%#x' % (banner + 48), vmlinux],
                          check=True, capture_output=True, text=True).stdout
    hexes = ''.join(''.join(l.split()[1:5]) for l in dump.splitlines()
                    if re.match(r'^ [0-9a-f]+ ', l))
    data = bytes.fromhex(hexes)[:48]
    if not data.startswith(b'Linux version'):
        raise LabError('cannot read linux_banner from vmlinux')
    return data


# ---------------------------------------------------------------------------
# The guest: boot, memory, stops.
# ---------------------------------------------------------------------------

BOOTS = {
    'idle': {'plan': 'smoke', 'marker': b"lab: running plan 'smoke'",
             'append': ['lab.seconds=100000000', 'lab.unmask_early=1']},
    'user': {'plan': 'ksft', 'marker': b'lab: [1/1] nmi_regs_64',
             'append': ['lab.tests=nmi_regs_64', 'lab.test_timeout=100000000',
                        'NMI_TEST_SECONDS=100000000', 'lab.unmask_early=1']},
    'hazard': {'plan': 'torture', 'marker': b'nmi_torture: start:',
               'append': ['lab.torture=duration=0:ipi_rate=0:ext_rate=0:hazards=int3,pf',
                          'lab.unmask_early=1']},
}
# The same with page table isolation forced on and without FSGSBASE: the
# alternatives then patch in the CR3 switches and the SWAPGS test of the
# NMI exit, which the default boot leaves as dead code.
BOOTS['hazard-pti'] = dict(BOOTS['hazard'],
                           append=BOOTS['hazard']['append'] + ['pti=on', 'nofsgsbase'])
# The user boot with call depth tracking (retbleed=stuff needs
# spectre_v2=retpoline, and ",force" because QEMU's TCG CPU does not have
# the RETBleed bug): UNTRAIN_RET in the user path then resets the RSB call
# depth (xor, bts, mov to __x86_call_depth) where the default boot has a
# jump over INT3 padding.  Patching every call site costs about 0.5 s of
# guest time at boot, so a sample (make check) leaves this boot out.
BOOTS['user-stuff'] = dict(BOOTS['user'],
                           append=BOOTS['user']['append'] + ['retbleed=stuff,force',
                                                             'spectre_v2=retpoline'])
DEFAULT_BOOTS = ('idle', 'user', 'hazard', 'hazard-pti', 'user-stuff')
SAMPLE_BOOTS = ('idle', 'user', 'hazard', 'hazard-pti')


class Guest:
    def __init__(self, boot, args, syms, outdir, log):
        self.boot_name = boot
        self.args = args
        self.syms = syms
        self.outdir = outdir
        self.log = log
        self.proc = None
        self.gdb = None
        self.pgd = None
        self.tlb = {}
        self.bps = set()

    # -- lifetime --
    def start(self):
        spec = BOOTS[self.boot_name]
        os.makedirs(self.outdir, exist_ok=True)
        for n in ('console.log', 'results.txt', 'qmp.sock', 'gdb.sock'):
            try:
                os.unlink(os.path.join(self.outdir, n))
            except FileNotFoundError:
                pass
        argv = ['--kernel', self.args.kernel, '--initrd', self.args.initrd,
                '--plan', spec['plan'], '--out', self.outdir, '--cpus', '1', '--gdb']
        if self.args.icount:
            # Not vm.py's --icount (sleep=off): with sleep=off QEMU 7.2 warps
            # the virtual clock to the next timer deadline whenever the vCPU
            # is idle while the VM still counts as running, which is the
            # case for a moment at every gdbstub single step; inside an NMI
            # (timer interrupt pending, nothing re-armed) the next deadline
            # can be hours away (the RTC), and the guest's clock jumps.
            argv += ['--qemu-arg=-icount', '--qemu-arg=shift=0,align=off,sleep=%s' %
                     self.args.icount_sleep, '--qemu-arg=-rtc', '--qemu-arg=clock=vm']
        for a in spec['append']:
            argv += ['--append', a]
        cmd = vm.qemu_command(vm.parse_args(argv), self.outdir)
        with open(os.path.join(self.outdir, 'qemu-cmdline.txt'), 'w') as f:
            f.write(' '.join(cmd) + '\n')
        with open(os.path.join(self.outdir, 'qemu.log'), 'w') as qlog:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog,
                                         stderr=subprocess.STDOUT)
        self.gdb = Gdb(os.path.join(self.outdir, 'gdb.sock'))
        if not self.gdb.phys:
            raise LabError('gdbstub has no Qqemu.PhyMemMode')
        self.gdb.sstep(0x1)
        t0 = time.monotonic()
        self.gdb.send('c')
        con = os.path.join(self.outdir, 'console.log')
        while True:
            time.sleep(0.2)
            try:
                with open(con, 'rb') as f:
                    text = f.read()
            except FileNotFoundError:
                text = b''
            if spec['marker'] in text:
                break
            if self.proc.poll() is not None:
                raise LabError('%s boot: QEMU exited (%s)' % (self.boot_name,
                                                              self.proc.returncode))
            if time.monotonic() - t0 > self.args.boot_timeout:
                raise LabError('%s boot: no %r in %.0f s' % (
                    self.boot_name, spec['marker'].decode(), self.args.boot_timeout))
        time.sleep(0.3)
        self.gdb.interrupt()
        self.gdb.recv(30)
        self.boot_seconds = time.monotonic() - t0
        self._setup_memory()

    def stop(self):
        if self.gdb:
            self.gdb.close()
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- memory: kernel virtual addresses through init_top_pgt, physically --
    def _setup_memory(self):
        self.pgd = self.syms['init_top_pgt'][0] - START_KERNEL_MAP
        banner = self.syms['linux_banner'][0]
        live = self.gdb.read(banner - START_KERNEL_MAP, len(self.args.banner))
        if live != self.args.banner:
            raise LabError('linux_banner differs: vmlinux does not match the running '
                           'kernel (%r)' % live[:60])
        self.pcpu0 = int.from_bytes(self.kread(self.syms['__per_cpu_offset'][0], 8), 'little')

    def v2p(self, va):
        page = va & ~0xfff
        if page in self.tlb:
            return self.tlb[page] | (va & 0xfff)
        table = self.pgd
        for shift in (39, 30, 21, 12):
            idx = (va >> shift) & 0x1ff
            e = int.from_bytes(self.gdb.read(table + idx * 8, 8), 'little')
            if not e & 1:
                raise LabError('%#x not mapped' % va)
            if shift in (30, 21) and e & 0x80:
                mask = (1 << shift) - 1
                pa = (e & 0x000ffffffffff000 & ~mask) | (va & mask)
                self.tlb[page] = pa & ~0xfff
                return pa
            table = e & 0x000ffffffffff000
        self.tlb[page] = table
        return table | (va & 0xfff)

    def kread(self, va, n):
        out = b''
        while n > 0:
            k = min(n, 0x1000 - (va & 0xfff))
            out += self.gdb.read(self.v2p(va), k)
            va += k
            n -= k
        return out

    def kwrite(self, va, data):
        """Write kernel memory (code included: QEMU drops its translations)."""
        if (va & 0xfff) + len(data) > 0x1000:
            raise LabError('kwrite across a page')
        self.gdb.write(self.v2p(va), data)

    def kread64(self, va, count=1):
        data = self.kread(va, 8 * count)
        return [int.from_bytes(data[i:i + 8], 'little') for i in range(0, len(data), 8)]

    # -- breakpoints --
    def set_bps(self, addrs):
        addrs = set(addrs)
        for a in self.bps - addrs:
            self.gdb.bp(a, False)
        for a in addrs - self.bps:
            self.gdb.bp(a, True)
        self.bps = addrs


class ProblemList(list):
    """Problems of one scenario: each distinct message once, at most 12."""

    def append(self, msg):
        if msg not in self and len(self) < 12:
            super().append(msg)


class Scenario:
    """One outer NMI and what is injected into it, run on a Guest."""

    def __init__(self, runner, guest):
        self.R = runner
        self.G = guest
        self.gdb = guest.gdb
        L = runner.layout
        self.L = L
        self.observers = {L.start, L.final}
        self.deliveries = []
        self.ist_ctx = []
        self.final_irets = []
        self.known = {}
        self.regs = None
        self.pending_final = None
        self.problems = ProblemList()

    # -- stepping with observation --
    def refresh(self):
        self.regs = self.gdb.regs()
        return self.regs

    @property
    def pc(self):
        return self.regs['rip']

    def observe(self, prev_pc, prev_frame=None):
        """Called on every arrival; records NMI deliveries and final IRETQs."""
        L, r = self.L, self.regs
        self._retire_final()
        if r['rip'] == L.start and (r['cs'] & 3) == 0:
            fr = frame(self.G.kread64(r['rsp'], 5))
            if prev_pc == L.start and prev_frame == fr:
                return
            top = r['rsp'] + 40
            if self.R.top is None:
                self.R.top = top
            elif top != self.R.top:
                self.problems.append('NMI at %s with stack pointer %#x, not the NMI stack top-40'
                                     % (self.R.fmt(fr['rip']), r['rsp']))
            flag = self.G.kread64(self.R.top - SLOT_FLAG)[0]
            d = dict(fr)
            d['flag'] = flag
            d['regs'] = dict(r)
            self.deliveries.append(d)
            known = self.known.get((fr['rip'], fr['rsp']))
            if known is not None:
                bad = regs_diff(known, r, GPRS_NO_SP)
                if bad:
                    self.problems.append('registers at the NMI taken at %s differ from that '
                                         'context: %s' % (self.R.fmt(fr['rip']), ', '.join(bad)))
                if fr['rflags'] != known['eflags'] or fr['cs'] != known['cs'] or \
                        fr['ss'] != known['ss']:
                    self.problems.append('NMI frame at %s: rflags/cs/ss %#x/%#x/%#x, context '
                                         'has %#x/%#x/%#x' % (
                                             self.R.fmt(fr['rip']), fr['rflags'], fr['cs'],
                                             fr['ss'], known['eflags'], known['cs'],
                                             known['ss']))
            if (fr['cs'] & 3) == 0 and flag == 0 and fr['rip'] != L.final and \
                    not L.nmi_repeat <= fr['rip'] < L.nmi_repeat_end:
                self.ist_ctx.append(fr)
            return
        if r['rip'] == L.final and (r['cs'] & 3) == 0:
            # Checked now; whether the IRETQ went through is known at the
            # next arrival (a nested NMI may interrupt it first).
            top = self.R.top
            work = frame(self.G.kread64(r['rsp'], 5))
            saved = frame(self.G.kread64(top - SAVED_FRAME, 5))
            flag = self.G.kread64(top - SLOT_FLAG)[0]
            if r['rsp'] != top - WORK_FRAME:
                self.problems.append('final IRETQ with rsp %#x, not top-120' % r['rsp'])
            if flag:
                self.problems.append('final IRETQ with "NMI executing" still set')
            if not self.ist_ctx:
                self.problems.append('final IRETQ of an NMI that was not seen entering')
                return
            ctx = self.ist_ctx[-1]
            if saved != ctx:
                self.problems.append('saved frame at the final IRETQ is %s, interrupted '
                                     'context was %s' % (self.R.ffmt(saved), self.R.ffmt(ctx)))
            if work != ctx and not (work['rip'] == L.nmi_repeat and work['cs'] == KERNEL_CS and
                                    work['rsp'] == top - SAVED_FRAME and
                                    work['ss'] == KERNEL_DS):
                self.problems.append('final IRETQ goes to %s, neither the interrupted context '
                                     '%s nor nmi_repeat' % (self.R.ffmt(work), self.R.ffmt(ctx)))
            self.pending_final = (r['rsp'], work == ctx, work['rip'])

    def _retire_final(self):
        """The IRETQ at nmi_final_iret we stopped on last time has executed
        unless we are now in a nested NMI that interrupted it."""
        if self.pending_final is None:
            return
        r, L = self.regs, self.L
        if r['rip'] == L.start and (r['cs'] & 3) == 0:
            fr = frame(self.G.kread64(r['rsp'], 5))
            if fr['rip'] == L.final and fr['rsp'] == self.pending_final[0]:
                self.pending_final = None       # interrupted: it will be seen again
                return
        if r['rip'] == L.final and r['rsp'] == self.pending_final[0]:
            return                              # still there (stepped in place?)
        _, to_ctx, rip = self.pending_final
        self.pending_final = None
        self.final_irets.append(rip)
        if to_ctx and self.ist_ctx:
            self.ist_ctx.pop()

    def step(self):
        prev = self.pc
        prev_frame = None
        if prev == self.L.start:
            prev_frame = frame(self.G.kread64(self.regs['rsp'], 5))
        self.gdb.step()
        self.refresh()
        self.observe(prev, prev_frame)

    def run_until(self, pred, targets, what, timeout=None):
        """Run (observing) until pred() holds at a stop.  targets: addresses
        to break on besides the observers."""
        timeout = timeout or self.R.args.step_timeout
        self.G.set_bps(self.observers | set(targets))
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise Stuck('did not reach %s (at %s)' % (what, self.R.fmt(self.pc)))
            if self.pc in self.G.bps:
                self.step()         # single-stepping overrides breakpoints
                continue
            if not self.gdb.cont(max(1.0, deadline - time.monotonic())):
                self.refresh()
                raise Stuck('did not reach %s (stopped at %s)' % (what, self.R.fmt(self.pc)))
            self.refresh()
            self.observe(None)

    def step_noirq(self):
        """One step with interrupts and NMIs held off (Qqemu.sstep=0x7)."""
        self.gdb.sstep(0x7)
        try:
            self.step()
        finally:
            self.gdb.sstep(0x1)

    def finish(self, p0):
        """Run until the interrupted context p0 is resumed for the last time.

        Each return is caught on the IRETQ itself and stepped with interrupts
        held off, so the registers are compared at the very instruction
        boundary the IRETQ returns to, before a timer interrupt (or a
        context switch behind it) can change anything.  Then one step with
        interrupts allowed: a pending NMI is taken before anything else, and
        then its return is awaited the same way.  Returns the number of
        returns to p0 seen."""
        sites = self.R.iret_sites
        ctx = frame([p0['rip'], p0['cs'], p0['eflags'], p0['rsp'], p0['ss']])
        what = 'return to the interrupted context %s' % self.R.fmt(p0['rip'])

        def at_return():
            if self.pc not in sites:
                return False
            fr = frame(self.G.kread64(self.regs['rsp'], 5))
            return (fr['rip'], fr['cs'], fr['rsp']) == (ctx['rip'], ctx['cs'], ctx['rsp'])

        returns = 0
        while True:
            self.run_until(at_return, sites, what)
            fr = frame(self.G.kread64(self.regs['rsp'], 5))
            if fr != ctx:
                self.problems.append('IRETQ to the interrupted context with frame %s rflags %#x '
                                     'ss %#x, expected rflags %#x ss %#x' % (
                                         self.R.ffmt(fr), fr['rflags'], fr['ss'],
                                         ctx['rflags'], ctx['ss']))
            self.step_noirq()
            returns += 1
            bad = regs_diff(p0, self.regs, CONTEXT_REGS)
            if bad:
                self.problems.append('interrupted context registers changed (return %d): %s'
                                     % (returns, ', '.join(bad)))
            n = len(self.deliveries)
            self.step()         # interrupts allowed: a pending NMI comes first
            if len(self.deliveries) == n:
                return returns
            if returns > 8:
                raise Stuck('NMIs keep coming at %s' % self.R.fmt(p0['rip']))

    def at(self, addr, rsp=None):
        return lambda: self.pc == addr and (rsp is None or self.regs['rsp'] == rsp)

    def inject(self):
        """HMP nmi, then one step with interrupts allowed.  True if taken here."""
        here = self.pc
        before = dict(self.regs)
        self.known[(here, before['rsp'])] = before
        fr0 = frame(self.G.kread64(before['rsp'], 5)) if here == self.L.start else None
        n0 = len(self.deliveries)
        self.gdb.monitor('nmi')
        for _ in range(4):
            self.step()
            if len(self.deliveries) > n0:
                return True
            if self.pc != here or self.regs != before:
                return False
            if fr0 is not None and frame(self.G.kread64(self.regs['rsp'], 5)) != fr0:
                return True
        raise Stuck('single step at %s makes no progress' % self.R.fmt(here))

    def slots(self):
        top = self.R.top
        v = self.G.kread64(top - SAVED_FRAME, 13)
        # top-160 .. top-64: saved(5) work(5) unmask repeats nested
        return {'saved': frame(v[0:5]), 'work': frame(v[5:10]), 'unmask': v[10],
                'repeats': v[11], 'nested': v[12],
                'flag': self.G.kread64(top - SLOT_FLAG)[0]}


class Runner:
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

    def fmt(self, a):
        if a is None:
            return '?'
        return symbolize(a, self.symtab)

    def ffmt(self, fr):
        return '%s cs %#x rsp %#x' % (self.fmt(fr['rip']), fr['cs'], fr['rsp'])

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
        start, size = self.syms['exc_nmi']
        self.nmi_count_off = nmi_count_offset(subprocess.run(
            ['objdump', '-d', '--no-show-raw-insn', '--start-address=%#x' % start,
             '--stop-address=%#x' % (start + size), a.vmlinux],
            check=True, capture_output=True, text=True).stdout)

    def live_layout(self, guest):
        start, size = self.syms['asm_exc_nmi']
        code = guest.kread(start, size)
        insns = disassemble_bytes(code, start)
        self.layout = Layout(insns, self.syms)
        st = {i.addr for i in self.static_insns}
        lv = {i.addr for i in insns}
        self.static_only = sorted(st - lv)
        self.live_only = sorted(lv - st)

    # -- counters --
    def counters(self, guest):
        st = guest.kread64(guest.pcpu0 + self.syms['nmi_stats'][0], len(NMI_STATS_FIELDS))
        c = dict(zip(NMI_STATS_FIELDS, st))
        c['nmi'] = int.from_bytes(guest.kread(guest.pcpu0 + self.syms['irq_stat'][0] +
                                              self.nmi_count_off, 4), 'little')
        return c

    # -- anchors: the interrupted context P0 --
    def anchor(self, guest, context, fresh=False):
        """Stop the guest in an outer context: kernel idle (default_idle_call)
        in the idle boot, else any user-mode stop, or any kernel-mode stop
        with interrupts enabled outside the NMI entry.  Unless fresh, the
        current stop is kept when it qualifies (after an injection the guest
        stands one instruction past the previous context)."""
        gdb = guest.gdb
        guest.set_bps(set())
        if context == 'kernel' and guest.boot_name == 'idle':
            guest.set_bps({self.syms['default_idle_call'][0]})
            if not gdb.cont(20):
                raise LabError('idle: default_idle_call not reached')
            guest.set_bps(set())
            r = gdb.regs()
            if (r['cs'] & 3) != 0:
                raise LabError('idle anchor not in kernel mode')
            return r
        if context == 'gap':
            # The first instruction of the SYSCALL entry: kernel mode with the
            # user's GS base and RSP (nmi_syscall_rsp_64 points RSP into the
            # NMI stack there, the CVE-2015-3291 setting).  Prefer such a stop.
            entry = self.syms['entry_SYSCALL_64'][0]
            guest.set_bps({entry})
            r = None
            for i in range(200):
                if not gdb.cont(20):
                    raise LabError('entry_SYSCALL_64 not reached')
                r = gdb.regs()
                nmi_stack = self.top is not None and \
                    self.top - 0x2000 <= r['rsp'] < self.top
                if nmi_stack or i >= 50:
                    break
                gdb.step()
            guest.set_bps(set())
            self.log('anchor gap: rsp %#x' % r['rsp'])
            return r
        want = 3 if context == 'user' else 0
        L = self.layout

        def fits(r):
            if (r['cs'] & 3) != want:
                return False
            if want == 0:
                return bool(r['eflags'] & 0x200) and not L.start <= r['rip'] < L.end
            return r['rip'] < 0x800000000000
        if not fresh:
            r = gdb.regs()
            if fits(r):
                return r
        for _ in range(400):
            gdb.run_for(0.02)
            r = gdb.regs()
            if fits(r):
                self.log('anchor %s: %s rsp %#x' % (context, self.fmt(r['rip']), r['rsp']))
                return r
        raise LabError('%s: no %s-mode stop found' % (guest.boot_name, context))

    # -- tracing the path of a variant --
    def trace(self, guest, variant):
        """Run the variant's prelude and record the asm_exc_nmi addresses of
        the path of interest, in order, until that path is left."""
        S = Scenario(self, guest)
        L = self.layout
        name, variant = variant, base_variant(variant)
        S.refresh()
        p0 = dict(S.regs)
        if not S.inject():
            raise LabError('%s: outer NMI not taken' % name)
        end_pred = self.prelude(S, variant, p0)
        order = []
        guest.set_bps(S.observers)
        deadline = time.monotonic() + 120
        while end_pred is None or not end_pred():
            if time.monotonic() > deadline:
                raise Stuck('trace %s did not end' % name)
            pc = S.pc
            if not L.start <= pc < L.end:
                raise LabError('trace %s left asm_exc_nmi at %s' % (variant, self.fmt(pc)))
            order.append(pc)
            ins = L.by_addr.get(pc)
            if ins is None:
                raise LabError('trace: %#x is not an instruction boundary' % pc)
            if pc == L.final and end_pred is None and \
                    frame(guest.kread64(S.regs['rsp'], 5))['rip'] == p0['rip']:
                break           # the outer's last IRETQ: finish() takes it
            if ins.is_call():
                # paranoid_entry returns with the registers pushed: no
                # stack pointer condition (nothing nests while tracing).
                S.run_until(S.at(pc + ins.size), [pc + ins.size], 'return from %s' % ins.text)
                continue
            if ins.is_jmp() and not L.start <= (ins.target or 0) < L.end:
                break           # the user path's exit: finish() takes it
            S.step()
        S.finish(p0)
        if S.problems:
            raise LabError('trace %s: %s' % (variant, '; '.join(S.problems)))
        return order

    def prelude(self, S, variant, p0):
        """Bring the outer NMI (just delivered, S at asm_exc_nmi) to where the
        variant's target path starts; returns the predicate that ends that path."""
        L = self.layout
        variant = base_variant(variant)
        if variant in ('kernel', 'kernel-gap', 'user', 'user-hz', 'kernel-int3', 'kernel-pf',
                       'user-int3', 'user-pf'):
            return None         # the path ends with the outer's return
        S.run_until(S.at(L.label1), [L.label1], 'label 1 (after the unmask knob)')
        if variant == 'nested-final':
            S.run_until(S.at(L.final), [L.final], 'nmi_final_iret')
        rsp1 = S.regs['rsp']
        pc1 = S.pc
        if not S.inject():
            raise Stuck('prelude: NMI at %s not taken (NMIs still masked?)' % self.fmt(pc1))
        if variant in ('nested', 'nested-final'):
            return S.at(pc1, rsp1)
        S.run_until(S.at(L.nmi_repeat), [L.nmi_repeat], 'nmi_repeat (the repeat pass)')
        if variant == 'repeat':
            return None
        rsp2 = S.regs['rsp']
        if not S.inject():
            raise Stuck('prelude: NMI at nmi_repeat not taken')
        return S.at(L.nmi_repeat, rsp2)

    # -- one injection --
    def inject_at(self, guest, variant, target, masked):
        """target: an address of asm_exc_nmi or a symbol name (trap windows)."""
        L = self.layout
        S = Scenario(self, guest)
        t0 = time.monotonic()
        S.refresh()
        p0 = dict(S.regs)
        c0 = self.counters(guest)
        rec = {'variant': variant, 'boot': guest.boot_name}
        addr = self.syms[target][0] if isinstance(target, str) else target
        rec['addr'] = addr
        rec['where'] = self.fmt(addr)
        exp = expect_for(variant, addr, L, self.knob, masked)
        rec['expect'] = exp.effect
        heres = []
        cpls = []
        try:
            if not S.inject():
                raise Stuck('outer NMI not taken at %s' % self.fmt(p0['rip']))
            outer = S.deliveries[0]
            if (outer['rip'], outer['cs'], outer['rsp'], outer['ss']) != \
                    (p0['rip'], p0['cs'], p0['rsp'], p0['ss']) or outer['rflags'] != p0['eflags']:
                S.problems.append('outer NMI frame %s does not match the interrupted context'
                                  % self.ffmt(outer))
            npre = len(S.deliveries)
            self.prelude(S, variant, p0)
            heres += [d['rip'] for d in S.deliveries[npre:]]
            cpls += [d['cs'] & 3 for d in S.deliveries[npre:]]
            if S.pc != addr:
                # The first hit of addr from here is the target (see variants).
                S.run_until(S.at(addr), [addr], self.fmt(addr))
            ra = dict(S.regs)
            sl0 = S.slots()
            heres.append(addr)
            cpls.append(ra['cs'] & 3)
            taken = S.inject()
            rec['taken'] = taken
            if taken:
                d = S.deliveries[-1]
                if (d['rip'], d['rsp'], d['cs']) != (addr, ra['rsp'], ra['cs']):
                    S.problems.append('NMI taken with frame %s, expected %s rsp %#x' % (
                        self.ffmt(d), self.fmt(addr), ra['rsp']))
                S.run_until(S.at(addr, ra['rsp']), [addr],
                            'return of the nested NMI to %s' % self.fmt(addr))
                bad = regs_diff(ra, S.regs, CONTEXT_REGS)
                if bad:
                    S.problems.append('registers after the nested NMI returned: %s' %
                                      ', '.join(bad))
                if exp.redirect is not None:
                    sl1 = S.slots()
                    redirected = (sl1['work']['rip'] == L.nmi_repeat and
                                  sl1['work']['rsp'] == self.top - SAVED_FRAME and
                                  sl1['work']['cs'] == KERNEL_CS and
                                  sl1['work']['ss'] == KERNEL_DS)
                    if exp.redirect and not redirected:
                        S.problems.append('working frame not redirected to nmi_repeat: %s'
                                          % self.ffmt(sl1['work']))
                    if exp.redirect and sl1['nested'] != sl0['nested'] + 1:
                        S.problems.append('nested slot %d -> %d, expected +1' % (
                            sl0['nested'], sl1['nested']))
                    if not exp.redirect and (sl1['work'] != sl0['work'] or
                                             sl1['nested'] != sl0['nested']):
                        S.problems.append('an ignored NMI changed the working frame or the '
                                          'nested count')
                    if sl1['saved'] != sl0['saved']:
                        S.problems.append('the nested NMI changed the saved frame: %s -> %s' % (
                            self.ffmt(sl0['saved']), self.ffmt(sl1['saved'])))
                    if base_variant(variant) in ('kernel', 'kernel-gap', 'repeat', 'kernel-int3',
                                   'kernel-pf') and \
                            sl1['saved'] != frame([p0['rip'], p0['cs'], p0['eflags'],
                                                   p0['rsp'], p0['ss']]):
                        S.problems.append('saved frame %s is not the interrupted context' %
                                          self.ffmt(sl1['saved']))
            rec['returns'] = S.finish(p0)
            if S.ist_ctx:
                S.problems.append('%d IST NMI(s) never reached their final IRETQ' %
                                  len(S.ist_ctx))
            sl = S.slots()
            if sl['flag'] or sl['nested'] or sl['repeats']:
                S.problems.append('stack slots left: flag %d nested %d repeats %d' % (
                    sl['flag'], sl['nested'], sl['repeats']))
            stuck = None
        except Stuck as e:
            stuck = str(e)
            S.problems.append('stuck: %s' % e)
        c1 = self.counters(guest)
        delta = {k: c1[k] - c0[k] for k in ('nmi', 'nested', 'repeats', 'latched')}
        delta_all = {k: c1[k] - c0[k] for k in c1 if k != 'longest_ns'}
        obs = {'deliveries': S.deliveries[1:], 'delta': delta, 'problems': S.problems,
               'heres': heres, 'here_cpl': cpls}
        ctx = {'outer_rip': p0['rip'], 'range': (L.start, L.end), 'fmt': self.fmt}
        reasons = judge(exp, obs, ctx)
        rec.update({'ok': not reasons, 'reasons': reasons, 'delta': delta_all,
                    'deliveries': [self.fmt(d['rip']) for d in S.deliveries[:16]],
                    'final_irets': [self.fmt(a) for a in S.final_irets[:16]],
                    'seconds': round(time.monotonic() - t0, 3), 'stuck': stuck,
                    'reboot': bool(stuck) or any('registers' in x or 'slots' in x
                                                 for x in reasons)})
        return rec

    # -- the whole run --
    def variants_of(self, boot):
        if boot == 'hazard-pti':
            return ['kernel/pti', 'user-hz/pti', 'kernel-gap/pti']
        if boot == 'user-stuff':
            return ['user/stuff']
        return {'idle': ['kernel', 'repeat', 'nested', 'nested-final', 'nested-repeat'],
                'user': ['user'],
                'hazard': ['user-hz', 'kernel-int3', 'kernel-pf', 'user-int3', 'user-pf',
                           'kernel-gap']}[boot]

    @staticmethod
    def context_of(variant):
        variant = base_variant(variant)
        if variant == 'kernel-gap':
            return 'gap'
        return 'user' if variant.startswith('user') else 'kernel'

    def new_guest(self, boot):
        g = Guest(boot, self.args, self.syms,
                  os.path.join(self.args.out, '%s-%d' % (boot, self.reboots)), self.log)
        self.reboots += 1
        g.start()
        return g

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
                print('windows: %s boot ready in %.0f s' % (boot, self.guest.boot_seconds),
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
            try:
                self.anchor(self.guest, context)
                if self.top is None:
                    self.learn(self.guest)
                self.knob = self.guest.kread64(self.top - SLOT_UNMASK)[0]
                if not self.knob and base_variant(variant) in ('repeat', 'nested', 'nested-final',
                                                 'nested-repeat'):
                    continue
                self.anchor(self.guest, context)
                targets, masked = self.targets(self.guest, variant)
            except (LabError, Stuck) as e:
                # The path itself could not be run: a failure of the variant.
                print('FAIL %s trace: %s' % (variant, e), flush=True)
                self.vstats[variant] = {'boot': boot, 'path': 0, 'todo': 0}
                self.results.append({'variant': variant, 'boot': boot, 'addr': None,
                                     'where': 'trace', 'ok': False,
                                     'reasons': ['trace: %s' % e]})
                self.retire(self.guest)
                self.guest = self.new_guest(boot)
                self.apply_mutant(self.guest)
                continue
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
            print('windows: variant %-13s %3d injections, %d failed, %.0f s' % (
                variant, len(todo), nfail, time.monotonic() - t0), flush=True)

    def targets(self, guest, variant):
        """The variant's targets (addresses from a trace of its path, or trap
        symbols) and, per target, whether NMIs are masked there."""
        L = self.layout
        name, variant = variant, base_variant(variant)
        if variant in ('kernel-int3', 'kernel-pf', 'user-int3', 'user-pf'):
            sym = 'exc_int3' if variant.endswith('int3') else 'exc_page_fault'
            # Kernel outer: the knob unmasked NMIs before the handler runs.
            # User outer: the int3 is the first trap, the #PF comes after its IRET.
            masked = variant == 'user-int3' or (variant == 'kernel-int3' and not self.knob)
            return [sym], {sym: masked}
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
            call = L.call_exc_nmi_user
            cut = order.index(call) if call in order else len(order)
            for i, x in enumerate(order):
                masked.setdefault(x, i <= cut)
        else:
            for x in order:
                masked[x] = variant in ('nested', 'nested-final', 'nested-repeat', 'user')
        return seen, masked


# The outer contexts issue 6 asks for, and the variants that provide them.
REQUIRED = (
    ('outer NMI from kernel mode', ('kernel', 'kernel-gap')),
    ('outer NMI from user mode', ('user', 'user-hz')),
    ('nested NMI inside an int3 of the handler', ('kernel-int3', 'user-int3')),
    ('nested NMI inside a #PF of the handler', ('kernel-pf', 'user-pf')),
)


def variant_summary(vstats, results):
    """Per variant, in the order run: (name, covered, total, failures, path).

    total: the addresses the variant set out to inject at (in a sample, the
    sampled ones on its path), covered: those with a verdict, failures: the
    failed verdicts (trace, boot and console failures included), path: the
    distinct addresses of its path.  A boot that failed as a whole shows as
    a row of its own with total 0."""
    per = {}
    for rec in results:
        v = per.setdefault(rec['variant'], [set(), 0])
        if rec.get('addr') is not None:
            v[0].add(rec['addr'])
        v[1] += not rec['ok']
    rows = []
    for name in list(vstats) + [v for v in per if v not in vstats]:
        cov, nf = per.get(name, (set(), 0))
        st = vstats.get(name, {})
        rows.append((name, len(cov), st.get('todo', 0), nf, st.get('path', 0)))
    return rows


def required_summary(rows, expected):
    """Per REQUIRED context: (what, variants, covered, total, failures,
    complete).  expected: the variants the boots run should have produced;
    one that did not run leaves its context incomplete."""
    out = []
    by_name = {r[0]: r for r in rows}
    for what, bases in REQUIRED:
        names = [v for v in expected if base_variant(v) in bases]
        sel = [by_name[v] for v in names if v in by_name]
        cov = sum(r[1] for r in sel)
        tot = sum(r[2] for r in sel)
        nf = sum(r[3] for r in sel)
        complete = bool(names) and len(sel) == len(names) and nf == 0 and \
            all(r[2] and r[1] == r[2] for r in sel)
        out.append((what, names, cov, tot, nf, complete))
    return out


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
                   'addresses only a later boot (hazard-pti) makes live')
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
                print('WINDOWS covered=0 total=0 failures=1 excluded=0')
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
        print('WINDOWS covered=0 total=0 failures=1 excluded=0')
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
    unreachable, notes = unreachable_features(vm.parse_args(
        ['--kernel', args.kernel, '--initrd', args.initrd, '--plan', 'none', '--out',
         args.out]).cpu) if dead else ({}, [])
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
    print('WINDOWS covered=%d total=%d failures=%d excluded=%d' % (
        len(covered), total, len(failures), len(excluded)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
