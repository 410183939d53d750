# SPDX-License-Identifier: GPL-2.0
"""The numbers of make bench: medians and ratios, the torture module's
latency histogram (its bucket layout), the sweep's steps, the BENCH line's
keys, and the vocabulary the other bench modules share (variants, parts).
"""

import bisect
import collections
import re

import report
import results
from tally import summary_line


VARIANTS = ('instrument', 'series')


# The same two kernels in the "prod" configuration (lab/config/prod.config
# after nmi-test.config: no lockdep, DEBUG_ENTRY, NMI_CHECK_CPU...), built
# into build/out-<variant>; only the step part runs on them.
PROD_VARIANTS = ('instrument-prod', 'series-prod')


ALL_VARIANTS = VARIANTS + PROD_VARIANTS


# configuration -> (base, series), and the suffix of its BENCH keys.
CONFIGS = (('test', VARIANTS, ''), ('prod', PROD_VARIANTS, '_prod'))


NAME = {'instrument': 'base', 'series': 'series',
        'instrument-prod': 'base-prod', 'series-prod': 'series-prod'}


# The torture module's latency histogram (nmi_torture.c): 1 us buckets below
# 64 us, then 32 per octave up to 2^64 us; hist[] is the last member of nt_ext.
HIST_LINEAR = 64


HIST_SUB = 32


HIST_BUCKETS = HIST_LINEAR + (64 - 6) * HIST_SUB


PARTS = ('step', 'torture', 'sweep', 'scale', 'nesting', 'trapret')


PROD_PARTS = ('step',)          # the parts measured in the prod configuration too


class BenchError(Exception):
    """A part could not be measured."""


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


# The nesting and trapret parts' keys (lab/benchtrap.py): nested NMIs and
# repeats per minute of the base (not counted: "-"), the series with IRET
# after traps, the series without, the same with all hazards, and the floor
# (hazards bp,unmask: no int3, no #PF); instructions of an int3 and a #PF
# return inside an NMI on the base and on the series with and without IRET;
# the external p99 latency (ms) under the int3 and pf hazards.
TRAP_KEYS = tuple('%s_per_min_%s' % (m, k) for k in ('base', 'series', 'fastret', 'series_all',
                                                     'fastret_all', 'floor')
                  for m in ('nested', 'repeats')) + \
    tuple('%s_return_insns_%s' % (t, k) for t in ('int3', 'pf') for k in ('base', 'iret', 'fast')) + \
    tuple('ext_p99_ms_trap_' + k for k in ('base', 'series', 'fastret'))


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
    keys += [(k, s.get(k), '%g') for k in TRAP_KEYS]

    def val(v, spec):
        if v is None:
            return '-'
        if v == float('inf'):
            return 'inf'
        return spec % v
    return summary_line('BENCH', [(k, val(v, spec)) for k, v, spec in keys])


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d
