# SPDX-License-Identifier: GPL-2.0
"""make check: every test of the project, one verdict a line, then the totals.

Parts (all run by default; --only picks some):
  lab         the lab's own unit tests (lab/tests)
  checkpatch  scripts/checkpatch.pl --strict on every patch
  build       every object the series touches, built with FRED, KVM, Xen PV,
              SEV, UV and the NMI drivers on (lab/widecheck.sh); its noinstr
              code under KASAN and KCSAN through objtool (lab/sancheck.sh);
              kernel-doc on the files with new APIs
  series      is the series ready to send (lab/series_check.py, make
              series-check): checkpatch, bisect, the touched objects with
              W=1 and sparse under wide, i386 and allnoconfig configs against
              the base, kernel-doc and Sphinx; prints the SERIES line
  i386        the series built for i386 (lab/config/i386.config) and booted
              under qemu-system-i386 with a static 32-bit init
              (lab/initramfs/init32.c): NMI backtraces, a host NMI storm
              and a short torture run; the console is scanned
  model       the Promela model of the nesting protocol (model/run.sh)
  ksft        tools/testing/selftests/x86, 64- and 32-bit, in the guest while
              the host injects NMIs; the console is scanned
  torture     torture runs with all hazards: the kernel's default knobs against
              the base, what real sources do, the external CPU going offline
              and back (lab/torture_check.py); the console is scanned
  windows     nested NMIs injected at 12 sampled instructions of the NMI entry
              through the gdbstub (make windows sweeps them all)
  hpet        the HPET NMI hard-lockup detector (nmi_watchdog=hpet): a
              healthy run, a hard lockup on one CPU, sysctl and hotplug,
              the fallbacks, a 90 s soak beside the torture test, the
              detector switched to buddy and back at run time beside it
              (lab/hpet_check.py)
  kvm         KVM as host in the guest (kvm_amd on TCG's SVM): 15 KVM
              selftests, nested SVM included, while the host injects NMIs
              and beside the torture test; NMIs must be taken as VM exits
              (lab/kvm_check.py, make kvm)
Expected failures (lab/expected-failures) are proven on the base kernel
before they are counted as XFAIL.  The last line is "N passed, M failed".
"""

import os
import re
import subprocess
import sys
import threading
import time
import unittest

import boots
import expect
import hpet_check
import kvm_check
import report
import scan
import series_check
import timing
import torture_check
from tally import Tally, parse_summary  # noqa: F401 (check.Tally: the rows of every part)

PARTS = ('lab', 'checkpatch', 'build', 'series', 'i386', 'model', 'ksft', 'torture', 'windows',
         'hpet', 'kvm')

# Console lines the selftest plan declares expected: the host's NMI storm.
KSFT_ALLOW = scan.HOST_NMI_ALLOW


def part_lab(t):
    suite = unittest.defaultTestLoader.discover(os.path.join(boots.LAB, 'tests'))
    cases = list(iter_cases(suite))     # a suite forgets its tests once run
    res = unittest.TextTestRunner(stream=open(os.devnull, 'w'), verbosity=0).run(suite)
    bad = {str(c): m for c, m in res.failures + res.errors}
    for case in cases:
        name = 'lab:' + case.id().split('.', 1)[-1]
        if str(case) in bad:
            t.add('FAIL', name, bad[str(case)].strip().splitlines()[-1])
        else:
            t.add('PASS', name)


def iter_cases(suite):
    for s in suite:
        if isinstance(s, unittest.TestSuite):
            yield from iter_cases(s)
        else:
            yield s


