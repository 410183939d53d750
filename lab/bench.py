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
  nesting, trapret
           Traps inside NMI handlers returning with and without IRET:
           nested NMIs and repeats per minute under the torture test's trap
           hazards, and the instructions of one int3 and one #PF return
           (lab/benchtrap.py).

Output: a table (stdout and OUT/bench.txt), OUT/bench.json with every
sample, OUT/ext-latency.svg (latency CDFs), and the last line

  BENCH entry_insn_ratio=.. user_entry_insn_ratio=.. dispatch_insn_ratio=..
        lost_ext_base=.. lost_ext_series=.. ext_p50_ms=.. ext_p99_ms=..
        max_rate_ratio=.. ext_p50_ms_base=.. ext_p99_ms_base=..
        max_rate_noloss_ratio=.. roundtrip_insn_ratio=..
        entry_insn_ratio_prod=.. user_entry_insn_ratio_prod=..
        dispatch_insn_ratio_prod=.. roundtrip_insn_ratio_prod=..
        nested_per_min_{base,series,fastret,...}=..
        repeats_per_min_{...}=.. {int3,pf}_return_insns_{base,iret,fast}=..

(ratios are series / base; the instruction ratios are the kernel-mode
NMI's but for user_entry; the _prod ones are the prod configuration's, the
others the test configuration's; the latency keys without suffix are the
series'); a key whose part was not run or not measured is "-".  A
timing is a measurement, never a verdict: the exit status is non-zero only
when a part could not be measured.
"""

import argparse
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

import boots
import gdbstub
import guest
import kcode
import report
import scan
import vm
from benchreport import plot, render
from benchstats import (ALL_VARIANTS, BenchError, HIST_BUCKETS, NAME, PARTS, PROD_PARTS,
                        PROD_VARIANTS, VARIANTS, _int, fmt, get, hist_percentile, max_sustained,
                        parse_sweep, sweep_step)
from benchstep import UTS_NODENAME, console_text, console_value, part_step
from benchtrap import part_nesting, part_trapret


LAB = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(LAB)
BUILD = os.path.join(TOP, 'build')
PROD_CONFIG = 'lab/config/prod.config'


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
    as its test twin, with its own row of lab/config/variants (prod.config
    merged after the test fragments)."""
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
            subprocess.run(prod_kbuild_argv(variant), check=True)
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



def module_symbol(ko, name):
    out = subprocess.run(['nm', '-S', ko], check=True, capture_output=True, text=True).stdout
    return kcode.parse_nm(out).get(name)


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
    syms, _ = kcode.read_symbols(inp['vmlinux'])
    sym = module_symbol(inp['ko'], 'nt_ext')
    if not sym or not sym[1] or sym[1] < HIST_BUCKETS * 4:
        raise BenchError('nmi_torture.ko: no nt_ext of a usable size')
    gargs = argparse.Namespace(banner=kcode.read_banner(inp['vmlinux'], syms))
    g = guest.Guest('bench-torture', gargs, syms, outdir, lambda m: None)
    try:
        g.gdb = gdbstub.Gdb(sock, running=True)
    except (gdbstub.LabError, gdbstub.Stuck):
        detach_raw(sock)
        raise
    try:
        g._setup_memory()
        raw = g.kread(nt_ext + sym[1] - HIST_BUCKETS * 4, HIST_BUCKETS * 4)
        g.kwrite(syms['init_uts_ns'][0] + UTS_NODENAME, b'go\0')
    finally:
        try:
            g.gdb.cmd('D', 10)                  # detach: the VM runs on
        except (gdbstub.LabError, gdbstub.Stuck):
            pass
        g.gdb.close()
    return list(struct.unpack('<%dI' % HIST_BUCKETS, raw))


def vm_spec(variant, inp, outdir, plan_args, cpus, timeout, mem=None, qemu_args=()):
    return boots.spec(inp['kernel'], inp['initrd'], 'bench', outdir, variant, cpus=cpus, mem=mem,
                      timeout=timeout, quiet=True, append=list(plan_args),
                      qemu_args=list(qemu_args))


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
    spec = vm_spec(variant, inp, outdir, ['lab.bench=torture', 'lab.torture=' + params],
                   None, args.torture_seconds + 400,
                   qemu_args=['-gdb', 'unix:%s,server=on,wait=off' % sock])
    box = {}
    th = threading.Thread(target=lambda: box.update(summary=vm.run(spec)),
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
            except (BenchError, gdbstub.LabError, gdbstub.Stuck, OSError) as e:
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


def part_sweep(variant, inp, args):
    outdir = os.path.join(args.out, 'sweep-' + NAME[variant])
    rates = [int(x) for x in args.sweep_rates.split(',') if x]
    params = 'duration=%d:hazards=none' % args.sweep_seconds
    if args.sweep_params:
        params += ':' + args.sweep_params
    per_step = args.sweep_seconds + 30
    summary = vm.run(vm_spec(
        variant, inp, outdir,
        ['lab.bench=sweep', 'lab.sweep=' + ','.join(map(str, rates)), 'lab.torture=' + params],
        None, 300 + per_step * len(rates)))
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


def part_scale(variant, inp, args):
    outdir = os.path.join(args.out, 'scale-' + NAME[variant])
    n = args.scale_cpus
    summary = vm.run(vm_spec(
        variant, inp, outdir, ['lab.bench=scale', 'lpj=%d' % vm.host_lpj()], n,
        args.scale_timeout, mem=max(1024, 32 * n)))
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


def run_part(part, variant, inp, args, data):
    fn = {'step': part_step, 'torture': part_torture, 'sweep': part_sweep,
          'scale': part_scale, 'nesting': part_nesting, 'trapret': part_trapret}[part]
    print('bench: %s on %s' % (part, NAME[variant]), flush=True)
    t0 = time.monotonic()
    try:
        res = fn(variant, inp, args)
    except BenchError as e:
        res = e.args[1] if len(e.args) > 1 else {}
        res['error'] = e.args[0]
        print('bench: %s on %s FAILED: %s' % (part, NAME[variant], e.args[0]), flush=True)
    except (gdbstub.LabError, gdbstub.Stuck, OSError, subprocess.CalledProcessError) as e:
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
    p.add_argument('--nesting-seconds', type=int, help='default 60 (nesting part, per run)')
    p.add_argument('--scale-cpus', type=int, help='default 64')
    p.add_argument('--scale-timeout', type=float, default=900)
    p.add_argument('--report-only', action='store_true',
                   help='print the table from OUT/bench.json, run nothing')
    p.add_argument('-v', '--verbose', action='store_true')
    args = p.parse_args(argv)
    q = args.quick
    for k, full, quick in (('reps', 5, 3), ('torture_seconds', 90, 20),
                           ('sweep_rates', '100,250,1000,4000,16000,64000', '1000,4000,16000'),
                           ('sweep_seconds', 15, 6), ('scale_cpus', 64, 64),
                           ('nesting_seconds', 60, 20)):
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
        for k in ('reps', 'torture_seconds', 'sweep_seconds', 'scale_cpus', 'part_list',
                  'nesting_seconds'):
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
    svg = os.path.join(args.out, 'ext-latency.svg')
    if plot(data, svg):
        print('bench: latency CDF in %s' % svg)
    print('bench: %s in %.0f s; details in %s' % (
        'report' if args.report_only else 'all parts',
        data.get('seconds', time.monotonic() - t0), os.path.join(args.out, 'bench.json')))
    print()
    sys.stdout.write(txt)
    failed = [(v, part) for v in ALL_VARIANTS for part in PARTS if get(data, v, part, 'error')]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
