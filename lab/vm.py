#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot a kernel under QEMU TCG, run one test plan, inject NMIs from the host.

The guest's console goes to DIR/console.log, the plan's results (second serial
port) to DIR/results.txt, and a summary of the run to DIR/vm.json.  The guest
reports its verdict through QEMU's isa-debug-exit device, so the verdict does
not depend on parsing text: QEMU exits 33 when the plan passed and 35 when it
failed; any other way out (panic, hang, QEMU's own errors) is not a pass.
"""

import argparse
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import timing

QEMU = 'qemu-system-x86_64'
CPU = 'max,-smap'
QBOOT = '/usr/share/qemu/qboot.rom'
# isa-debug-exit: (value << 1) | 1 for the 0x10 / 0x11 the guest's init writes.
EXIT_PASS = 33
EXIT_FAIL = 35


def host_lpj(hz=250):
    """loops_per_jiffy for the guest's lpj=: TCG defeats the per-CPU delay
    calibration of secondary CPUs (about 15 s each on a loaded host, and an
    mdelay() several times longer than asked).  Taken from the host's clock
    rate, for the guest's HZ=250."""
    try:
        with open('/proc/cpuinfo') as f:
            m = re.search(r'^cpu MHz\s*:\s*([\d.]+)', f.read(), re.M)
        return int(float(m.group(1)) * 1e6 / hz)
    except (OSError, AttributeError, ValueError):
        return 10000000


def connect_unix(path, timeout):
    """Connect to a unix socket that QEMU creates, waiting up to timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class QMP:
    """Minimal QMP client: one command at a time, events are skipped."""

    def __init__(self, path, timeout=20.0):
        self.sock = connect_unix(path, timeout)
        self.sock.settimeout(timeout)
        self.rfile = self.sock.makefile('r')
        self._read()                            # greeting
        self.cmd('qmp_capabilities')

    def _read(self):
        line = self.rfile.readline()
        if not line:
            raise EOFError('QMP connection closed')
        return json.loads(line)

    def cmd(self, name, **arguments):
        msg = {'execute': name}
        if arguments:
            msg['arguments'] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            reply = self._read()
            if 'return' in reply:
                return reply['return']
            if 'error' in reply:
                raise RuntimeError('QMP %s: %s' % (name, reply['error']))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@dataclasses.dataclass
class BootSpec:
    """One boot: the kernel, its initramfs and plan, the machine, and what
    the host does to it.  run() takes it; parse_args() makes one from the
    command line of vm.py."""
    kernel: str                 # bzImage
    initrd: str                 # initramfs (lab/mkinitramfs.sh)
    plan: str                   # guest plan (lab/initramfs/plans/NAME.sh)
    out: str                    # directory for logs and results
    append: list = dataclasses.field(default_factory=list)     # kernel command line
    cpus: int = 4
    mem: int = 1024             # MiB
    timeout: float = 600        # hard limit, seconds
    nmi_rate: float = 0         # host inject-nmi per second
    nmi_delay: float = 3        # seconds before the first (and after the guest's init)
    nmi_gate: bool = False      # inject only between "LAB host_nmi=on" and "=off"
    qemu: str = QEMU            # QEMU binary (qemu-system-i386: 32-bit)
    cpu: str = CPU              # QEMU -cpu
    icount: bool = False        # deterministic TCG (-icount)
    gdb: bool = False           # gdbstub on OUT/gdb.sock, start stopped
    qemu_args: list = dataclasses.field(default_factory=list)  # more QEMU arguments
    quiet: bool = False         # do not show the guest's progress


def qemu_command(args, outdir):
    cmd = [args.qemu, '-accel', 'tcg', '-cpu', args.cpu,
           '-smp', str(args.cpus), '-m', str(args.mem),
           '-nodefaults', '-display', 'none', '-no-reboot', '-net', 'none',
           '-bios', QBOOT,
           '-kernel', args.kernel, '-initrd', args.initrd,
           '-append', ' '.join(['console=ttyS0', 'panic=-1', 'nokaslr',
                                'printk.time=1', 'lab.plan=' + args.plan] +
                               args.append),
           '-serial', 'file:' + os.path.join(outdir, 'console.log'),
           '-serial', 'file:' + os.path.join(outdir, 'results.txt'),
           '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04',
           '-qmp', 'unix:%s,server=on,wait=off' % os.path.join(outdir, 'qmp.sock')]
    if args.icount:
        cmd += ['-icount', 'shift=0,align=off,sleep=off', '-rtc', 'clock=vm']
    if args.gdb:
        cmd += ['-gdb', 'unix:%s,server=on,wait=off' % os.path.join(outdir, 'gdb.sock'), '-S']
    return cmd + list(args.qemu_args)


class Injector(threading.Thread):
    """Host-side NMI storm: QMP inject-nmi at a fixed rate (LINT1; CPU 0).
    With a gate (threading.Event), only while the gate is set."""

    def __init__(self, qmp, rate, delay, gate=None):
        super().__init__(daemon=True)
        self.qmp, self.rate, self.delay, self.gate = qmp, rate, delay, gate
        self.sent = 0
        self.errors = 0
        self.stop = threading.Event()

    def run(self):
        if self.stop.wait(self.delay):
            return
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stop.is_set():
            if self.gate is not None and not self.gate.is_set():
                self.stop.wait(0.05)
                nxt = time.monotonic()
                continue
            try:
                self.qmp.cmd('inject-nmi')
                self.sent += 1
            except (OSError, EOFError, RuntimeError, ValueError):
                self.errors += 1
                return
            nxt += period
            self.stop.wait(max(0.0, nxt - time.monotonic()))


def follow(path, stop, on_line=None, period=0.5):
    """Call on_line for every line appended to path (default: print the
    guest's progress lines, "lab: ...") until stop is set."""
    on_line = on_line or show_progress
    pos = 0
    while not stop.is_set():
        try:
            with open(path, 'rb') as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b''
        if data:
            last = data.rfind(b'\n') + 1
            for line in data[:last].decode('utf-8', 'replace').splitlines():
                on_line(line)
            pos += last
        stop.wait(period)


def show_progress(line, prefix='lab:'):
    text = line.split('] ', 1)[-1] if line.startswith('[') else line
    if text.startswith(prefix):
        print('  ' + text, flush=True)


def gate_on_line(gate):
    """on_line for the results channel: the guest opens and closes the host's
    NMI storm with "LAB host_nmi=on" and "LAB host_nmi=off" (--nmi-gate)."""
    def on_line(line):
        if line.startswith('LAB host_nmi='):
            (gate.set if line.strip() == 'LAB host_nmi=on' else gate.clear)()
    return on_line


def started_on_line(gate):
    """on_line for the results channel without --nmi-gate: the host's NMIs
    start once the guest's init runs ("LAB plan=..."), never while the
    kernel boots.  Boot-time alternatives patching rewrites the NMI exit
    path with ordinary stores (text_poke_early()), and an NMI that runs a
    half-written instruction there oopses: seen with a host NMI at 0.44 s
    of a guest that a busy host had slowed below the wall-clock delay."""
    def on_line(line):
        if line.startswith('LAB plan='):
            gate.set()
    return on_line


def run(args):
    """Boot args (a BootSpec) to its end: the summary (also OUT/vm.json)."""
    outdir = args.out
    os.makedirs(outdir, exist_ok=True)
    for name in ('console.log', 'results.txt', 'qmp.sock', 'gdb.sock'):
        try:
            os.unlink(os.path.join(outdir, name))
        except FileNotFoundError:
            pass
    cmd = qemu_command(args, outdir)
    with open(os.path.join(outdir, 'qemu-cmdline.txt'), 'w') as f:
        f.write(' '.join(cmd) + '\n')
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(outdir, 'qemu.log'), 'w'),
                            stderr=subprocess.STDOUT)
    stop = threading.Event()
    tail = None
    if not args.quiet:
        tail = threading.Thread(target=follow, args=(os.path.join(outdir, 'console.log'), stop),
                                daemon=True)
        tail.start()
    gate = threading.Event()
    threading.Thread(target=follow, daemon=True,
                     args=(os.path.join(outdir, 'results.txt'), stop,
                           (gate_on_line if args.nmi_gate else started_on_line)(gate),
                           0.1)).start()
    qmp = None
    injector = None
    try:
        qmp = QMP(os.path.join(outdir, 'qmp.sock'))
        if args.nmi_rate > 0:
            injector = Injector(qmp, args.nmi_rate, args.nmi_delay, gate)
            injector.start()
    except (OSError, EOFError, ValueError) as e:
        print('vm: QMP unavailable: %s' % e, file=sys.stderr)
    status = None
    try:
        proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        status = 'timeout'
        proc.kill()
        proc.wait()
    finally:
        if injector:
            injector.stop.set()
            injector.join(5)
        if qmp:
            qmp.close()
        stop.set()
        if tail:
            tail.join(2)
    elapsed = time.monotonic() - start
    rc = proc.returncode
    if status is None:
        status = {EXIT_PASS: 'pass', EXIT_FAIL: 'fail'}.get(rc, 'no-verdict')
    summary = {'plan': args.plan, 'status': status, 'qemu_rc': rc,
               'seconds': round(elapsed, 1),
               'nmi_injected': injector.sent if injector else 0,
               'nmi_inject_errors': injector.errors if injector else 0,
               'cmdline': cmd}
    with open(os.path.join(outdir, 'vm.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    timing.add('boot:' + os.path.basename(os.path.normpath(outdir)), elapsed)
    return summary


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--kernel', required=True, help='bzImage')
    p.add_argument('--initrd', required=True, help='initramfs (lab/mkinitramfs.sh)')
    p.add_argument('--plan', required=True, help='guest plan (lab/initramfs/plans/NAME.sh)')
    p.add_argument('--out', required=True, help='directory for logs and results')
    p.add_argument('--append', action='append', default=[], help='extra kernel command line')
    p.add_argument('--cpus', type=int, default=4)
    p.add_argument('--mem', type=int, default=1024, help='MiB')
    p.add_argument('--timeout', type=float, default=600, help='hard limit, seconds')
    p.add_argument('--nmi-rate', type=float, default=0, help='host inject-nmi per second')
    p.add_argument('--nmi-delay', type=float, default=3,
                   help='seconds after start before injecting; injection also '
                   'waits for the guest\'s init ("LAB plan=" on the results channel)')
    p.add_argument('--nmi-gate', action='store_true',
                   help='inject only between the guest\'s "LAB host_nmi=on" and '
                   '"LAB host_nmi=off" lines on the results channel')
    p.add_argument('--qemu', default=QEMU, help='QEMU binary (qemu-system-i386: 32-bit)')
    p.add_argument('--cpu', default=CPU, help='QEMU -cpu')
    p.add_argument('--icount', action='store_true', help='deterministic TCG (-icount)')
    p.add_argument('--gdb', action='store_true', help='gdbstub on DIR/gdb.sock, start stopped')
    p.add_argument('--qemu-arg', action='append', default=[], help='extra QEMU argument')
    p.add_argument('--quiet', action='store_true', help='do not show guest progress')
    a = vars(p.parse_args(argv))
    a['qemu_args'] = a.pop('qemu_arg')
    return BootSpec(**a)


def main(argv=None):
    args = parse_args(argv)
    summary = run(args)
    print('vm: plan %s: %s in %.0f s (qemu rc %s, %d NMIs injected)' % (
        summary['plan'], summary['status'], summary['seconds'], summary['qemu_rc'],
        summary['nmi_injected']))
    return 0 if summary['status'] == 'pass' else 1


if __name__ == '__main__':
    sys.exit(main())