def part_build(t):
    r = subprocess.run([os.path.join(boots.LAB, 'widecheck.sh')], capture_output=True, text=True)
    last = ((r.stdout + r.stderr).strip().splitlines() or [''])[-1]
    t.add('PASS' if r.returncode == 0 else 'FAIL', 'build:wide', '' if r.returncode == 0 else last)
    # The noinstr code under KASAN and KCSAN, object by object.
    r = subprocess.run([os.path.join(boots.LAB, 'sancheck.sh')], capture_output=True, text=True)
    lines = (r.stdout + r.stderr).strip().splitlines() or ['']
    t.add('PASS' if r.returncode == 0 else 'FAIL', 'build:sanitizers',
          '; '.join(ln.replace('sancheck: ', '') for ln in lines if ln.startswith('sancheck:'))
          if r.returncode == 0 else
          '; '.join([ln for ln in lines if 'objtool' in ln][:1] + lines[-1:]))
    out = series_check.kernel_doc(os.path.join(boots.BUILD, 'linux'),
                                  series_check.KERNEL_DOC_FILES)
    t.add('PASS' if not out else 'FAIL', 'build:kernel-doc', out[0] if out else '')


# The i386 init's console markers around the host's NMI storm: each host NMI
# is an unknown NMI, allowed only in between.
I386_STORM = (r'lab: host NMI storm on', r'lab: host NMI storm off')
I386_NAMES = {'series': 'i386', 'instrument': 'i386-base'}


def build_i386(variant='series', src=None):
    """kbuild.sh's ARCH=i386 build of variant into build/out-<name>, from
    src (a worktree) if given: the CompletedProcess."""
    return subprocess.run(['nice', os.path.join(boots.LAB, 'kbuild.sh'), src or variant,
                           I386_NAMES[variant]],
                          env=dict(os.environ, ARCH='i386'), capture_output=True, text=True)


class Beside(threading.Thread):
    """The series' i386 build, started before the part series: the bisect
    there is mostly one-core work (make's walk, links, objtool on vmlinux.o)
    and checks out build/linux itself, so the i386 kernel builds from a
    worktree at the series' head (build/src-i386) on the other core.  When
    build/linux is not the clean series branch the bisect builds in a
    worktree instead and this builds build/linux."""

    def __init__(self):
        super().__init__()
        self.src = (series_check.worktree('series', 'i386')
                    if series_check.bisect_in_place() else None)
        self.result = None

    def run(self):
        self.result = build_i386('series', self.src)


def part_i386(t, args, variant='series', beside=None):
    """ARCH=i386 build of variant (the series' working tree, or the base),
    booted under qemu-system-i386 with lab/initramfs/init32.c as init.
    beside: the build already started (Beside), waited for here."""
    name = I386_NAMES[variant]
    if beside:
        beside.join()
        r = beside.result
    else:
        r = build_i386(variant)
    err = [ln for ln in r.stderr.splitlines() if re.search(r'error|did not stick', ln, re.I)
           and not ln.startswith('make')] + r.stderr.splitlines()[-1:]
    t.add('PASS' if r.returncode == 0 else 'FAIL', name + ':build',
          '' if r.returncode == 0 else (err or ['?'])[0].strip())
    if r.returncode:
        return None
    secs = args.i386_torture_seconds
    # QEMU and -cpu: the variant's row of lab/config/variants.
    b = boots.boot(name, 'i386', 'check-' + name, nmi_rate=args.nmi_rate or 200,
                 nmi_gate=True, timeout=secs + 600,
                 append=['lab.torture=duration=%d:hazards=all' % secs],
                 allow=scan.HOST_NMI_ALLOW, window=I386_STORM)
    t.add('PASS' if b.completed() else 'FAIL', name + ':boot',
          '' if b.completed() else 'plan did not complete: %s' % b.status)
    for test, (st, directive) in b.results.test_map().items():
        diag = '; '.join(b.results.diag.get(test, []))
        t.add('FAIL' if st == 'fail' else 'PASS', '%s:%s' % (name, test),
              {'pass': '', 'skip': directive}.get(st, diag))
    if b.results.torture:
        print('      ' + report.torture_line(b))
        kc = report.kernel_counts(b) or {}
        print('      i386 nests NMIs in C (nmi_state): latched=%s; probe NMIs repeated %s of %s'
              % (kc.get('latched', '-'), b.results.torture.get('nest_ok', '-'),
                 b.results.torture.get('nest_probes', '-')))
        left = report.unexplained_unknown(report.torture_fields(b))
        t.add('PASS' if left == 0 else 'FAIL', name + ':unknown',
              'unknown NMIs in the torture run: %s, explained by late IPIs: %s' % (
                  report.torture_fields(b).get('unknown', '-'),
                  b.results.torture.get('ipi_slow', '-')) if left else '')
    print('      ' + report.result_line(b, {'storm_nmis': b.results.lab.get('storm_nmis', '-')}))
    n = report.torture_console_failures(b)
    t.add('PASS' if n == 0 else 'FAIL', name + ':console',
          '' if n == 0 else '%d findings, first: %s' % (n, report.first_finding(b)))
    return b


