#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Benchmark the base and the series side by side (make bench).

One invocation measures both kernels -- the base (pristine kernel + the test
instrument, "instrument") and the series -- with the same configuration,
initramfs contents and QEMU settings, one after the other.  The step part
also runs in a second configuration, "prod": the same kernels built with
lab/config/prod.config after nmi-test.config (no lockdep, DEBUG_ENTRY,
DEBUG_ATOMIC_SLEEP, NMI_CHECK_CPU, NMI selftest), in build/out-instrument-prod
and build/out-series-prod (built here: the base when missing, the series
always, incrementally).  --insn-only runs the step part alone, in both
configurations.  The parts:

  step     Instructions of one non-nested NMI round trip, counted through
           QEMU's gdbstub (-smp 1, -icount shift=0,sleep=on): the guest is
           stopped in a known context -- the idle loop (default_idle_call)
           or a user-mode busy loop --, the torture module's internal source
           gets one pending event (its per-CPU count, written through the
           stub), the host injects an NMI (HMP nmi, LINT1 of CPU 0), and the
           NMI is single-stepped from asm_exc_nmi with interrupts, NMIs and
           timers held off (Qqemu.sstep=0x7) until the interrupted context
           resumes.  Every instruction between the call of exc_nmi and its
           return is "dispatcher", everything else "entry" (asm_exc_nmi and
           the entry text it runs: paranoid_entry, the return to user
           mode...).  An NMI nothing claims would take the unknown-NMI path
           with its printk, so the measured NMI is a claimed internal one,
           with the module's internal and external handlers registered and
           nothing sending.  On the series CPU 0 receives external NMIs
           (LINT1), so such an NMI owes an external poll: the poll NMI that
           follows is counted too, on its own.  Median of --reps NMIs per
           context.  Round trip = entry + dispatcher.
  torture  External events lost and their service latency under internal
           NMI load: the torture test (as the torture plan runs it: all
           hazards, user-mode load) for --torture-seconds on 4 vCPUs.  The
           module reports p50/p99/max; its whole latency histogram is read
           from the module's memory through the gdbstub at the end of the
           run, for the CDF plot.
  sweep    The highest internal NMI rate per sending CPU sustained without
           loss: torture runs at rising ipi_rate steps (no hazards, no user
           load).  A step holds when nothing was lost or serviced twice,
           every unknown NMI is explained by a late IPI of the test, and the
           senders reached 90% of the rate.
  scale    NMI backtraces (sysrq-l) on --scale-cpus vCPUs: every CPU must
           print "NMI backtrace for cpu N", and no unknown NMI may appear.

Output: a table (stdout and OUT/bench.txt), OUT/bench.json with every
sample, OUT/ext-latency.png (latency CDFs), and the last line

  BENCH entry_insn_ratio=.. user_entry_insn_ratio=.. dispatch_insn_ratio=..
        lost_ext_base=.. lost_ext_series=.. ext_p50_ms=.. ext_p99_ms=..
        max_rate_ratio=.. ext_p50_ms_base=.. ext_p99_ms_base=..
        max_rate_noloss_ratio=.. roundtrip_insn_ratio=..
        entry_insn_ratio_prod=.. user_entry_insn_ratio_prod=..
        dispatch_insn_ratio_prod=.. roundtrip_insn_ratio_prod=..

