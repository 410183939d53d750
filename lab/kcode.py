# SPDX-License-Identifier: GPL-2.0
"""The kernel's code as the windows sweep reads it: symbols, objdump's
disassembly of asm_exc_nmi, the entry's layout and NMI stack slots
(asm/nmi_stack.h), the alternatives patched at boot and the ones the CPU
model cannot take.
"""

import os
import re
import shutil
import struct
import subprocess
import tempfile

import vm
from gdbstub import LabError


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


# struct pt_regs: 15 GPRs and orig_ax, then the hardware frame.
PT_REGS_GPRS = ('r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8',
                'rax', 'rcx', 'rdx', 'rsi', 'rdi')


PT_REGS_RIP = 0x80


X86_EFLAGS_RF = 0x10000


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


def parse_nm(text):
    """nm [-S] output -> {name: (address, size or None)} (first definition wins)."""
    syms = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 4:
            addr, size, name = f[0], f[1], f[3]
        elif len(f) == 3:
            addr, size, name = f[0], None, f[2]
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


def fastret_entry(insns):
    """error_return's return to kernel mode in its disassembly: the target of
    the conditional jump after the CS test ("testb $3, CS(%rsp); jz ...").
    In a kernel with the return without IRET in NMI context that is
    .Lerror_return_kernel inside error_return, where the NMI test starts;
    in one without, restore_regs_and_return_to_kernel, outside: None."""
    if not insns:
        return None
    lo, hi = insns[0].addr, insns[-1].addr + (insns[-1].size or 1)
    for a, b in zip(insns, insns[1:]):
        if a.mnem.startswith('test') and a.ops.startswith('$0x3,') and b.is_jcc():
            if b.target is not None and lo <= b.target < hi:
                return b.target
            return None
    return None


def fastret_gate(insns, entry):
    """The address of the instruction after the NMI test's conditional jump
    at entry (error_return's .Lerror_return_kernel): the ALTERNATIVE that
    the alternatives patcher turns into a jump to the IRET path when a CPU
    feature (Xen PV, call depth tracking) rules the return out; None if
    there is no such instruction."""
    seen = False
    for a, b in zip(insns, insns[1:]):
        if a.addr == entry:
            seen = True
        if seen and a.is_jcc():
            return b.addr
    return None


def fastret_regions(path):
    """The instructions of traced returns without IRET ([Insn], in the order
    run; each return starts again at the first address) by what they do,
    for the sample: 'checks' up to the last conditional jump (the NMI,
    knob, TF, RF, CS, SS and stack tests), 'copy' up to the first pop (RIP
    and RFLAGS below the interrupted stack), 'pops' (POP_REGS and the stack
    switch), 'popf', 'ret' (the RET and the return thunk).
    -> [(address, region)]"""
    out = []
    starts = [k for k, i in enumerate(path) if i.addr == path[0].addr] + [len(path)]
    for lo, hi in zip(starts, starts[1:]):
        seg = path[lo:hi]
        last_jcc = max((k for k, i in enumerate(seg) if i.is_jcc()), default=-1)
        region = 'checks'
        for k, i in enumerate(seg):
            if k > last_jcc and region == 'checks':
                region = 'copy'
            if region == 'copy' and i.mnem.startswith('pop'):
                region = 'pops'
            if region == 'pops' and i.mnem.startswith('popf'):
                region = 'popf'
            elif region == 'popf':
                region = 'ret'
            out.append((i.addr, region))
    return out


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