def part_model(t):
    script = os.path.join(boots.TOP, 'model', 'run.sh')
    if not os.path.exists(script):
        t.add('FAIL', 'model', 'model/run.sh missing')
        return
    r = subprocess.run(['bash', script], capture_output=True, text=True)
    last = (r.stdout.strip().splitlines() or [''])[-1]
    print('      ' + last)
    ok = r.returncode == 0 and model_ok(last)
    t.add('PASS' if ok else 'FAIL', 'model', '' if ok else last or r.stderr.strip()[-200:])


def model_ok(line):
    """The MODEL line: no error in any model, every mutant killed."""
    kv = (parse_summary(line, 'MODEL') or (None, {}))[1]
    killed, _, mutants = kv.get('mutants_killed', '').partition('/')
    return kv.get('errors') == '0' and killed.isdigit() and killed == mutants


def exit_note(directive):
    m = re.search(r'(exit=\d+|TIMEOUT|missing)', directive or '')
    return m.group(1) if m else 'fail'


# KUnit suites the series must have run at boot, and their source files.
KUNIT_SUITES = {'x86_nmi_dispatch': 'arch/x86/kernel/nmi_kunit.c'}


def kunit_cases(path):
    """The case names of a KUnit suite's source: its KUNIT_CASE*() lines."""
    with open(path) as f:
        return re.findall(r'^\s*KUNIT_CASE\w*\((\w+)', f.read(), re.M)


def kunit(t, b, tree=None):
    """The KUnit suites' results, dumped by the ksft plan and read by the
    kernel's KUnit parser: every case of the suite's source must have run
    and passed, in a plan that adds up, with nothing the parser flagged."""
    tree = tree or os.path.join(boots.BUILD, 'linux')
    for suite, src in sorted(KUNIT_SUITES.items()):
        want = kunit_cases(os.path.join(tree, src))
        got = b.results.kunit.get(suite)
        if got is None:
            t.add('FAIL', 'kunit:' + suite, 'suite did not run (CONFIG_NMI_KUNIT_TEST?)')
            continue
        for case, st in got['cases']:
            t.add('PASS' if st == 'pass' else 'FAIL', 'kunit:%s.%s' % (suite, case),
                  '' if st == 'pass' else st)
        names = [c for c, _ in got['cases']]
        ok = (got['plan'] == len(names) and names == want and got['ok'] is True
              and not got['errors'])
        t.add('PASS' if ok else 'FAIL', 'kunit:' + suite,
              '%d of %d cases' % (len(names), len(want)) if ok else
              'plan %s, ran %s, source %s, suite %s, %d parse errors' % (
                  got['plan'], len(names),
                  len(want) if names == want else 'differs (%s)' % ', '.join(
                      sorted(set(want) ^ set(names))[:3]),
                  {True: 'ok', False: 'not ok', None: 'no result'}[got['ok']],
                  got['errors']))


