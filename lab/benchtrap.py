# SPDX-License-Identifier: GPL-2.0
"""make bench's parts about traps taken inside NMI handlers (issue: return
from #BP and #PF in NMI context without IRET).

  nesting  The torture test with trap hazards in every handler run, with
           the DEBUG_ENTRY early unmask off (x86/nmi_unmask_early=0), so that
           NMIs nest only where a trap's return unmasks them.  On the series
           twice per hazard set: x86/nmi_trap_iret=1 (every trap returns with
           IRET, as in the base) and =0 (the return without IRET).  Hazard
           sets: int3,pf (the traps the new return serves) and all (with the
           hardware breakpoint and the IRET-to-self unmask hazard, which
           nest by design), and bp,unmask alone, the floor all can fall to.
           Nested NMIs and repeats per minute, events lost, external p99
           latency.  The base counts neither nested NMIs nor repeats (its
           keys are "-"); it runs once with the int3 and pf hazards as it
           is, for losses and latency.
  trapret  Instructions of one trap return inside an NMI: a -smp 1 guest
           with the int3 and pf hazards in the internal handler, one claimed
           internal NMI single-stepped (as the step part does) per
           repetition; every return through error_return (from its first
           instruction to the first one back outside the entry text and the
           return thunks) is counted and told int3 or #PF by the exception
           entry that preceded it.  On the series with nmi_trap_iret=1 and 0,
           on the base as it is.  Median per trap kind.
"""

import os
import time

import boots
import gdbstub
import report
import vm
from benchstats import BenchError, NAME, get, median
from benchstep import STEP_BOOT, Stepper, console_text
import guest


TRAP_BOOT = 'bench-trap'
guest.BOOTS[TRAP_BOOT] = dict(guest.BOOTS[STEP_BOOT],
                              append=guest.BOOTS[STEP_BOOT]['append'] +
                              ['lab.bench_hazards=int3,pf'])


# (label, hazards, nmi_trap_iret) of the series' nesting runs.
NEST_RUNS = (('iret', 'int3,pf', 1), ('fast', 'int3,pf', 0),
             ('iret-all', 'all', 1), ('fast-all', 'all', 0), ('floor', 'bp,unmask', 0))


# Symbols of the return thunks a RET in the entry text may jump to.
THUNK_WORDS = ('return_thunk', 'safe_ret', 'untrain_ret')


def per_min(n, secs):
    if n is None or not secs:
        return None
    return round(n * 60.0 / secs, 1)


def nesting_run(variant, inp, args, label, hazards, knob):
    outdir = os.path.join(args.out, 'nesting-%s-%s' % (NAME[variant], label))
    for n in ('console.log', 'results.txt'):
        if os.path.exists(os.path.join(outdir, n)):
            os.unlink(os.path.join(outdir, n))
    params = 'duration=%d:hazards=%s' % (args.nesting_seconds, hazards)
    append = ['lab.torture=' + params]
    if knob is not None:
        append.append('lab.debugfs=x86/nmi_unmask_early=0,x86/nmi_trap_iret=%d' % knob)
    spec = boots.spec(inp['kernel'], inp['initrd'], 'torture', outdir, variant,
                      timeout=args.nesting_seconds + 400, quiet=True, append=append)
    b = boots.Boot('nesting-' + label, vm.run(spec), outdir)
    t = report.torture_fields(b)
    secs = args.nesting_seconds

    def num(k):
        v = t.get(k)
        return int(v) if v is not None and str(v).isdigit() else None
    lost = [num('int_lost'), num('ext_lost')]
    res = {'hazards': hazards, 'nmi_trap_iret': knob, 'status': b.status,
           'verdict': report.torture_verdict(b), 'torture_line': report.torture_line(b),
           'nested': num('nested'), 'repeats': num('repeats'),
           'lost': None if None in lost else sum(lost),
           'int3_hits': num('int3_hits'), 'pf_hits': num('pf_hits'),
           'unmasks': num('unmasks'), 'ext_p99_us': num('ext_p99_us')}
    res['nested_per_min'] = per_min(res['nested'], secs)
    res['repeats_per_min'] = per_min(res['repeats'], secs)
    if b.results.lab.get('error'):
        res['error'] = 'plan: %s' % b.results.lab.get('error')
    elif not b.completed():
        res['error'] = '%s, plan did not complete (%s)' % (b.status, outdir)
    return res


