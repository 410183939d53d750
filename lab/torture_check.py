# SPDX-License-Identifier: GPL-2.0
"""check.py part "torture": the NMI torture test (arch/x86/kernel/nmi_torture.c).

Five boots of the series and one of the base:

  torture:*           all hazards, senders held up between event and IPI now
                      and then, the kernel's default knobs, the user-mode
                      load beside it; then the genuine phase (host NMIs, each
                      to be reported as unknown).  The base under the same
                      load gives the spurious unknown NMIs to compare with.
  torture-real:*      what real sources do at once (REAL_SOURCES): nothing
                      lost, no unknown NMI, no poll-NMI storm
  torture-hotplug:*   the CPU that receives the external NMIs goes offline
                      and back every HOTPLUG_MS while the storm runs (plan
                      "hotplug"):
    :int, :ext        the torture verdicts: nothing lost, late or doubled
    :moved            it went offline, and the device's NMIs moved away and
                      back each time (hp_moves == 2 * hp_offlines)
    :refs             then a quiet run with internal NMIs only: no CPU but 0
                      (LINT1) owes an external poll, so none that the storm
                      made external-receiving was left marked
    :unknown          no unknown NMI the test's late IPIs do not explain
    console:torture-hotplug
                      nothing in the console scan
  torture-trapret:*   the int3 and #PF hazards in every handler run, the
                      DEBUG_ENTRY early unmask off, so that NMIs nest only
                      where a trap's return unmasks them; twice:
    :fast             the default return without IRET: no nested NMI, no
                      repeat, while the hazards hit (int3_hits, pf_hits)
    :iret             x86/nmi_trap_iret=1 (IRET after every trap, as the
                      base): nesting must show up, or :fast proves nothing
    :lost             nothing lost or serviced twice in either run (the
                      latency verdicts are the torture rows' business)
    console:torture-trapret
"""

import glob
import os

import boots
import expect
import report
import results
import scan


def nesting_row(kc):
    """(verdict, row, note) of the series' nesting counts under the torture
    test's unmask hazard: nesting must happen, and every repeat of the
    handler needs at least one nested NMI that redirected the IRET."""
    nested, repeats = kc.get('nested', 0), kc.get('repeats', 0)
    ok = 0 < repeats <= nested
    return ('PASS' if ok else 'FAIL', 'torture:nesting',
            'nested=%d repeats=%d (want 0 < repeats <= nested)' % (nested, repeats))


# The torture part: all hazards, senders held up between event and IPI now
# and then (a vCPU the host does not run), the kernel's default knobs.
TORTURE_PARAMS = 'duration=%d:hazards=all:delay_every=50:delay_us=3000'
# Then the genuine phase: host NMIs for this long, each to be reported as
# unknown (boots.torture_boot()).
GENUINE_SECS = 10


def backtrace_row(b):
    """The sysrq-l the torture plan sends in the storm: every CPU's NMI
    backtrace on the console (the NMI IPI handler runs only in NMIs that
    follow an NMI IPI; a lost IPI event leaves a CPU out)."""
    want = b.results.lab.get('cpus')
    if not want or not b.results.lab.get('backtrace_sent'):
        return 'FAIL', 'the plan sent no sysrq-l'
    with open(os.path.join(b.outdir, 'console.log'), errors='replace') as f:
        seen = set(scan.backtrace_cpus(f.read()))
    missing = sorted(set(range(int(want))) - seen)
    return ('FAIL' if missing else 'PASS',
            'NMI backtraces of %d of %s CPUs%s' % (
                len(seen), want, ', missing: %s' % missing if missing else ''))