def part_ksft(t, args, expected):
    b = boots.boot('series', 'ksft', 'check-ksft', nmi_rate=args.nmi_rate, timeout=2400,
                 allow=KSFT_ALLOW)
    got = b.results.test_map()
    t.add('PASS' if b.completed() else 'FAIL', 'boot:ksft',
          '' if b.completed() else 'plan did not complete: %s' % b.status)
    report.console_row(t, b, 'console:ksft')
    if b.results.plan is not None and b.results.plan != len(b.results.tests):
        t.add('FAIL', 'ksft:plan', 'KTAP plan %d, %d results' % (b.results.plan,
                                                                len(b.results.tests)))
    kunit(t, b)
    failing = {n: d for n, (st, d) in got.items() if st == 'fail' and n in expected}
    base = {}
    if failing:
        base = run_on_base(sorted(failing), args)
    for name, (st, directive) in got.items():
        v, note = ksft_row(name, st, directive, args.nmi_rate, expected, base)
        if v == 'FAIL' and st == 'fail':
            note = '; '.join([note] + first_failures(b.results.diag.get(name, [])))
        t.add(v, 'ksft:' + name, note if v != 'PASS' else '')
    return b


def ksft_row(name, st, directive, nmi_rate, expected, base):
    """The verdict of one selftest, (verdict, note).  st: 'pass', 'fail' or
    'skip' on the series; base: {name: (st, directive)} of the tests rerun
    on the base.  An expected failure is XFAIL only when the base failed
    with the same exit; an NMI selftest that skipped under the host's NMI
    storm fails (a skip means no NMI reached it: the storm never came)."""
    if name.startswith('nmi_') and st == 'skip' and nmi_rate > 0:
        return 'FAIL', 'skipped under an NMI storm: ' + directive
    base_failed = None
    note = directive
    if name in base:
        bst, bdir = base[name]
        base_failed = bst == 'fail' and exit_note(bdir) == exit_note(directive)
        note = '%s; base: %s (%s)' % (exit_note(directive), bdir or bst, expected[name])
    v = expect.classify(name, st == 'fail', expected, base_failed)
    if v == 'XPASS':
        note = 'listed in lab/expected-failures but passed: remove the entry'
    return v, note


def first_failures(diag, n=3):
    """The first n lines of a selftest's output that say what failed: its
    "[FAIL]" checks and "not ok" results (a CI log then tells why)."""
    return [ln.lstrip('# ').strip() for ln in diag
            if re.search(r'\[FAIL\]|^(# )*not ok ', ln)][:n]


def run_on_base(names, args):
    print('lab: proving %d expected failure(s) on the base kernel' % len(names), flush=True)
    b = boots.boot('instrument', 'ksft', 'check-ksft-base', nmi_rate=args.nmi_rate,
                 timeout=900, append=['lab.tests=' + ','.join(names)], allow=KSFT_ALLOW,
                 quiet=True)
    return b.results.test_map()


def part_windows(t):
    out = os.path.join(boots.BUILD, 'runs', 'windows-sample')
    r = subprocess.run([sys.executable, os.path.join(boots.LAB, 'windows.py'), '--sample', '12',
                        '--out', out], capture_output=True, text=True)
    line = next((ln for ln in reversed(r.stdout.splitlines()) if parse_summary(ln, 'WINDOWS')),
                '')
    print('      ' + (line or 'no WINDOWS line'))
    kv = (parse_summary(line, 'WINDOWS') or (None, {}))[1]
    ok = r.returncode == 0 and kv.get('failures') == '0' and kv.get('covered', '0') != '0'
    t.add('PASS' if ok else 'FAIL', 'windows:sample',
          '' if ok else (line or r.stderr.strip()[-200:]))


def part_series(t):
    print('      ' + series_check.run(t))


def part_hpet(t, args):
    """The HPET NMI hard-lockup detector: lab/hpet_check.py."""
    hpet_check.run(t, args)


def part_kvm(t, args):
    """KVM selftests under NMIs: lab/kvm_check.py."""
    kvm_check.run(t, args, 'series')


KTAP_ROW = re.compile(r'^\s*(ok|not ok) \d+ ')


