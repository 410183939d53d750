# SPDX-License-Identifier: GPL-2.0
"""A guest under QEMU's gdbstub: the boots the sweep uses (BOOTS), starting
and stopping one, kernel memory through its page tables, breakpoints.
"""

import os
import subprocess
import time

import boots
import vm
from gdbstub import Gdb, LabError
from kcode import START_KERNEL_MAP


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


# The hazard boot with call depth tracking: its return thunk
# (call_depth_return_thunk) would change the flags after the POPF of
# error_return's return without IRET, so the kernel gates that return off
# there; this boot checks that traps then return with IRET.
BOOTS['hazard-stuff'] = dict(BOOTS['hazard'],
                             append=BOOTS['hazard']['append'] + ['retbleed=stuff,force',
                                                                 'spectre_v2=retpoline'])


DEFAULT_BOOTS = ('idle', 'user', 'hazard', 'hazard-pti', 'user-stuff', 'hazard-stuff')


SAMPLE_BOOTS = ('idle', 'user', 'hazard', 'hazard-pti', 'hazard-stuff')


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
        self.unmask_boot = None     # the unmask knob's slot as the boot left it

    # -- lifetime --
    def start(self):
        spec = BOOTS[self.boot_name]
        os.makedirs(self.outdir, exist_ok=True)
        for n in ('console.log', 'results.txt', 'qmp.sock', 'gdb.sock'):
            try:
                os.unlink(os.path.join(self.outdir, n))
            except FileNotFoundError:
                pass
        boot = boots.spec(self.args.kernel, self.args.initrd, spec['plan'], self.outdir,
                          cpus=1, gdb=True, append=list(spec['append']))
        if self.args.icount:
            # Not vm.py's --icount (sleep=off): with sleep=off QEMU 7.2 warps
            # the virtual clock to the next timer deadline whenever the vCPU
            # is idle while the VM still counts as running, which is the
            # case for a moment at every gdbstub single step; inside an NMI
            # (timer interrupt pending, nothing re-armed) the next deadline
            # can be hours away (the RTC), and the guest's clock jumps.
            boot.qemu_args += ['-icount', 'shift=0,align=off,sleep=%s' % self.args.icount_sleep,
                               '-rtc', 'clock=vm']
        cmd = vm.qemu_command(boot, self.outdir)
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
