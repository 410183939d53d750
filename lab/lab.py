#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Front door of the NMI lab: run, check, boot, torture.

The Makefile builds what these need (kernel, selftests, initramfs); this file
boots and judges.  Every job lives in its own file: vm.py (QEMU), scan.py
(console), results.py (results channel), expect.py (expected failures),
check.py (the test suite), report.py (what is printed).
"""

import argparse
import os
import re
import subprocess
import sys

LAB = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(LAB)
BUILD = os.path.join(TOP, 'build')
sys.path.insert(0, LAB)

import report   # noqa: E402
import results  # noqa: E402
import scan     # noqa: E402
import vm       # noqa: E402


def conf():
    out = {}
    with open(os.path.join(LAB, 'lab.conf')) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#') and '=' in line:
                k, v = line.split('=', 1)
                out[k] = v.strip('"')
    return out


def bzimage(variant):
    return os.path.join(BUILD, 'out-' + variant, 'arch/x86/boot/bzImage')


def initrd(variant):
    return os.path.join(BUILD, 'initramfs-%s.cpio.gz' % variant)


def ensure_variant(variant):
    """Build the variant's kernel unless it is there, and its initramfs."""
    if variant.startswith('i386'):
        # 32-bit: the caller builds the kernel (ARCH=i386 kbuild.sh); the
        # initramfs holds lab/initramfs/init32.c, not the 64-bit busybox.
        subprocess.run([os.path.join(LAB, 'mkinitramfs-i386.sh'), initrd(variant),
                        os.path.join(BUILD, 'out-' + variant)], check=True)
        return
    if variant != 'series' and not os.path.exists(bzimage(variant)):
        print('lab: building the %s kernel' % variant, flush=True)
        subprocess.run([os.path.join(LAB, 'kbuild.sh'), variant], check=True)
    # Always: it takes seconds, and plans or selftests may have changed.
    subprocess.run([os.path.join(LAB, 'mkinitramfs.sh'), initrd(variant),
                    os.path.join(BUILD, 'out-' + variant),
                    os.path.join(BUILD, 'ksft')], check=True)


class Boot:
    """One VM run and what came out of it."""

    def __init__(self, name, summary, outdir, allow=(), window=None):
        self.name = name
        self.summary = summary
        self.outdir = outdir
        self.results = results.parse_file(os.path.join(outdir, 'results.txt'))
        self.findings = scan.scan_file(os.path.join(outdir, 'console.log'), allow, window)

    @property
    def status(self):
        return self.summary['status']

    def completed(self):
        """The plan ran to its end: verdict reached the exit port and the
        results channel has its end marker."""
        return self.status in ('pass', 'fail') and self.results.ended

    def console_findings(self):
        return scan.failing(self.findings)


def boot(variant, plan, name, append=(), nmi_rate=0.0, timeout=600, allow=(),
         cpus=None, quiet=False, qemu_args=(), qemu=None, cpu=None, nmi_gate=False,
         window=None):
    """One boot.  allow: console patterns that are not findings (only between
    the window's (start, end) markers when given); qemu, cpu: another QEMU
    binary and -cpu;
    nmi_gate: the guest switches the host's NMI storm on and off."""
    ensure_variant(variant)
    c = conf()
    outdir = os.path.join(BUILD, 'runs', name)
    argv = ['--kernel', bzimage(variant), '--initrd', initrd(variant),
            '--plan', plan, '--out', outdir, '--timeout', str(timeout),
            '--cpus', str(cpus or c.get('VM_CPUS', 4)), '--mem', c.get('VM_MEM', '1024'),
            '--nmi-rate', str(nmi_rate)]
    for a in append:
        argv += ['--append', a]
    for a in qemu_args:
        argv.append('--qemu-arg=' + a)     # '=': QEMU arguments start with '-'
    if quiet:
        argv.append('--quiet')
    if qemu:
        argv += ['--qemu', qemu]
    if cpu:
        argv += ['--cpu', cpu]
    if nmi_gate:
        argv.append('--nmi-gate')
    summary = vm.run(vm.parse_args(argv))
    return Boot(name, summary, outdir, allow, window)


def cmd_run(args):
    print('lab: booting the series on %s vCPUs: NMI workload for %d s, host NMIs at %g/s'
          % (conf().get('VM_CPUS'), args.seconds, args.nmi_rate), flush=True)
    # Host NMIs carry no status: each is an unknown NMI, by design.
    allow = scan.HOST_NMI_ALLOW if args.nmi_rate else ()
    b = boot('series', 'workload', 'run', append=['lab.seconds=%d' % args.seconds],
             nmi_rate=args.nmi_rate, timeout=args.seconds + 300, allow=allow)
    report.print_run(b)
    ok = b.status == 'pass' and report.torture_console_failures(b) == 0
    return 0 if ok else 1



def cmd_boot(args):
    # Host NMIs carry no status: each is an unknown NMI, by design.
    allow = scan.HOST_NMI_ALLOW if args.nmi_rate else ()
    b = boot(args.variant, args.plan, args.name or '%s-%s' % (args.variant, args.plan),
             append=args.append, nmi_rate=args.nmi_rate, timeout=args.timeout, allow=allow)
    if args.plan == 'workload':
        report.print_run(b)
        return 0 if b.status == 'pass' and report.torture_console_failures(b) == 0 else 1
    report.print_boot(b)
    return 0 if b.status == 'pass' and b.console_findings() == 0 else 1