(ratios are series / base; the instruction ratios are the kernel-mode
NMI's but for user_entry; the _prod ones are the prod configuration's, the
others the test configuration's; the latency keys without suffix are the
series'); a key whose part was not run or not measured is "-".  A
timing is a measurement, never a verdict: the exit status is non-zero only
when a part could not be measured.
"""

import argparse
import bisect
import collections
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import types

LAB = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(LAB)
BUILD = os.path.join(TOP, 'build')
sys.path.insert(0, LAB)

import boots      # noqa: E402
import report   # noqa: E402
import results  # noqa: E402
import scan     # noqa: E402
import vm       # noqa: E402
import windows  # noqa: E402

VARIANTS = ('instrument', 'series')
# The same two kernels in the "prod" configuration (lab/config/prod.config
# after nmi-test.config: no lockdep, DEBUG_ENTRY, NMI_CHECK_CPU...), built
# into build/out-<variant>; only the step part runs on them.
PROD_VARIANTS = ('instrument-prod', 'series-prod')
ALL_VARIANTS = VARIANTS + PROD_VARIANTS
PROD_CONFIG = 'lab/config/prod.config'
# configuration -> (base, series), and the suffix of its BENCH keys.
CONFIGS = (('test', VARIANTS, ''), ('prod', PROD_VARIANTS, '_prod'))
NAME = {'instrument': 'base', 'series': 'series',
        'instrument-prod': 'base-prod', 'series-prod': 'series-prod'}
USER_TOP = 0x800000000000
UTS_NODENAME = 65           # offsetof(struct new_utsname, nodename)
# The torture module's latency histogram (nmi_torture.c): 1 us buckets below
# 64 us, then 32 per octave up to 2^64 us; hist[] is the last member of nt_ext.
HIST_LINEAR = 64
HIST_SUB = 32
HIST_BUCKETS = HIST_LINEAR + (64 - 6) * HIST_SUB

PARTS = ('step', 'torture', 'sweep', 'scale')
PROD_PARTS = ('step',)          # the parts measured in the prod configuration too


class BenchError(Exception):
    """A part could not be measured."""


# ---------------------------------------------------------------------------
# Pure parts: statistics, counting, parsing, formatting, the PNG.
# ---------------------------------------------------------------------------

def median(values):
    v = sorted(values)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def ratio(a, b):
    """a / b, or None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def split_counts(trace):
    """trace: [(rip, cls)] for every single step, cls 'entry' or 'dispatch'.

    A step that stays on the same RIP is another iteration of a REP string
    instruction, not another instruction.  Returns the instructions of each
    class, the steps and the REP iterations."""
    out = {'entry': 0, 'dispatch': 0, 'steps': len(trace), 'rep': 0}
    prev = None
    for rip, cls in trace:
        if rip == prev:
            out['rep'] += 1
        else:
            out[cls] += 1
        prev = rip
    out['total'] = out['entry'] + out['dispatch']
    return out


def symbol_of(addr, symtab, starts=None):
    """symtab: sorted [(address, name)] -> the name of the symbol holding addr."""
    starts = starts or [a for a, _ in symtab]
    i = bisect.bisect_right(starts, addr) - 1
    if i < 0 or addr - symtab[i][0] > 0x100000:
        return '%#x' % addr
    return symtab[i][1]


def breakdown(trace, symtab, cls=None):
    """Instructions per symbol (REP iterations not counted), most first."""
    starts = [a for a, _ in symtab]
    c = collections.Counter()
    prev = None
    for rip, k in trace:
        if rip != prev and (cls is None or k == cls):
            c[symbol_of(rip, symtab, starts)] += 1
        prev = rip
    return c.most_common()


def hist_value(idx):
    """Lower bound (us) of the module's histogram bucket idx (nt_hist_value)."""
    if idx < HIST_LINEAR:
        return idx
    idx -= HIST_LINEAR
    msb = 6 + idx // HIST_SUB
    return (HIST_SUB + idx % HIST_SUB) << (msb - 5)


def hist_index(us):
    """The bucket of a latency in us (nt_hist_index)."""
    if us < HIST_LINEAR:
        return us
    msb = us.bit_length() - 1
    return HIST_LINEAR + (msb - 6) * HIST_SUB + ((us >> (msb - 5)) & (HIST_SUB - 1))


def hist_percentile(hist, pct):
    """The module's percentile: lower bound of the bucket holding the
    ceil(total * pct / 100)-th sample (nt_percentile)."""
    total = sum(hist)
    if not total:
        return 0
    want = -(-total * pct // 100)
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= want:
            return hist_value(i)
    return hist_value(len(hist) - 1)


def hist_cdf(hist):
    """[(us, fraction of events serviced within us)] at the upper bound of
    every non-empty bucket, starting at 0 below the first one."""
    total = sum(hist)
    if not total:
        return []
    pts = []
    seen = 0
    for i, n in enumerate(hist):
        if not n:
            continue
        if not pts:
            pts.append((hist_value(i), 0.0))
        seen += n
        pts.append((hist_value(i + 1), seen / total))
    return pts


def percentile_cdf(p50, p99, pmax):
    """The CDF as far as p50 / p99 / max tell it (us): a step at each."""
    pts = []
    for x, y in ((p50, 0.5), (p99, 0.99), (pmax, 1.0)):
        if x is None:
            continue
        pts.append((x, y))
    if not pts:
        return []
    return [(pts[0][0], 0.0)] + pts


def parse_sweep(text):
    """The sweep plan's results channel -> [(ipi_rate, Results)], one per step."""
    steps = []
    cur, buf = None, []
    for raw in text.splitlines():
        line = raw.rstrip('\r')
        m = re.match(r'^LAB sweep_step=(\d+)$', line)
        if m:
            if cur is not None:
                steps.append((cur, results.parse('\n'.join(buf))))
            cur, buf = int(m.group(1)), []
            continue
        if cur is not None:
            buf.append(line)
    if cur is not None:
        steps.append((cur, results.parse('\n'.join(buf))))
    return steps


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def sweep_step(rate, t, min_fraction=0.9):
    """One sweep step's figures and whether it held (see the docstring)."""
    elapsed = (_int(t.get('elapsed_ms')) or 0) / 1000.0
    cpus = _int(t.get('cpus')) or 0
    raised = _int(t.get('int_raised'))
    achieved = raised / elapsed / cpus if raised is not None and elapsed and cpus else None
    lost = _int(t.get('lost'))
    dup = _int(t.get('dup'))
    unexplained = report.unexplained_unknown(t)
    why = []
    if lost is None:
        why.append('no result')
    else:
        if lost:
            why.append('lost %d' % lost)
        if dup:
            why.append('dup %d' % dup)
        if unexplained is None:
            why.append('unknown not measured')
        elif unexplained:
            why.append('%d unexplained unknown' % unexplained)
        if achieved is None or achieved < min_fraction * rate:
            why.append('reached %s/s' % ('-' if achieved is None else '%.0f' % achieved))
    # Held without loss, whatever the unknown NMIs.
    noloss = lost is not None and not lost and not dup and achieved is not None and \
        achieved >= min_fraction * rate
    return {'rate': rate, 'achieved': achieved, 'lost': lost, 'dup': dup,
            'int_lost': _int(t.get('int_lost')), 'ext_lost': _int(t.get('ext_lost')),
            'ext_late': _int(t.get('ext_late')), 'unknown': _int(t.get('unknown')),
            'ipi_slow': _int(t.get('ipi_slow')), 'unexplained': unexplained,
            'ok': not why, 'noloss': noloss, 'why': ', '.join(why)}


def max_sustained(steps, key='ok'):
    """The highest rate before the first step that did not hold (steps in
    rising order), or None when the first one did not."""
    best = None
    for s in sorted(steps, key=lambda s: s['rate']):
        if not s[key]:
            break
        best = s['rate']
    return best


def fmt(v, spec='%.2f'):
    if v is None:
        return '-'
    if isinstance(v, str):
        return v
    if v == float('inf'):
        return 'inf'
    return spec % v


def us_to_ms(v):
    return None if v is None else v / 1000.0


# The instruction ratios (series / base) of one configuration: key ->
# (context, count).  The prod configuration's keys carry the suffix _prod.
INSN_RATIOS = collections.OrderedDict((
    ('entry_insn_ratio', ('kernel', 'entry')),
    ('user_entry_insn_ratio', ('user', 'entry')),
    ('dispatch_insn_ratio', ('kernel', 'dispatch')),
    ('roundtrip_insn_ratio', ('kernel', 'total')),
))


def insn_ratios(b, s, suffix=''):
    """The INSN_RATIOS of one configuration from its base and series step
    results (per context: medians of entry, dispatch and total = entry +
    dispatcher, the round trip)."""
    return {k + suffix: ratio(get(s, 'step', ctx, n), get(b, 'step', ctx, n))
            for k, (ctx, n) in INSN_RATIOS.items()}


def bench_line(s):
    """The machine-readable last line from the summary dict."""
    keys = [('entry_insn_ratio', s.get('entry_insn_ratio'), '%.3f'),
            ('user_entry_insn_ratio', s.get('user_entry_insn_ratio'), '%.3f'),
            ('dispatch_insn_ratio', s.get('dispatch_insn_ratio'), '%.3f'),
            ('lost_ext_base', s.get('lost_ext_base'), '%d'),
            ('lost_ext_series', s.get('lost_ext_series'), '%d'),
            ('ext_p50_ms', s.get('ext_p50_ms'), '%.3f'),
            ('ext_p99_ms', s.get('ext_p99_ms'), '%.3f'),
            ('max_rate_ratio', s.get('max_rate_ratio'), '%.2f'),
            ('ext_p50_ms_base', s.get('ext_p50_ms_base'), '%.3f'),
            ('ext_p99_ms_base', s.get('ext_p99_ms_base'), '%.3f'),
            ('max_rate_noloss_ratio', s.get('max_rate_noloss_ratio'), '%.2f'),
            ('roundtrip_insn_ratio', s.get('roundtrip_insn_ratio'), '%.3f')]
    keys += [(k + '_prod', s.get(k + '_prod'), '%.3f') for k in INSN_RATIOS]

    def val(v, spec):
        if v is None:
            return '-'
        if v == float('inf'):
            return 'inf'
        return spec % v
    return 'BENCH ' + ' '.join('%s=%s' % (k, val(v, spec)) for k, v, spec in keys)


# -- The latency plot (matplotlib) --------------------------------------------

def us_label(us):
    if us >= 1000000:
        return '%g s' % (us / 1e6)
    if us >= 1000:
        return '%g ms' % (us / 1e3)
    return '%g us' % us


def plot_cdf(series, title, subtitle=''):
    """series: [(label, (r, g, b), [(us, fraction)])] -> PNG bytes, 820x640.

    Top: the CDF (log x, linear y); bottom: the tail, 1 - CDF on a log y
    axis down to 1e-4, where p99 and the maximum show."""
    import io
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (top, tail) = plt.subplots(2, 1, figsize=(10.25, 8), dpi=80, sharex=True,
                                    gridspec_kw={'height_ratios': [3, 2]})
    floor = 1e-4
    for label, colour, pts in series:
        xs = [max(x, 1) for x, _ in pts]
        c = tuple(v / 255 for v in colour)
        top.step(xs, [f for _, f in pts], where='post', color=c, lw=2, label=label)
        tail.step(xs, [max(1 - f, floor) for _, f in pts], where='post', color=c, lw=2)
    top.set_xscale('log')
    top.set_ylim(0, 1.02)
    top.set_ylabel('CDF')
    top.legend(loc='lower right', fontsize=8)
    tail.set_yscale('log')
    tail.set_ylim(floor, 1.5)
    tail.set_ylabel('1 - CDF')
    tail.set_xlabel('service latency, raise to service (us, log scale)')
    for ax in (top, tail):
        ax.grid(True, which='major', color='#cccccc')
    fig.suptitle(title + ('\n' + subtitle if subtitle else ''), fontsize=10)
    out = io.BytesIO()
    fig.savefig(out, format='png', dpi=80)
    plt.close(fig)
    return out.getvalue()


# ---------------------------------------------------------------------------
# Inputs: both kernels, snapshotted so that a rebuild meanwhile cannot mix them.
# ---------------------------------------------------------------------------

def find_module(kout, name='nmi_torture.ko'):
    p = os.path.join(kout, 'arch/x86/kernel', name)
    if os.path.exists(p):
        return p
    for d, _, files in os.walk(kout):
        if name in files:
            return os.path.join(d, name)
    return None


def mtime(path):
    """A file's modification time, UTC, to the second (which build it is)."""
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(os.path.getmtime(path)))


def prod_kbuild_argv(variant):
    """The kbuild.sh command line that builds a prod variant: the same tree
    as its test twin, lab/config/prod.config merged after nmi-test.config."""
    return [os.path.join(LAB, 'kbuild.sh'), variant[:-len('-prod')], variant]


def ensure_kernel(variant):
    """Build the variant's kernel as boots.ensure_variant() does, without its
    initramfs (the snapshot gets its own): the base when it is missing, the
    series is make kernel's.  A prod variant: the base when it is missing
    or older than lab/config/prod.config, the series always, as make kernel
    does for the test one (incremental, so that it follows the working
    tree)."""
    if variant in PROD_VARIANTS:
        image, conf = boots.bzimage(variant), os.path.join(LAB, '..', PROD_CONFIG)
        if (variant.startswith('series') or not os.path.exists(image) or
                os.path.getmtime(image) < os.path.getmtime(conf)):
            print('bench: building the %s kernel' % variant, flush=True)
            subprocess.run(prod_kbuild_argv(variant), check=True,
                           env=dict(os.environ, KCONFIG_EXTRA=PROD_CONFIG))
    elif variant != 'series' and not os.path.exists(boots.bzimage(variant)):
        print('bench: building the %s kernel' % variant, flush=True)
        subprocess.run([os.path.join(LAB, 'kbuild.sh'), variant], check=True)


def make_initrd(d):
    """DIR/initramfs.cpio.gz with the modules in DIR: the guest loads the
    very module that was snapshotted."""
    subprocess.run([os.path.join(LAB, 'mkinitramfs.sh'), os.path.join(d, 'initramfs.cpio.gz'),
                    d, os.path.join(BUILD, 'ksft')], check=True)


def prepare_inputs(args, variants=VARIANTS, info=None):
    """{variant: {'kernel', 'vmlinux', 'initrd', 'ko'}}.

    --inputs DIR: DIR/<variant>/ holds bzImage, vmlinux and nmi_torture.ko.
    Otherwise the variants are built as make torture does (the prod ones
    with lab/config/prod.config, see ensure_kernel) and their bzImage,
    vmlinux and modules copied into OUT/inputs/<variant>/.  The initramfs is
    made there, from the copied modules (the plans may have changed, and
    build/initramfs-*.cpio.gz is shared with other runs).  info, a dict,
    gets each variant's bzImage and module times (which builds were
    measured) and where they come from."""
    out = {}
    # The prod kernels first: their builds take minutes; the test kernels'
    # snapshots then come right after one another.
    for v in sorted(variants, key=lambda v: v not in PROD_VARIANTS):
        if args.inputs:
            d = origin = os.path.join(os.path.abspath(args.inputs), v)
            kernel, ko = os.path.join(d, 'bzImage'), os.path.join(d, 'nmi_torture.ko')
            times = tuple(mtime(x) if os.path.exists(x) else None for x in (kernel, ko))
        else:
            ensure_kernel(v)
            d = os.path.join(args.out, 'inputs', v)
            os.makedirs(d, exist_ok=True)
            kout = origin = os.path.join(BUILD, 'out-' + v)
            kernel, ko = boots.bzimage(v), find_module(kout)
            if not ko:
                raise BenchError('%s: no nmi_torture.ko in %s' % (v, kout))
            if not os.path.exists(kernel):
                raise BenchError('%s: %s missing' % (v, kernel))
            times = (mtime(kernel), mtime(ko))
            for src, name in ((kernel, 'bzImage'), (os.path.join(kout, 'vmlinux'), 'vmlinux'),
                              (ko, 'nmi_torture.ko')):
                shutil.copyfile(src, os.path.join(d, name))
            lockup = find_module(kout, 'test_lockup.ko')
            if lockup:
                shutil.copyfile(lockup, os.path.join(d, 'test_lockup.ko'))
        make_initrd(d)
        if info is not None:
            info[v] = {'from': os.path.relpath(origin, TOP), 'bzImage_mtime': times[0],
                       'ko_mtime': times[1]}
        out[v] = {'kernel': os.path.join(d, 'bzImage'), 'vmlinux': os.path.join(d, 'vmlinux'),
                  'initrd': os.path.join(d, 'initramfs.cpio.gz'),
                  'ko': os.path.join(d, 'nmi_torture.ko')}
        for k, p in out[v].items():
            if not os.path.exists(p):
                raise BenchError('%s: %s missing' % (v, p))
    return out


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


# ---------------------------------------------------------------------------
# step: instruction counts through the gdbstub.
# ---------------------------------------------------------------------------

STEP_BOOT = 'bench-step'
windows.BOOTS[STEP_BOOT] = {'plan': 'bench', 'marker': b'lab: bench: gate idle',
                            'append': ['lab.bench=step']}


class Stepper:
    """One -smp 1 guest stopped by the gdbstub, and the NMIs counted in it."""

    def __init__(self, variant, inp, args, outdir):
        self.variant = variant
        self.args = args
        self.outdir = outdir
        self.syms, self.symtab = windows.read_symbols(inp['vmlinux'])
        need = ('asm_exc_nmi', 'exc_nmi', 'default_idle_call', 'init_uts_ns',
                'init_top_pgt', 'linux_banner', '__per_cpu_offset')
        miss = [n for n in need if n not in self.syms]
        if miss:
            raise BenchError('%s: vmlinux lacks %s' % (variant, ', '.join(miss)))
        gargs = argparse.Namespace(kernel=inp['kernel'], initrd=inp['initrd'], icount=True,
                                   icount_sleep='on', boot_timeout=args.boot_timeout,
                                   banner=windows.read_banner(inp['vmlinux'], self.syms))
        self.guest = windows.Guest(STEP_BOOT, gargs, self.syms, outdir,
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
        except (windows.LabError, windows.Stuck):
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
            raise windows.LabError('register %d: %s' % (n, r))
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
                    self.variant, limit, windows.symbolize(rip, self.symtab)))
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
                self.variant, windows.symbolize(r['rip'], self.symtab)))
        return windows.frame(self.guest.kread64(r['rsp'], 5))

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
                self.variant, windows.symbolize(fr['rip'], self.symtab),
                windows.symbolize(p0['rip'], self.symtab)))
        trace = self.counted(fr)
        left = self.read_pending()
        if left != 0:
            raise BenchError('%s: the internal handler did not claim the NMI (pending %d)'
                             % (self.variant, left))
        self.last_rip = p0['rip']
        rec = {'context': context, 'at': windows.symbolize(p0['rip'], self.symtab),
               'counts': split_counts(trace), 'seconds': round(time.monotonic() - t0, 2),
               'trace': trace}
        # An NMI that follows by itself: the series' external poll.
        fr = self.take_nmi(self.args.poll_wait)
        if fr is not None:
            ptrace = self.counted(fr)
            rec['poll'] = {'at': windows.symbolize(fr['rip'], self.symtab),
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
    except (windows.LabError, windows.Stuck) as e:
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


# ---------------------------------------------------------------------------
# torture: lost external events and their latency histogram.
# ---------------------------------------------------------------------------

def module_symbol(ko, name):
    out = subprocess.run(['nm', '-S', ko], check=True, capture_output=True, text=True).stdout
    return windows.parse_nm(out).get(name)


def detach_raw(sock):
    """Best effort after a failed gdbstub session: detach (which resumes)."""
    try:
        s = vm.connect_unix(sock, 5)
        s.sendall(b'$D#44')
        time.sleep(0.5)
        s.close()
    except OSError:
        pass


def read_histogram(inp, outdir, sock, nt_ext):
    """Stop the running guest through its gdbstub, read nt_ext.hist, open
    the plan's gate and let the guest go on."""
    syms, _ = windows.read_symbols(inp['vmlinux'])
    sym = module_symbol(inp['ko'], 'nt_ext')
    if not sym or not sym[1] or sym[1] < HIST_BUCKETS * 4:
        raise BenchError('nmi_torture.ko: no nt_ext of a usable size')
    gargs = argparse.Namespace(banner=windows.read_banner(inp['vmlinux'], syms))
    g = windows.Guest('bench-torture', gargs, syms, outdir, lambda m: None)
    try:
        g.gdb = windows.Gdb(sock, running=True)
    except (windows.LabError, windows.Stuck):
        detach_raw(sock)
        raise
    try:
        g._setup_memory()
        raw = g.kread(nt_ext + sym[1] - HIST_BUCKETS * 4, HIST_BUCKETS * 4)
        g.kwrite(syms['init_uts_ns'][0] + UTS_NODENAME, b'go\0')
    finally:
        try:
            g.gdb.cmd('D', 10)                  # detach: the VM runs on
        except (windows.LabError, windows.Stuck):
            pass
        g.gdb.close()
    return list(struct.unpack('<%dI' % HIST_BUCKETS, raw))


def vm_argv(inp, outdir, plan_args, cpus, timeout, mem=None, qemu_args=()):
    c = boots.conf()
    argv = ['--kernel', inp['kernel'], '--initrd', inp['initrd'], '--plan', 'bench',
            '--out', outdir, '--timeout', str(timeout), '--cpus', str(cpus),
            '--mem', str(mem or c.get('VM_MEM', '1024')), '--quiet']
    for a in plan_args:
        argv += ['--append', a]
    for a in qemu_args:
        argv.append('--qemu-arg=' + a)
    return argv


def part_torture(variant, inp, args):
    outdir = os.path.join(args.out, 'torture-' + NAME[variant])
    os.makedirs(outdir, exist_ok=True)
    for n in ('console.log', 'results.txt'):
        if os.path.exists(os.path.join(outdir, n)):
            os.unlink(os.path.join(outdir, n))
    sock = os.path.join(outdir, 'gdb.sock')
    params = 'duration=%d:hazards=%s' % (args.torture_seconds, args.torture_hazards)
    if args.torture_params:
        params += ':' + args.torture_params
    argv = vm_argv(inp, outdir, ['lab.bench=torture', 'lab.torture=' + params],
                   boots.conf().get('VM_CPUS', 4), args.torture_seconds + 400,
                   qemu_args=['-gdb', 'unix:%s,server=on,wait=off' % sock])
    box = {}
    th = threading.Thread(target=lambda: box.update(summary=vm.run(vm.parse_args(argv))),
                          daemon=True)
    t0 = time.monotonic()
    th.start()
    hist, hist_error = None, None
    while th.is_alive():
        text = console_text(outdir)
        if 'lab: bench: gate hist' in text:
            try:
                nt_ext = console_value(outdir, 'nt_ext')
                if not nt_ext:
                    raise BenchError('no nt_ext address from the guest')
                hist = read_histogram(inp, outdir, sock, nt_ext)
            except (BenchError, windows.LabError, windows.Stuck, OSError) as e:
                hist_error = str(e)
            break
        time.sleep(0.2)
    th.join()
    b = boots.Boot('torture-' + NAME[variant], box['summary'], outdir)
    t = report.torture_fields(b)
    res = {'seconds': round(time.monotonic() - t0, 1), 'status': b.status,
           'params': params, 'fields': t, 'torture_line': report.torture_line(b),
           'verdict': report.torture_verdict(b), 'console': scan.counts(b.findings),
           'findings': {k: v[:5] for k, v in b.findings.items() if v},
           'gate': b.results.lab.get('bench_gate_hist')}
    if hist is not None:
        served = _int(t.get('ext_serviced'))
        res['hist_total'] = sum(hist)
        if served is not None and sum(hist) != served:
            hist_error = 'histogram holds %d events, ext_serviced=%d' % (sum(hist), served)
        else:
            res['hist'] = {str(i): n for i, n in enumerate(hist) if n}
            res['hist_p50_us'] = hist_percentile(hist, 50)
            res['hist_p99_us'] = hist_percentile(hist, 99)
    if hist_error:
        res['hist_error'] = hist_error
    if not b.completed():
        raise BenchError('%s torture: %s, plan did not complete (%s)' % (
            variant, b.status, outdir), res)
    return res


# ---------------------------------------------------------------------------
# sweep: the highest internal NMI rate without loss.
# ---------------------------------------------------------------------------

def part_sweep(variant, inp, args):
    outdir = os.path.join(args.out, 'sweep-' + NAME[variant])
    rates = [int(x) for x in args.sweep_rates.split(',') if x]
    params = 'duration=%d:hazards=none' % args.sweep_seconds
    if args.sweep_params:
        params += ':' + args.sweep_params
    per_step = args.sweep_seconds + 30
    summary = vm.run(vm.parse_args(vm_argv(
        inp, outdir, ['lab.bench=sweep', 'lab.sweep=' + ','.join(map(str, rates)),
                      'lab.torture=' + params],
        boots.conf().get('VM_CPUS', 4), 300 + per_step * len(rates))))
    b = boots.Boot('sweep-' + NAME[variant], summary, outdir)
    with open(os.path.join(outdir, 'results.txt'), 'rb') as f:
        chunks = parse_sweep(f.read().decode('utf-8', 'replace'))
    steps = []
    for rate, r in chunks:
        t = report.torture_fields(types.SimpleNamespace(results=r))
        steps.append(sweep_step(rate, t))
    for s in steps:
        print('  %s ipi_rate=%d: reached %s/s per CPU, lost %s, unknown %s (late IPIs %s): %s'
              % (NAME[variant], s['rate'], fmt(s['achieved'], '%.0f'), fmt(s['lost'], '%d'),
                 fmt(s['unknown'], '%d'), fmt(s['ipi_slow'], '%d'),
                 'holds' if s['ok'] else s['why']), flush=True)
    res = {'status': b.status, 'params': params, 'steps': steps,
           'max_rate': max_sustained(steps), 'max_rate_noloss': max_sustained(steps, 'noloss'),
           'all_held': bool(steps) and all(x['ok'] for x in steps),
           'seconds': summary['seconds'],
           'console': scan.counts(b.findings),
           'findings': {k: v[:5] for k, v in b.findings.items() if v}}
    if len(steps) != len(rates) or not b.completed():
        raise BenchError('%s sweep: %s, %d of %d steps (%s)' % (
            variant, b.status, len(steps), len(rates), outdir), res)
    return res


# ---------------------------------------------------------------------------
# scale: NMI backtraces on many vCPUs.
# ---------------------------------------------------------------------------

def part_scale(variant, inp, args):
    outdir = os.path.join(args.out, 'scale-' + NAME[variant])
    n = args.scale_cpus
    summary = vm.run(vm.parse_args(vm_argv(
        inp, outdir, ['lab.bench=scale', 'lpj=%d' % vm.host_lpj()], n, args.scale_timeout,
        mem=max(1024, 32 * n))))
    b = boots.Boot('scale-' + NAME[variant], summary, outdir)
    text = console_text(outdir)
    cpus = scan.backtrace_cpus(text)
    booted = _int(b.results.lab.get('scale_cpus'))
    m = re.search(r'smp: Brought up \d+ nodes?, (\d+) CPUs', text)
    res = {'status': b.status, 'seconds': summary['seconds'], 'cpus': n,
           'online': booted if booted is not None else (_int(m.group(1)) if m else None),
           'backtraces': len(cpus), 'missing': [c for c in range(n) if c not in cpus],
           'sysrq_l_s': b.results.lab.get('sysrq_l_s'),
           'console': scan.counts(b.findings),
           'findings': {k: v[:5] for k, v in b.findings.items() if v}}
    res['ok'] = (b.completed() and res['online'] == n and not res['missing'] and
                 res['console']['unknown'] == 0 and scan.failing(b.findings) == 0)
    if not b.completed():
        raise BenchError('%s scale: %s after %.0f s (%s)' % (variant, b.status,
                                                               summary['seconds'], outdir), res)
    return res


# ---------------------------------------------------------------------------
# The report.
# ---------------------------------------------------------------------------

def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def summary_of(data):
    b, s = data.get('instrument', {}), data.get('series', {})
    out = {}
    for _, (vb, vs), suffix in CONFIGS:
        out.update(insn_ratios(data.get(vb, {}), data.get(vs, {}), suffix))
    out['lost_ext_base'] = _int(get(b, 'torture', 'fields', 'ext_lost'))
    out['lost_ext_series'] = _int(get(s, 'torture', 'fields', 'ext_lost'))
    for key, src in (('', s), ('_base', b)):
        for p in ('p50', 'p99'):
            out['ext_%s_ms%s' % (p, key)] = us_to_ms(_int(get(src, 'torture', 'fields',
                                                                'ext_%s_us' % p)))
    for key, field in (('max_rate_ratio', 'max_rate'),
                       ('max_rate_noloss_ratio', 'max_rate_noloss')):
        mb, ms = get(b, 'sweep', field), get(s, 'sweep', field)
        out[key] = ratio(ms, mb)
        if ms is not None and mb is None and get(b, 'sweep', 'steps'):
            out[key] = float('inf')         # the base held at no step
    return out


CONFIG_TITLE = {
    'test': 'test configuration (nmi-test.config: lockdep, DEBUG_ENTRY, NMI_CHECK_CPU...)',
    'prod': 'prod configuration (nmi-test.config + prod.config: without them)',
}


def table(data, args):
    b, s = data.get('instrument', {}), data.get('series', {})
    parts = getattr(args, 'part_list', PARTS)
    rows = []

    def row(label, vb, vs, spec='%d', r=True):
        rr = ratio(vs, vb) if r and isinstance(vb, (int, float)) and \
            isinstance(vs, (int, float)) else None
        rows.append((label, fmt(vb, spec), fmt(vs, spec), fmt(rr, '%.2f') if r else ''))

    def sec(title):
        rows.append((title, None, None, None))

    for config, (vb, vs), _ in CONFIGS:
        cb, cs = data.get(vb, {}), data.get(vs, {})
        if 'step' not in parts or (config != 'test' and not (get(cb, 'step') or
                                                              get(cs, 'step'))):
            continue
        sec('NMI round trip, instructions, %s (median of %d; single-stepped, -smp 1)' % (
            CONFIG_TITLE[config], args.reps))
        for ctx, name in (('kernel', 'kernel->kernel (idle loop)'), ('user', 'user->kernel')):
            for k, lab_ in (('entry', 'entry asm'), ('dispatch', 'dispatcher (exc_nmi)'),
                            ('total', 'round trip (entry + dispatcher)')):
                row('  %s: %s' % (name, lab_), get(cb, 'step', ctx, k),
                    get(cs, 'step', ctx, k), '%g')
            row('  %s: REP iterations (not counted)' % name, get(cb, 'step', ctx, 'rep'),
                get(cs, 'step', ctx, 'rep'), '%g', r=False)
        pb = get(cb, 'step', 'kernel', 'poll_total')
        ps = get(cs, 'step', 'kernel', 'poll_total')
        row('  poll NMI after an internal one (external pass), total', pb, ps, '%g', r=False)
    if 'torture' in parts:
        torture_rows(b, s, args, row, rows, sec)
    if 'sweep' in parts:
        sweep_rows(b, s, data, args, rows, sec)
    if 'scale' in parts:
        scale_rows(b, s, args, row, rows, sec)
    w0 = max(len(r[0]) for r in rows if r[1] is not None)
    w1 = max([len('base')] + [len(r[1]) for r in rows if r[1] is not None])
    w2 = max([len('series')] + [len(r[2]) for r in rows if r[1] is not None])
    out = ['%-*s  %*s  %*s  %s' % (w0, '', w1, 'base', w2, 'series', 'series/base')]
    for label, vb, vs, rr in rows:
        if vb is None:
            out.append(label)
        else:
            out.append('%-*s  %*s  %*s  %s' % (w0, label, w1, vb, w2, vs, rr))
    return out


def torture_rows(b, s, args, row, rows, sec):
    sec('External events under internal NMI load (torture, %s s, %s)' % (
        args.torture_seconds, get(s, 'torture', 'params') or get(b, 'torture', 'params') or '-'))
    tb, ts = get(b, 'torture', 'fields') or {}, get(s, 'torture', 'fields') or {}
    for k, lab_ in (('int_raised', 'internal events raised'),
                    ('ext_raised', 'external events raised'),
                    ('ext_serviced', 'external events serviced'),
                    ('ext_lost', 'external events lost'),
                    ('ext_late', 'external late (> deadline, CPU kept taking NMIs)'),
                    ('ext_p50_us', 'external latency p50 (us)'),
                    ('ext_p99_us', 'external latency p99 (us)'),
                    ('ext_max_us', 'external latency max (us)'),
                    ('unknown', 'unknown NMIs'),
                    ('ipi_slow', 'late IPIs (explain unknown NMIs)')):
        row('  ' + lab_, _int(tb.get(k)), _int(ts.get(k)), '%d',
            r=k.startswith('ext_p') or k == 'ext_max_us')
    rows.append(('  torture verdict', get(b, 'torture', 'verdict') or '-',
                 get(s, 'torture', 'verdict') or '-', ''))


def sweep_rows(b, s, data, args, rows, sec):
    sec('Highest internal NMI rate per CPU without loss (sweep, %s s steps, %s)' % (
        args.sweep_seconds, get(s, 'sweep', 'params') or '-'))
    steps_b = {x['rate']: x for x in get(b, 'sweep', 'steps') or []}
    steps_s = {x['rate']: x for x in get(s, 'sweep', 'steps') or []}
    for rate in sorted(set(steps_b) | set(steps_s)):
        def cell(x):
            if not x:
                return '-'
            return '%s/s %s' % (fmt(x['achieved'], '%.0f'),
                                'ok' if x['ok'] else 'NO: ' + x['why'])
        rows.append(('  ipi_rate=%d: reached, verdict' % rate, cell(steps_b.get(rate)),
                     cell(steps_s.get(rate)), ''))
    def held(v, key):
        m = get(v, 'sweep', key)
        if m is None:
            return 'none' if get(v, 'sweep', 'steps') else None
        return ('>=%d' if get(v, 'sweep', 'all_held') and key == 'max_rate' else '%d') % m
    rows.append(('  highest rate held: no loss, unknown explained',
                 held(b, 'max_rate') or '-', held(s, 'max_rate') or '-',
                 fmt(summary_of(data).get('max_rate_ratio'), '%.2f')))
    rows.append(('  highest rate held: no loss',
                 held(b, 'max_rate_noloss') or '-', held(s, 'max_rate_noloss') or '-',
                 fmt(summary_of(data).get('max_rate_noloss_ratio'), '%.2f')))


def scale_rows(b, s, args, row, rows, sec):
    sec('NMI backtrace (sysrq-l) on %d vCPUs' % args.scale_cpus)
    for k, lab_ in (('online', 'CPUs online'), ('backtraces', 'CPUs that printed a backtrace')):
        row('  ' + lab_, get(b, 'scale', k), get(s, 'scale', k), '%d', r=False)
    cb, cs = get(b, 'scale', 'console') or {}, get(s, 'scale', 'console') or {}
    row('  "unknown reason" lines', cb.get('unknown'), cs.get('unknown'), '%d', r=False)
    row('  boot to verdict (s)', get(b, 'scale', 'seconds'), get(s, 'scale', 'seconds'),
        '%.0f', r=False)
    rows.append(('  complete', {True: 'yes', False: 'NO'}.get(get(b, 'scale', 'ok'), '-'),
                 {True: 'yes', False: 'NO'}.get(get(s, 'scale', 'ok'), '-'), ''))


def notes(data):
    """What else a reader of the table should know: parts that failed,
    console findings (counts, and the first lines of the failing kinds),
    histogram problems."""
    out = []
    for v in ALL_VARIANTS:
        for part in PARTS:
            p = get(data, v, part)
            if p is None:
                continue
            if p.get('error'):
                out.append('%s %s: FAILED: %s' % (NAME[v], part, p['error']))
            elif part != 'torture' and p.get('status') not in (None, 'pass'):
                out.append('%s %s: the plan ended with %s' % (NAME[v], part, p['status']))
            counts = {k: n for k, n in (p.get('console') or {}).items() if n}
            if counts:
                out.append('%s %s console: %s' % (NAME[v], part, ', '.join(
                    '%s %d' % kv for kv in sorted(counts.items()))))
            for kind, lines in sorted((p.get('findings') or {}).items()):
                if kind in scan.INFO_KINDS:
                    continue
                for line in lines[:2]:
                    out.append('    %s' % line)
            if p.get('hist_error'):
                out.append('%s torture: no histogram (%s): the plot uses p50/p99/max'
                           % (NAME[v], p['hist_error']))
    return out


def plot(data, path):
    colours = {'instrument': (30, 90, 200), 'series': (210, 50, 30)}
    series = []
    kinds = set()
    for v in VARIANTS:
        t = get(data, v, 'torture')
        if not t:
            continue
        f = t.get('fields', {})
        p50, p99, pmax = (_int(f.get('ext_%s_us' % k)) for k in ('p50', 'p99', 'max'))
        if t.get('hist'):
            hist = [0] * HIST_BUCKETS
            for i, n in t['hist'].items():
                hist[int(i)] = n
            pts = hist_cdf(hist)
            kinds.add('histogram')
        else:
            pts = percentile_cdf(p50, p99, pmax)
            kinds.add('p50/p99/max only')
        if not pts:
            continue
        label = '%s: p50 %s, p99 %s, max %s; lost %s of %s' % (
            NAME[v], us_label(p50 or 0), us_label(p99 or 0), us_label(pmax or 0),
            f.get('ext_lost', '-'), f.get('ext_raised', '-'))
        series.append((label, colours[v], pts))
    if not series:
        return False
    params = get(data, 'series', 'torture', 'params') or get(data, 'instrument', 'torture',
                                                           'params') or ''
    png = plot_cdf(series, 'External NMI events: service latency CDF',
                   'torture %s, 4 vCPUs, QEMU TCG (%s)' % (params.replace(':', ' '),
                                                          ', '.join(sorted(kinds))))
    with open(path, 'wb') as f:
        f.write(png)
    return True


def render(data, args):
    lines = table(data, args)
    extra = notes(data)
    if extra:
        lines += ['', 'Notes:'] + ['  ' + x for x in extra]
    summ = summary_of(data)
    lines += ['', 'Instructions: entry = asm_exc_nmi and the entry code it runs outside',
              'exc_nmi; dispatcher = exc_nmi and everything it calls; round trip = both.',
              'The NMI is a claimed internal one (torture module, hazards=none, nothing',
              'sending).  The poll NMI that may follow on the series is not in the round trip.']
    built = data.get('inputs') or {}
    if built:
        lines += ['', 'Kernels (snapshots of these builds):']
        for v in ALL_VARIANTS:
            if v in built:
                lines.append('  %-12s bzImage %s, nmi_torture.ko %s  (%s)' % (
                    NAME[v], built[v].get('bzImage_mtime', '-'),
                    built[v].get('ko_mtime', '-'), built[v].get('from', '-')))
    txt = '\n'.join(lines) + '\n' + bench_line(summ) + '\n'
    return txt, summ


# ---------------------------------------------------------------------------

def run_part(part, variant, inp, args, data):
    fn = {'step': part_step, 'torture': part_torture, 'sweep': part_sweep,
          'scale': part_scale}[part]
    print('bench: %s on %s' % (part, NAME[variant]), flush=True)
    t0 = time.monotonic()
    try:
        res = fn(variant, inp, args)
    except BenchError as e:
        res = e.args[1] if len(e.args) > 1 else {}
        res['error'] = e.args[0]
        print('bench: %s on %s FAILED: %s' % (part, NAME[variant], e.args[0]), flush=True)
    except (windows.LabError, windows.Stuck, OSError, subprocess.CalledProcessError) as e:
        res = {'error': '%s: %s' % (type(e).__name__, e)}
        print('bench: %s on %s FAILED: %s' % (part, NAME[variant], res['error']), flush=True)
    res.setdefault('seconds', round(time.monotonic() - t0, 1))
    print('bench: %s on %s done in %.0f s' % (part, NAME[variant], time.monotonic() - t0),
          flush=True)
    data.setdefault(variant, {})[part] = res


def save(data, args):
    def strip(o):
        # The raw traces stay out of the JSON (thousands of steps each).
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k != 'trace'}
        if isinstance(o, list):
            return [strip(x) for x in o]
        return o
    with open(os.path.join(args.out, 'bench.json'), 'w') as f:
        json.dump(strip(data), f, indent=1, default=str)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true',
                   help='shorter runs: 3 NMIs per context, 20 s torture, 3 sweep steps '
                   'of 6 s')
    p.add_argument('--out', default=os.path.join(BUILD, 'bench'))
    p.add_argument('--inputs', help='DIR/<variant>/ (instrument, series, instrument-prod, '
                   'series-prod) with bzImage, vmlinux, nmi_torture.ko (default: build them '
                   'and snapshot them into OUT/inputs)')
    p.add_argument('--parts', default=','.join(PARTS), help='comma list of ' + ', '.join(PARTS))
    p.add_argument('--insn-only', action='store_true',
                   help='only the instruction counts (--parts step), in both configurations')
    p.add_argument('--variants', default=','.join(ALL_VARIANTS),
                   help='comma list of %s (the -prod ones run only the %s part)' % (
                       ', '.join(ALL_VARIANTS), ', '.join(PROD_PARTS)))
    p.add_argument('--reps', type=int, help='NMIs counted per context (default 5)')
    p.add_argument('--step-limit', type=int, default=200000)
    p.add_argument('--poll-wait', type=float, default=2.0,
                   help='seconds to wait for an NMI following the counted one')
    p.add_argument('--boot-timeout', type=float, default=300)
    p.add_argument('--torture-seconds', type=int, help='default 90')
    p.add_argument('--torture-hazards', default='all')
    p.add_argument('--torture-params', default='ipi_rate=4000',
                   help='more key=value:key=value (default ipi_rate=4000, four times the '
                   'torture plan\'s internal load)')
    p.add_argument('--sweep-rates',
                   help='ipi_rate steps (default 100,250,1000,4000,16000,64000)')
    p.add_argument('--sweep-seconds', type=int, help='default 15')
    p.add_argument('--sweep-params', default='')
    p.add_argument('--scale-cpus', type=int, help='default 64')
    p.add_argument('--scale-timeout', type=float, default=900)
    p.add_argument('--report-only', action='store_true',
                   help='print the table from OUT/bench.json, run nothing')
    p.add_argument('-v', '--verbose', action='store_true')
    args = p.parse_args(argv)
    q = args.quick
    for k, full, quick in (('reps', 5, 3), ('torture_seconds', 90, 20),
                           ('sweep_rates', '100,250,1000,4000,16000,64000', '1000,4000,16000'),
                           ('sweep_seconds', 15, 6), ('scale_cpus', 64, 64)):
        if getattr(args, k) is None:
            setattr(args, k, quick if q else full)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    if args.insn_only:
        args.parts = 'step'
    parts = [x for x in args.parts.split(',') if x]
    variants = [x for x in args.variants.split(',') if x]
    for x in parts:
        if x not in PARTS:
            p.error('unknown part %s' % x)
    for x in variants:
        if x not in ALL_VARIANTS:
            p.error('unknown variant %s' % x)
    # Kernels that no selected part runs on are neither built nor copied.
    variants = [v for v in ALL_VARIANTS if v in variants and
                (v in VARIANTS or any(x in PROD_PARTS for x in parts))]
    args.part_list = parts
    t0 = time.monotonic()
    if args.report_only:
        with open(os.path.join(args.out, 'bench.json')) as f:
            data = json.load(f)
        saved = data.get('args', {})
        for k in ('reps', 'torture_seconds', 'sweep_seconds', 'scale_cpus', 'part_list'):
            setattr(args, k, saved.get(k, getattr(args, k)))
    else:
        data = {'args': {k: v for k, v in vars(args).items()}, 'inputs': {}}
        try:
            inputs = prepare_inputs(args, variants, data['inputs'])
        except (BenchError, subprocess.CalledProcessError, OSError) as e:
            print('bench: inputs: %s' % e, file=sys.stderr)
            return 2
        for v, i in data['inputs'].items():
            print('bench: %s: bzImage of %s, nmi_torture.ko of %s (%s)' % (
                NAME[v], i['bzImage_mtime'], i['ko_mtime'], i['from']), flush=True)
        for part in parts:
            for v in variants:
                if v in PROD_VARIANTS and part not in PROD_PARTS:
                    continue
                run_part(part, v, inputs[v], args, data)
                save(data, args)
        data['seconds'] = round(time.monotonic() - t0, 1)
        save(data, args)
    txt, summ = render(data, args)
    with open(os.path.join(args.out, 'bench.txt'), 'w') as f:
        f.write(txt)
    png = os.path.join(args.out, 'ext-latency.png')
    if plot(data, png):
        print('bench: latency CDF in %s' % png)
    print('bench: %s in %.0f s; details in %s' % (
        'report' if args.report_only else 'all parts',
        data.get('seconds', time.monotonic() - t0), os.path.join(args.out, 'bench.json')))
    print()
    sys.stdout.write(txt)
    failed = [(v, part) for v in ALL_VARIANTS for part in PARTS if get(data, v, part, 'error')]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
