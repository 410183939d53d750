#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Front door of the NMI lab: every job the Makefile runs is a subcommand.

The Makefile builds what these need (kernel, selftests, initramfs); this file
boots and judges.  Every job lives in its own file, and imports only run
downward: check.py (the test suite) over boots.py (a boot and its results)
over vm.py (QEMU), scan.py (console), results.py (results channel); beside
them expect.py (expected failures), report.py (what is printed) and
tally.py (rows and totals), which import no job module.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench    # noqa: E402
import check    # noqa: E402
import hpet_check  # noqa: E402
import kvm_check  # noqa: E402
import report   # noqa: E402
import series_check  # noqa: E402
import windows  # noqa: E402
import scan     # noqa: E402
from boots import GENUINE_RATE, boot, conf, torture_boot  # noqa: E402
from tally import Tally  # noqa: E402


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


def cmd_torture(args):
    params = 'duration=%d:hazards=%s' % (args.seconds, args.hazards)
    if args.params:
        params += ':' + args.params
    rc = 0
    for variant in args.variant:
        b = torture_boot(variant, 'torture-' + variant, params, args.genuine_secs,
                         append=args.append, nmi_rate=args.nmi_rate)
        report.print_torture(b, variant)
        # The TORTURE line's verdict (as make check judges it): nothing lost
        # or serviced twice, no unknown NMI a late IPI does not explain, no
        # oops, WARN, KASAN or KCSAN report on the console.
        if not (b.status == 'pass' and report.torture_verdict(b) == 'PASS'):
            rc = 1
    return rc


def cmd_check(args):
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


def cmd_results(args):
    print(check.results_section(args.title), end='')
    return 0


def cmd_boot_i386(args):
    t = Tally()
    check.part_i386(t, args, args.variant)
    return 0 if t.failed() == 0 else 1


# Jobs with a front end of their own: "lab.py <name> [args]" hands the
# arguments to the module's main(); "lab.py <name> --help" shows them.
JOBS = {
    'windows': (windows, 'a nested NMI at every instruction of the NMI entry (gdbstub)'),
    'bench': (bench, 'base and series side by side: instructions, lost events, latency'),
    'hpet-soak': (hpet_check, 'the HPET NMI watchdog beside the torture test'),
    'kvm': (kvm_check, 'KVM as host in the guest, under NMIs (KVMSFT line)'),
    'series-check': (series_check, 'ready to send? checkpatch, prose, bisect, W=1, docs'),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in JOBS:
        return JOBS[argv[0]][0].main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    for name, (_, what) in JOBS.items():
        sub.add_parser(name, help='%s (options: lab.py %s --help)' % (what, name),
                       add_help=False)

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
                   help='run only these parts (%s)' % ', '.join(check.PARTS))
    s.set_defaults(fn=cmd_check)

    s = sub.add_parser('results', help='a section of docs/results.md from the last make '
                       'check (its summary lines, totals and timing table)')
    s.add_argument('--title', default='The last make check')
    s.set_defaults(fn=cmd_results)

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