def part_torture(t, args, expected):
    params = TORTURE_PARAMS % args.torture_seconds
    b = boots.torture_boot('series', 'check-torture', params, GENUINE_SECS)
    tt = b.results.torture
    if not b.completed() or not tt:
        t.add('FAIL', 'torture', 'plan did not complete: %s %s' % (
            b.status, b.results.lab.get('torture', '')))
        report.console_row(t, b, 'console:torture')
        return b
    print('      ' + report.torture_line(b))
    for part in ('int', 'ext'):
        name = 'torture:' + part
        failed = tt.get(part + '_verdict') != 'PASS'
        base_failed = None
        if name in expected and failed:
            base_failed = torture_base_fails(part, args)
        v = expect.classify(name, failed, expected, base_failed)
        note = ''
        if v != 'PASS':
            note = ' '.join('%s=%s' % (k, tt.get(k, '-')) for k in (
                part + '_raised', part + '_serviced', part + '_dup', 'ext_lost', 'ext_late',
                'nest_dropped', 'nest_ok', 'reentry') if k in tt)
        t.add(v, name, note)
    tf = report.torture_fields(b)
    left = report.unexplained_unknown(tf)
    t.add('PASS' if left == 0 else 'FAIL', 'torture:unknown',
          'unknown=%s, explained by late IPIs (ipi_slow)=%s' % (
              tf.get('unknown', '-'), tf.get('ipi_slow', '-')))
    v, note = genuine_row(b)
    t.add(v, 'torture:genuine', note)
    # The base under the same load: spurious unknown NMIs, and its genuine
    # ones for the record.
    base = boots.torture_boot('instrument', 'check-torture-base', params, GENUINE_SECS,
                            quiet=True)
    print('      base: ' + report.torture_line(base))
    v, note = spurious_row(b, base)
    t.add(v, 'torture:spurious', note)
    # The kernel's own nesting counts (the series): with the unmask hazard
    # nesting must happen, and every repeat needs at least one redirect.
    kc = report.kernel_counts(b)
    if kc is not None:
        t.add(*nesting_row(kc))
        # Only the CPU that receives external NMIs may run the external pass
        # on an NMI an internal handler claimed, or send itself poll NMIs.
        busy = report.ext_work_elsewhere(b.results, tt.get('ext_cpu', '0'))
        t.add('FAIL' if busy else 'PASS', 'torture:lockfree-elsewhere',
              ' '.join('cpu%s:%s=%d' % w for w in busy) or
              'ext_polls=0 poll_nmis=0 on every CPU but %s' % tt.get('ext_cpu', '0'))
    v, note = backtrace_row(b)
    t.add(v, 'torture:backtrace', note)
    other = [k for k in ('reentry', 'reg_errors', 'bp_hits_nmi') if tt.get(k, '0') != '0']
    t.add('FAIL' if other else 'PASS', 'torture:integrity',
          ' '.join('%s=%s' % (k, tt[k]) for k in other))
    if b.results.lab.get('user_load_failures'):
        t.add('FAIL', 'torture:user-load', b.results.lab['user_load_failures'])
    n = report.torture_console_failures(b)
    t.add('PASS' if n == 0 else 'FAIL', 'console:torture',
          '' if n == 0 else '%d findings, first: %s' % (n, report.first_finding(b)))
    return b


# What real sources do (nmi_torture's knobs): a local handler that claims
# every NMI for 100 ms after an event (AMD's PMU), one that reports more
# events than it had NMIs (perf), external NMIs sent to any CPU (firmware-
# first errors), and senders held up between event and IPI (a vCPU the host
# does not run).  At the kernel's default knobs.
REAL_SOURCES = 'sticky_ms=100:overreport=2:ext_any=1:delay_every=50:delay_us=3000'
# Poll NMIs per second a CPU may take: one per poll interval, with slack.
POLLS_PER_S = 100 * 1.5


def poll_storms(r, seconds):
    """[(cpu, poll_nmis)] above POLLS_PER_S * seconds + 10."""
    out = []
    for cpu in sorted(k for k in r.nmistats.get('after', {}) if k.isdigit()):
        d = results.nmistats_delta(r, row=cpu) or {}
        if d.get('poll_nmis', 0) > POLLS_PER_S * seconds + 10:
            out.append((cpu, d['poll_nmis']))
    return out


def genuine_row(b):
    """(verdict, note): every host NMI of the genuine phase was reported as
    an unknown NMI, and there was at least one."""
    g = report.genuine_fields(b)
    rep, sent = report._int(g.get('genuine_reported'), None), report._int(g.get('genuine_sent'), 0)
    ok = rep is not None and sent > 0 and rep == sent
    return 'PASS' if ok else 'FAIL', 'genuine_reported=%s genuine_sent=%s' % (
        g.get('genuine_reported', '-'), g.get('genuine_sent', '-'))


def spurious_row(series, base):
    """(verdict, note): the series reports at most a tenth of the base's
    spurious unknown NMIs under the same load (none when the base had
    fewer than ten)."""
    s = report._int(series.results.torture.get('unexplained'), None)
    b = report._int(base.results.torture.get('unexplained'), None)
    ok = s is not None and b is not None and s * 10 <= b
    return 'PASS' if ok else 'FAIL', 'unknown_spurious series=%s base=%s (want series*10 <= base)' % (
        '-' if s is None else s, '-' if b is None else b)