# The genuine phase of a torture boot (lib-torture.sh genuine_phase): host
# NMIs once the test is unloaded, each a genuine unknown NMI that the
# kernel must report.  Its console lines are allowed between its markers.
GENUINE_WINDOW = (r'lab: genuine NMIs on', r'lab: genuine NMIs off')
GENUINE_RATE = 1.0      # host NMIs per second: under printk's rate limit


def torture_boot(variant, name, params, genuine_secs=0, append=(), nmi_rate=0.0,
                 quiet=False):
    """One torture plan boot; with genuine_secs, the genuine phase after it
    (the host's NMIs then come only while the guest asks for them)."""
    secs = int(re.search(r'duration=(\d+)', params).group(1))
    if genuine_secs:
        if nmi_rate:
            raise ValueError('a genuine phase takes the host NMIs for itself')
        append = list(append) + ['lab.genuine_secs=%d' % genuine_secs]
        kw = dict(nmi_rate=GENUINE_RATE, nmi_gate=True, allow=scan.HOST_NMI_ALLOW,
                  window=GENUINE_WINDOW)
    else:
        kw = dict(nmi_rate=nmi_rate)
    return boot(variant, 'torture', name, append=['lab.torture=' + params] + list(append),
                timeout=secs + genuine_secs + 400, quiet=quiet, **kw)


def cmd_torture(args):
    params = 'duration=%d:hazards=%s' % (args.seconds, args.hazards)
    if args.params:
        params += ':' + args.params
    rc = 0
    for variant in args.variant:
        b = torture_boot(variant, 'torture-' + variant, params, args.genuine_secs,
                         append=args.append, nmi_rate=args.nmi_rate)
        report.print_torture(b, variant)
        if not (b.completed() and b.status == 'pass' and b.console_findings() == 0):
            rc = 1
    return rc


def cmd_check(args):
    import check
    # --only a --only b, or --only a,b; a name that is no part is refused
    # (it would otherwise run nothing and report "0 passed, 0 failed").
    only = [p for o in args.only for p in o.split(',') if p]
    bad = [p for p in only if p not in check.PARTS]
    if bad:
        print('lab.py check: no part %s; the parts: %s' % (', '.join(bad), ', '.join(check.PARTS)),
              file=sys.stderr)
        return 2
    args.only = only
    return check.main(args)


def cmd_boot_i386(args):
    import check
    t = check.Tally()
    check.part_i386(t, args, args.variant)
    return 0 if t.failed() == 0 else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest='cmd', required=True)

    s = sub.add_parser('run', help='boot the series under the NMI workload and report')
    s.add_argument('--seconds', type=int, default=30)
    s.add_argument('--nmi-rate', type=float, default=0,
                   help='host NMIs per second on top (each is an unknown NMI)')
    s.set_defaults(fn=cmd_run)

    s = sub.add_parser('check', help='the whole test suite')
    s.add_argument('--nmi-rate', type=float, default=200)
    s.add_argument('--torture-seconds', type=int, default=60)
    s.add_argument('--i386-torture-seconds', type=int, default=10)
    s.add_argument('--hpet-soak-seconds', type=int, default=90)
    s.add_argument('--only', action='append', default=[],
                   help='run only these parts (lab, checkpatch, build, series, i386, model, '
                   'ksft, torture, windows, hpet, kvm)')
    s.set_defaults(fn=cmd_check)

    s = sub.add_parser('boot', help='boot one variant with one plan')
    s.add_argument('plan')
    s.add_argument('--variant', default='series')
    s.add_argument('--name')
    s.add_argument('--append', action='append', default=[])
    s.add_argument('--nmi-rate', type=float, default=0)
    s.add_argument('--timeout', type=float, default=600)
    s.set_defaults(fn=cmd_boot)

    s = sub.add_parser('boot-i386', help='build for i386 and boot under qemu-system-i386 '
                       '(check.py part i386)')
    s.add_argument('--variant', default='series', choices=('series', 'instrument'))
    s.add_argument('--nmi-rate', type=float, default=200, help='host NMIs per second')
    s.add_argument('--i386-torture-seconds', type=int, default=10)
    s.set_defaults(fn=cmd_boot_i386)

    s = sub.add_parser('torture', help='the torture test with all hazards')
    s.add_argument('--seconds', type=int, default=180)
    s.add_argument('--hazards', default='all')
    s.add_argument('--params', default='', help='more key=value:key=value')
    s.add_argument('--nmi-rate', type=float, default=0,
                   help='host NMIs per second (each is an unknown NMI)')
    s.add_argument('--variant', action='append', default=None,
                   help='series (default) and/or instrument (the base)')
    s.add_argument('--append', action='append', default=[],
                   help='more kernel command line, e.g. lab.user_load=0')
    s.add_argument('--genuine-secs', type=int, default=0,
                   help='after the test, host NMIs at %g/s for this long: each must be '
                   'reported as unknown (genuine_reported, genuine_sent)' % GENUINE_RATE)
    s.set_defaults(fn=cmd_torture)

    args = p.parse_args(argv)
    if getattr(args, 'variant', None) is None and args.cmd == 'torture':
        args.variant = ['series']
    return args.fn(args)


if __name__ == '__main__':
    sys.exit(main())
