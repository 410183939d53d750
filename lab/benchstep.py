# SPDX-License-Identifier: GPL-2.0
"""make bench's step part: one NMI round trip single-stepped through QEMU's
gdbstub in a known context (the idle loop, a user-mode loop), every
instruction counted as entry or dispatcher (Stepper), and what the
console of a bench boot says.
"""

import argparse
import os
import re
import struct
import subprocess
import time

import gdbstub
import guest
import kcode
import scan
import vm
from benchstats import BenchError, NAME, breakdown, median, split_counts


USER_TOP = 0x800000000000


UTS_NODENAME = 65           # offsetof(struct new_utsname, nodename)


def console_text(outdir):
    try:
        with open(os.path.join(outdir, 'console.log'), 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return ''


def console_value(outdir, key):
    """'lab: bench: KEY=0x...' from the console, as an int, or None."""
    m = re.findall(r'lab: bench: %s=0x([0-9a-f]+)' % re.escape(key), console_text(outdir))
    return int(m[-1], 16) if m and m[-1] else None


def module_symtab(outdir):
    """[(address, name)] of the module's code from the plan's KSYM lines."""
    out = []
    try:
        with open(os.path.join(outdir, 'results.txt'), 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        w = line.split()
        if len(w) == 3 and w[0] == 'KSYM':
            try:
                out.append((int(w[1], 16), w[2] + ' [nmi_torture]'))
            except ValueError:
                pass
    return out


def findings_summary(text, allow=()):
    f = scan.scan(text, allow)
    return {k: v[:5] for k, v in f.items() if v}, scan.counts(f)


STEP_BOOT = 'bench-step'
guest.BOOTS[STEP_BOOT] = {'plan': 'bench', 'marker': b'lab: bench: gate idle',
                            'append': ['lab.bench=step']}


class Stepper:
    """One -smp 1 guest stopped by the gdbstub, and the NMIs counted in it."""

    def __init__(self, variant, inp, args, outdir, boot=STEP_BOOT):
        self.variant = variant
        self.args = args
        self.outdir = outdir
        self.syms, self.symtab = kcode.read_symbols(inp['vmlinux'])
        need = ('asm_exc_nmi', 'exc_nmi', 'default_idle_call', 'init_uts_ns',
                'init_top_pgt', 'linux_banner', '__per_cpu_offset')
        miss = [n for n in need if n not in self.syms]
        if miss:
            raise BenchError('%s: vmlinux lacks %s' % (variant, ', '.join(miss)))
        gargs = argparse.Namespace(kernel=inp['kernel'], initrd=inp['initrd'], icount=True,
                                   icount_sleep='on', boot_timeout=args.boot_timeout,
                                   banner=kcode.read_banner(inp['vmlinux'], self.syms))
        self.guest = guest.Guest(boot, gargs, self.syms, outdir,
                                   lambda m: args.verbose and print(m, flush=True))
        self.asm = self.syms['asm_exc_nmi'][0]
        self.exc = self.syms['exc_nmi'][0]
        self.last_rip = None

    def start(self):
        self.guest.start()
        self.gdb = self.guest.gdb
        names = [n for n, _ in self.gdb.layout]
        self.r_rip, self.r_rsp = names.index('rip'), names.index('rsp')
        nt_cpu = console_value(self.outdir, 'nt_cpu')
        if not nt_cpu:
            raise BenchError('%s: no nt_cpu address from the guest (module not loaded?)'
                             % self.variant)
        # struct nt_cpu starts with the internal source's pending count.
        self.pending = self.guest.pcpu0 + nt_cpu
        if self.read_pending() != 0:
            raise BenchError('%s: pending count at %#x is %d, not 0' % (
                self.variant, self.pending, self.read_pending()))

    def stop(self):
        self.guest.stop()

    def finish(self, timeout=120):
        """Open the last gate and let the plan end (the module stops and
        unloads); the plan's status."""
        self.open_gate()
        self.guest.set_bps(set())
        try:
            self.gdb.cmd('D', 10)              # detach: the VM runs on
        except (gdbstub.LabError, gdbstub.Stuck):
            return 'detach-failed'
        try:
            rc = self.guest.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return 'timeout'
        return {vm.EXIT_PASS: 'pass', vm.EXIT_FAIL: 'fail'}.get(rc, 'no-verdict')

    def read_pending(self):
        return struct.unpack('<i', self.guest.kread(self.pending, 4))[0]

    def reg(self, n):
        r = self.gdb.cmd('p%x' % n)
        if not r or r[0] == 'E':
            raise gdbstub.LabError('register %d: %s' % (n, r))
        return int.from_bytes(bytes.fromhex(r), 'little')

    # -- gates: the plan waits until the host renames the node --
    def open_gate(self):
        self.guest.kwrite(self.syms['init_uts_ns'][0] + UTS_NODENAME, b'go\0')

    def run_until_console(self, marker, timeout=180):
        self.guest.set_bps(set())
        deadline = time.monotonic() + timeout
        while marker not in console_text(self.outdir):
            if time.monotonic() > deadline:
                raise BenchError('%s: no %r on the console' % (self.variant, marker))
            self.gdb.run_for(0.5)

    # -- anchors --
    def anchor_kernel(self):
        self.guest.set_bps({self.syms['default_idle_call'][0]})
        if not self.gdb.cont(30):
            raise BenchError('%s: default_idle_call not reached' % self.variant)
        self.guest.set_bps(set())
        return self.gdb.regs()

    def anchor_user(self):
        self.guest.set_bps(set())
        for _ in range(500):
            self.gdb.run_for(0.02)
            r = self.gdb.regs()
            # A RIP other than the last NMI's: the series takes an NMI on
            # the same RIP as its predecessor for a back-to-back one.
            if r['rip'] < USER_TOP and r['rip'] != self.last_rip:
                return r
        raise BenchError('%s: no user-mode stop' % self.variant)

    # -- one round trip --
    def round_trip(self, end_rip, end_rsp, user):
        """Single-step from asm_exc_nmi until the interrupted context resumes;
        [(rip, 'entry'|'dispatch')] of every step."""
        trace = []
        rip = self.asm
        ret = None              # (return RIP, RSP after the return) of exc_nmi
        limit = self.args.step_limit
        while True:
            if rip == self.exc and ret is None:
                rsp = self.reg(self.r_rsp)
                ret = (self.guest.kread64(rsp)[0], rsp + 8)
            trace.append((rip, 'dispatch' if ret else 'entry'))
            self.gdb.step()
            rip = self.reg(self.r_rip)
            if ret and rip == ret[0] and self.reg(self.r_rsp) == ret[1]:
                ret = None
            if user:
                if rip < USER_TOP:
                    break
            elif rip == end_rip and self.reg(self.r_rsp) == end_rsp:
                break
            if len(trace) > limit:
                raise BenchError('%s: no return after %d steps (at %s)' % (
                    self.variant, limit, kcode.symbolize(rip, self.symtab)))
        if rip != end_rip:
            raise BenchError('%s: returned to %#x, not the interrupted %#x' % (
                self.variant, rip, end_rip))
        return trace

    def take_nmi(self, timeout):
        """Continue until an NMI enters asm_exc_nmi; its hardware frame, or None."""
        self.guest.set_bps({self.asm})
        hit = self.gdb.cont(timeout)
        self.guest.set_bps(set())
        if not hit:
            return None
        r = self.gdb.regs()
        if r['rip'] != self.asm:
            raise BenchError('%s: stopped at %s, not asm_exc_nmi' % (
                self.variant, kcode.symbolize(r['rip'], self.symtab)))
        return gdbstub.frame(self.guest.kread64(r['rsp'], 5))

    def counted(self, fr):
        self.gdb.sstep(0x7)     # interrupts, NMIs and timers held off
        try:
            return self.round_trip(fr['rip'], fr['rsp'], (fr['cs'] & 3) == 3)
        finally:
            self.gdb.sstep(0x1)

    def sample(self, context, p0):
        """One internal NMI at the anchor p0, and the poll NMI it may owe."""
        self.guest.kwrite(self.pending, struct.pack('<i', 1))
        self.gdb.monitor('nmi')
        t0 = time.monotonic()
        fr = self.take_nmi(10)
        if fr is None:
            raise BenchError('%s: the injected NMI did not arrive' % self.variant)
        if fr['rip'] != p0['rip']:
            raise BenchError('%s: NMI taken at %s, not at the anchor %s' % (
                self.variant, kcode.symbolize(fr['rip'], self.symtab),
                kcode.symbolize(p0['rip'], self.symtab)))
        trace = self.counted(fr)
        left = self.read_pending()
        if left != 0:
            raise BenchError('%s: the internal handler did not claim the NMI (pending %d)'
                             % (self.variant, left))
        self.last_rip = p0['rip']
        rec = {'context': context, 'at': kcode.symbolize(p0['rip'], self.symtab),
               'counts': split_counts(trace), 'seconds': round(time.monotonic() - t0, 2),
               'trace': trace}
        # An NMI that follows by itself: the series' external poll.
        fr = self.take_nmi(self.args.poll_wait)
        if fr is not None:
            ptrace = self.counted(fr)
            rec['poll'] = {'at': kcode.symbolize(fr['rip'], self.symtab),
                           'counts': split_counts(ptrace), 'trace': ptrace}
        return rec

    def run(self):
        samples = []
        for context in ('kernel', 'user'):
            if context == 'user':
                self.open_gate()
                self.run_until_console('lab: bench: gate user')
            for i in range(self.args.reps):
                p0 = self.anchor_kernel() if context == 'kernel' else self.anchor_user()
                rec = self.sample(context, p0)
                c = rec['counts']
                print('  %s %s NMI %d at %s: entry %d, dispatcher %d instructions%s (%.1f s)' % (
                    NAME[self.variant], context, i + 1, rec['at'], c['entry'], c['dispatch'],
                    ', then a poll NMI: %d' % rec['poll']['counts']['total']
                    if 'poll' in rec else '', rec['seconds']), flush=True)
                samples.append(rec)
        return samples


def summarize_steps(samples, symtab):
    out = {}
    for context in ('kernel', 'user'):
        s = [r for r in samples if r['context'] == context]
        if not s:
            continue
        d = {k: median([r['counts'][k] for r in s]) for k in ('entry', 'dispatch', 'total',
                                                              'rep', 'steps')}
        d['samples'] = [r['counts'] for r in s]
        d['at'] = [r['at'] for r in s]
        # Where the instructions go, in the median-total sample.
        mid = sorted(s, key=lambda r: r['counts']['total'])[len(s) // 2]
        d['entry_symbols'] = breakdown(mid['trace'], symtab, 'entry')[:12]
        d['dispatch_symbols'] = breakdown(mid['trace'], symtab, 'dispatch')[:25]
        # ... and every instruction of it, to read against objdump -d
        # (kept in bench.json, unlike the raw traces).
        d['insns'] = ['%x' % rip for rip, _ in mid['trace']]
        polls = [r['poll'] for r in s if 'poll' in r]
        d['polls'] = len(polls)
        if polls:
            d['poll_total'] = median([p['counts']['total'] for p in polls])
            d['poll_dispatch'] = median([p['counts']['dispatch'] for p in polls])
            d['poll_symbols'] = breakdown(polls[0]['trace'], symtab, 'dispatch')[:25]
        out[context] = d
    return out


def part_step(variant, inp, args):
    outdir = os.path.join(args.out, 'step-' + NAME[variant])
    st = Stepper(variant, inp, args, outdir)
    t0 = time.monotonic()
    try:
        st.start()
        print('  %s: guest ready for stepping in %.0f s' % (NAME[variant], st.guest.boot_seconds),
              flush=True)
        samples = st.run()
        status = st.finish()
    except (gdbstub.LabError, gdbstub.Stuck) as e:
        raise BenchError('%s step: %s' % (variant, e))
    finally:
        st.stop()
    found, counts = findings_summary(console_text(outdir))
    res = summarize_steps(samples, sorted(st.symtab + module_symtab(outdir)))
    res['status'] = status
    res['seconds'] = round(time.monotonic() - t0, 1)
    res['console'] = counts
    res['findings'] = found
    return res