def verdict_rows(t, b, name, keys):
    """A torture boot's rows NAME:int and NAME:ext (the test's own verdicts,
    their counts and @keys in the note), or a failed NAME row and the console
    scan when the plan did not end; returns the torture results, or None."""
    tt = b.results.torture
    if not b.completed() or not tt:
        t.add('FAIL', name, 'plan did not complete: %s %s' % (
            b.status, b.results.lab.get('torture', '')))
        report.console_row(t, b, 'console:' + name)
        return None
    print('      %s: %s' % (name, report.torture_line(b)))
    for part in ('int', 'ext'):
        note = ' '.join('%s=%s' % (k, tt.get(k, '-')) for k in (
            part + '_raised', part + '_serviced', part + '_dup', 'ext_lost', 'ext_late') + keys)
        t.add('PASS' if tt.get(part + '_verdict') == 'PASS' else 'FAIL',
              '%s:%s' % (name, part), note)
    return tt


def part_torture_real(t, args):
    secs = max(20, args.torture_seconds // 2)
    params = 'duration=%d:hazards=all:%s' % (secs, REAL_SOURCES)
    b = boots.torture_boot('series', 'check-torture-real', params)
    tt = verdict_rows(t, b, 'torture-real', ('int_sticky', 'delayed'))
    if tt is None:
        return
    tf = report.torture_fields(b)
    left = report.unexplained_unknown(tf)
    t.add('PASS' if left == 0 else 'FAIL', 'torture-real:unknown',
          'unknown=%s unexplained-by-the-test=%s ipi_slow=%s' % (
              tf.get('unknown', '-'), tt.get('unexplained', '-'), tf.get('ipi_slow', '-')))
    storms = poll_storms(b.results, int(tt.get('elapsed_ms', secs * 1000)) / 1000.0)
    t.add('FAIL' if storms else 'PASS', 'torture-real:polls',
          ' '.join('cpu%s:poll_nmis=%d' % c for c in storms) or
          'at most %d poll NMIs/s on every CPU' % POLLS_PER_S)
    n = report.torture_console_failures(b)
    t.add('PASS' if n == 0 else 'FAIL', 'console:torture-real',
          '' if n == 0 else '%d findings, first: %s' % (n, report.first_finding(b)))


def torture_base_fails(part, args):
    b = boots.torture_boot('instrument', 'check-torture-base-xfail',
                         TORTURE_PARAMS % args.torture_seconds, quiet=True)
    print('      base: ' + report.torture_line(b))
    return b.results.torture.get(part + '_verdict') == 'FAIL'


# The hotplug boot: ext_cpu=1 offline for HOTPLUG_MS, online for as long,
# over and over, all hazards.
HOTPLUG_MS = 700
HOTPLUG_PARAMS = 'duration=%d:hazards=all:ext_cpu=1:hotplug_ms=%d'


def moved_row(tt):
    """(verdict, note): ext_cpu went offline, and each time the device's
    NMIs moved away and came back."""
    off, moves = report._int(tt.get('hp_offlines'), 0), report._int(tt.get('hp_moves'), -1)
    ok = off > 0 and moves == 2 * off and tt.get('hp_failed') == '0'
    return 'PASS' if ok else 'FAIL', 'hp_offlines=%s hp_moves=%s hp_failed=%s' % (
        tt.get('hp_offlines', '-'), tt.get('hp_moves', '-'),
        tt.get('hp_failed', '-'))


def refs_row(r):
    """(verdict, note): in the quiet run after the storm no CPU but 0 did
    external work (external passes on claimed NMIs, poll NMIs), and every
    CPU took internal NMIs (else nothing was tested)."""
    cpus = sorted(k for k in r.nmistats.get('quiet1', {}) if k.isdigit())
    took = [c for c in cpus
            if (results.nmistats_delta(r, 'quiet0', 'quiet1', row=c) or {}).get('internal', 0) > 0]
    if not cpus or took != cpus:
        return 'FAIL', 'quiet run: internal NMIs on CPUs %s of %s' % (took, cpus)
    busy = report.ext_work_elsewhere(r, '0', 'quiet0', 'quiet1')
    return ('FAIL' if busy else 'PASS',
            ' '.join('cpu%s:%s=%d' % w for w in busy) or
            'quiet run: ext_polls=0 poll_nmis=0 on CPUs %s' % ','.join(cpus[1:]))


def part_torture_hotplug(t, args):
    secs = max(20, args.torture_seconds // 3)
    b = boots.boot('series', 'hotplug', 'check-torture-hotplug',
                   append=['lab.torture=' + HOTPLUG_PARAMS % (secs, HOTPLUG_MS)],
                   timeout=secs + 400)
    tt = verdict_rows(t, b, 'torture-hotplug', ('ext_foreign',))
    if tt is None:
        return
    v, note = moved_row(tt)
    t.add(v, 'torture-hotplug:moved', note)
    v, note = refs_row(b.results)
    t.add(v, 'torture-hotplug:refs', note)
    tf = report.torture_fields(b)
    left = report.unexplained_unknown(tf)
    t.add('PASS' if left == 0 else 'FAIL', 'torture-hotplug:unknown',
          'unknown=%s, explained by late IPIs (ipi_slow)=%s' % (
              tf.get('unknown', '-'), tf.get('ipi_slow', '-')))
    n = report.torture_console_failures(b)
    t.add('PASS' if n == 0 else 'FAIL', 'console:torture-hotplug',
          '' if n == 0 else '%d findings, first: %s' % (n, report.first_finding(b)))


# The trapret boots: int3 and #PF in every handler run, nothing else that
# nests (nmi_unmask_early=0).
TRAPRET_PARAMS = 'duration=%d:hazards=int3,pf'


def trapret_row(tf, knob):
    """(verdict, note) of one trapret run: hazards hit in both; with the
    return without IRET (knob 0) no nesting, with IRET (knob 1) some."""
    n = {k: report._int(tf.get(k), -1) for k in ('nested', 'repeats', 'int3_hits', 'pf_hits')}
    hit = n['int3_hits'] > 0 and n['pf_hits'] > 0
    if knob:
        ok = hit and n['nested'] > 0 and 0 < n['repeats'] <= n['nested']
    else:
        ok = hit and n['nested'] == 0 and n['repeats'] == 0
    return 'PASS' if ok else 'FAIL', ' '.join('%s=%s' % (k, tf.get(k, '-')) for k in n) + (
        ' (want nested > 0)' if knob else ' (want nested=0 repeats=0)')


def part_torture_trapret(t, args):
    secs = max(20, args.torture_seconds // 3)
    runs = []
    for label, knob in (('fast', 0), ('iret', 1)):
        b = boots.torture_boot('series', 'check-torture-trapret-' + label,
                               TRAPRET_PARAMS % secs, quiet=True,
                               append=['lab.debugfs=x86/nmi_unmask_early=0,'
                                       'x86/nmi_trap_iret=%d' % knob])
        print('      torture-trapret %s: %s' % (label, report.torture_line(b)))
        tf = report.torture_fields(b)
        v, note = trapret_row(tf, knob)
        if b.results.lab.get('error') or not b.completed():
            v, note = 'FAIL', 'boot %s (%s) %s' % (b.status, b.results.lab.get('error', ''), note)
        t.add(v, 'torture-trapret:' + label, note)
        runs.append((label, b, tf))
    keys = ('int_lost', 'ext_lost', 'int_dup', 'ext_dup')
    bad = [label for label, b, tf in runs if any(tf.get(k) != '0' for k in keys)]
    t.add('FAIL' if bad else 'PASS', 'torture-trapret:lost',
          '; '.join('%s: int_lost=%s ext_lost=%s int_dup=%s ext_dup=%s' % (
              label, tf.get('int_lost', '-'), tf.get('ext_lost', '-'), tf.get('int_dup', '-'),
              tf.get('ext_dup', '-')) for label, _, tf in runs))
    n = sum(report.torture_console_failures(b) for _, b, _ in runs)
    t.add('PASS' if n == 0 else 'FAIL', 'console:torture-trapret',
          '' if n == 0 else '%d findings' % n)


def run(t, args, expected):
    """The part: the torture boots above, their rows into t."""
    if not glob.glob(os.path.join(boots.BUILD, 'out-series', '**', 'nmi_torture.ko'),
                     recursive=True):
        t.add('FAIL', 'torture', 'the series does not build nmi_torture.ko')
        return
    part_torture(t, args, expected)
    part_torture_real(t, args)
    part_torture_hotplug(t, args)
    part_torture_trapret(t, args)