def part_nesting(variant, inp, args):
    # The base has neither knob nor counters: one run with the trap hazards
    # as it is (its DEBUG_ENTRY unmasks NMIs early), for losses and latency.
    runs = NEST_RUNS if variant == 'series' else (('iret', 'int3,pf', None),)
    out = {'runs': {}}
    for label, hazards, knob in runs:
        r = nesting_run(variant, inp, args, label, hazards, knob)
        out['runs'][label] = r
        print('  %s %-8s hazards=%-9s nmi_trap_iret=%s: nested %s/min, repeats %s/min, '
              'lost %s, int3 %s, pf %s, ext p99 %s us' % (
                  NAME[variant], label, hazards, '-' if knob is None else knob,
                  r['nested_per_min'], r['repeats_per_min'], r['lost'], r['int3_hits'],
                  r['pf_hits'], r['ext_p99_us']), flush=True)
    bad = ['%s: %s' % (k, r['error']) for k, r in out['runs'].items() if r.get('error')]
    if bad:
        raise BenchError('nesting: ' + '; '.join(bad), out)
    return out


def trap_returns(trace, syms):
    """[(kind, instructions, path)] of every return through error_return in
    trace ([(rip, cls)]): kind 'int3' or 'pf' from the exception entry seen
    last before it (None if neither), path 'iret' when it ran IRETQ."""
    lo = syms['__entry_text_start'][0]
    hi = syms['__entry_text_end'][0]
    thunks = [(a, a + (n or 1)) for k, (a, n) in syms.items()
              if any(w in k for w in THUNK_WORDS)]
    entries = {syms['asm_exc_int3'][0]: 'int3', syms['asm_exc_page_fault'][0]: 'pf'}
    start = syms['error_return'][0]
    iret = syms.get('native_irq_return_iret', (None,))[0]

    def inside(rip):
        return lo <= rip < hi or any(a <= rip < b for a, b in thunks)
    out = []
    kind = None
    i = 0
    while i < len(trace):
        rip = trace[i][0]
        if rip in entries:
            kind = entries[rip]
        if rip != start:
            i += 1
            continue
        n, prev, path = 0, None, 'fast'
        while i < len(trace) and inside(trace[i][0]):
            if trace[i][0] != prev:
                n += 1
            if trace[i][0] == iret:
                path = 'iret'
            prev = trace[i][0]
            i += 1
        out.append((kind, n, path))
        kind = None
    return out


def part_trapret(variant, inp, args):
    outdir = os.path.join(args.out, 'trapret-' + NAME[variant])
    st = Stepper(variant, inp, args, outdir, boot=TRAP_BOOT)
    knob = st.syms.get('nmi_trap_iret')
    need = ('error_return', '__entry_text_start', '__entry_text_end', 'asm_exc_int3',
            'asm_exc_page_fault')
    miss = [n for n in need if n not in st.syms]
    if miss:
        raise BenchError('%s: vmlinux lacks %s' % (variant, ', '.join(miss)))
    settings = [('fast', 0), ('iret', 1)] if knob else [('iret', None)]
    t0 = time.monotonic()
    res = {}
    try:
        st.start()
        for label, val in settings:
            if val is not None:
                st.guest.kwrite(knob[0], bytes([val]))
            seen, totals = [], []
            for i in range(args.reps):
                rec = st.sample('kernel', st.anchor_kernel())
                rets = trap_returns(rec['trace'], st.syms)
                seen.append(rets)
                totals.append(rec['counts']['total'])
                print('  %s nmi_trap_iret=%s NMI %d: round trip %d, trap returns %s' % (
                    NAME[variant], '-' if val is None else val, i + 1,
                    rec['counts']['total'],
                    ', '.join('%s %d (%s)' % r for r in rets)), flush=True)
            d = {'returns': seen, 'roundtrip': median(totals)}
            for kind in ('int3', 'pf'):
                n = [c for rets in seen for k, c, _ in rets if k == kind]
                paths = sorted({p for rets in seen for k, _, p in rets if k == kind})
                d[kind] = median(n) if n else None
                d[kind + '_paths'] = paths
            res[label] = d
        st.open_gate()
        st.run_until_console('lab: bench: gate user')
        res['status'] = st.finish()
    except (gdbstub.LabError, gdbstub.Stuck) as e:
        raise BenchError('%s trapret: %s' % (variant, e), res)
    finally:
        st.stop()
    res['seconds'] = round(time.monotonic() - t0, 1)
    if not any(res.get(lab, {}).get('int3') for lab, _ in settings):
        raise BenchError('%s trapret: no int3 return seen (%s)' % (
            variant, console_text(outdir)[-200:]), res)
    return res