class SummaryTee:
    """stdout, keeping every summary line printed through it (parse_summary)
    for build/check-summary.txt, the input of lab.py results."""

    def __init__(self, out):
        self.out, self.partial, self.lines = out, '', []

    def write(self, s):
        self.out.write(s)
        self.partial += s
        *done, self.partial = self.partial.split('\n')
        # A KTAP row may quote a summary line in its note: not one itself.
        self.lines += [ln.strip() for ln in done
                       if parse_summary(ln) and not KTAP_ROW.match(ln)]
        return len(s)

    def flush(self):
        self.out.flush()

    def __getattr__(self, name):
        return getattr(self.out, name)


SUMMARY = os.path.join(boots.BUILD, 'check-summary.txt')


def results_section(title, summary=SUMMARY, timings=None):
    """A section of docs/results.md made from the last make check's files:
    its summary lines and totals (build/check-summary.txt) and its timing
    table (build/check-timing.txt), not pasted by hand."""
    timings = timings or os.path.join(os.path.dirname(summary), 'check-timing.txt')
    with open(summary) as f:
        lines = f.read().splitlines()
    try:
        with open(timings) as f:
            table = f.read().splitlines()
    except FileNotFoundError:
        table = []
    commit = subprocess.run(['git', '-C', boots.TOP, 'rev-parse', '--short', 'HEAD'],
                            capture_output=True, text=True).stdout.strip() or '?'
    wall = next((ln.split()[-1] for ln in table if ln.split()[:2] == ['wall', 'time']), '?')
    out = ['## %s' % title, '',
           '`make check` of %s: **%s s, %s**.  Its summary lines:' % (commit, wall, lines[-1]),
           '']
    out += ['    ' + ln for ln in lines[:-1]]
    if table:
        out += ['', 'Its timing table:', ''] + ['    ' + ln for ln in table]
    return '\n'.join(out) + '\n'


def main(args):
    tee = SummaryTee(sys.stdout)
    sys.stdout = tee
    try:
        return run(args, tee)
    finally:
        sys.stdout = tee.out


def run(args, tee):
    parts = args.only or PARTS
    expected = expect.load()
    t = Tally()
    steps = [
        ('lab', lambda: part_lab(t)),
        # series runs checkpatch itself
        ('checkpatch', lambda: series_check.part_checkpatch(t)),
        ('build', lambda: part_build(t)),
        ('series', lambda: part_series(t)),
        ('i386', lambda: part_i386(t, args, beside=beside)),
        ('model', lambda: part_model(t)),
        ('ksft', lambda: part_ksft(t, args, expected)),
        ('torture', lambda: torture_check.run(t, args, expected)),
        ('windows', lambda: part_windows(t)),
        ('hpet', lambda: part_hpet(t, args)),
        ('kvm', lambda: part_kvm(t, args)),
    ]
    assert tuple(name for name, _ in steps) == PARTS
    beside = None
    for name, fn in steps:
        if name in parts and not (name == 'checkpatch' and 'series' in parts):
            if name == 'series' and 'i386' in parts:
                beside = Beside()
                print('      i386: building beside the bisect (%s -> build/out-i386)' %
                      os.path.relpath(beside.src or os.path.join(boots.BUILD, 'linux'),
                                      boots.TOP))
                beside.start()
            start = time.monotonic()
            fn()
            timing.add('part:' + name, time.monotonic() - start)
    xfail = sum(1 for v, _, _ in t.rows if v == 'XFAIL')
    print()
    for v, name, note in t.rows:
        if v not in ('PASS',):
            print('  %-5s %s  %s' % (v, name, note))
    print('check: %d tests, %d expected failures proven on the base' % (len(t.rows), xfail))
    print(t.totals())
    lines = timing.table()
    print('\n'.join(lines))
    with open(os.path.join(boots.BUILD, 'check-timing.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    total = '%d passed, %d failed' % (t.passed(), t.failed())
    with open(SUMMARY, 'w') as f:
        f.write('\n'.join(tee.lines + [total]) + '\n')
    print(total)
    return 0 if t.failed() == 0 else 1