def summary(data):
    """BENCH keys of the two parts."""
    out = {}
    runs = get(data, 'series', 'nesting', 'runs') or {}
    for key, label in (('series', 'iret'), ('fastret', 'fast'), ('series_all', 'iret-all'),
                       ('fastret_all', 'fast-all'), ('floor', 'floor')):
        for m in ('nested', 'repeats'):
            out['%s_per_min_%s' % (m, key)] = get(runs, label, m + '_per_min')
    out['nested_per_min_base'] = None
    out['repeats_per_min_base'] = None
    for key, v, label in (('base', 'instrument', 'iret'), ('series', 'series', 'iret'),
                          ('fastret', 'series', 'fast')):
        us = get(data, v, 'nesting', 'runs', label, 'ext_p99_us')
        out['ext_p99_ms_trap_' + key] = None if us is None else us / 1000.0
    for kind in ('int3', 'pf'):
        out['%s_return_insns_base' % kind] = get(data, 'instrument', 'trapret', 'iret', kind)
        out['%s_return_insns_iret' % kind] = get(data, 'series', 'trapret', 'iret', kind)
        out['%s_return_insns_fast' % kind] = get(data, 'series', 'trapret', 'fast', kind)
    return out


def rows(data, args, row, sec):
    runs = get(data, 'series', 'nesting', 'runs') or {}
    base = get(data, 'instrument', 'nesting', 'runs', 'iret') or {}
    if runs or base:
        sec('Nested NMIs from traps in handlers (torture, %s s, nmi_unmask_early=0; '
            'base: as it is, nesting not counted)' % args.nesting_seconds)
        for label, hazards, knob in NEST_RUNS:
            r = runs.get(label, {})
            b = base if label == 'iret' else {}
            name = 'hazards=%s, %s' % (hazards, 'IRET' if knob else 'no IRET')
            row('  %s: nested/min' % name, None, r.get('nested_per_min'), '%g', r=False)
            row('  %s: repeats/min' % name, None, r.get('repeats_per_min'), '%g', r=False)
            row('  %s: lost' % name, b.get('lost'), r.get('lost'), '%g', r=False)
            row('  %s: external p99 (us)' % name, b.get('ext_p99_us'), r.get('ext_p99_us'),
                '%g', r=False)
    tb, ts = get(data, 'instrument', 'trapret'), get(data, 'series', 'trapret')
    if tb or ts:
        sec('Trap return inside an NMI, instructions (median of %d NMIs; base: IRET; '
            'series: with IRET | without)' % args.reps)
        for kind in ('int3', 'pf'):
            row('  %s return, IRET' % kind, get(tb, 'iret', kind), get(ts, 'iret', kind), '%g')
            row('  %s return, without IRET' % kind, get(tb, 'iret', kind),
                get(ts, 'fast', kind), '%g')
        row('  NMI round trip with its traps, IRET', get(tb, 'iret', 'roundtrip'),
            get(ts, 'iret', 'roundtrip'), '%g')
        row('  NMI round trip with its traps, without IRET', get(tb, 'iret', 'roundtrip'),
            get(ts, 'fast', 'roundtrip'), '%g')
