# SPDX-License-Identifier: GPL-2.0
"""make bench's report: the table base against series, the notes under it,
the external-latency CDF plot (matplotlib, SVG), and the summary of a run.
"""


import benchtrap
import scan
from benchstats import (ALL_VARIANTS, CONFIGS, HIST_BUCKETS, NAME, PARTS, VARIANTS, _int,
                        bench_line, fmt, get, hist_cdf, insn_ratios, percentile_cdf, ratio,
                        us_to_ms)


def us_label(us):
    if us >= 1000000:
        return '%g s' % (us / 1e6)
    if us >= 1000:
        return '%g ms' % (us / 1e3)
    return '%g us' % us


def plot_cdf(series, title, subtitle=''):
    """series: [(label, (r, g, b), [(us, fraction)])] -> SVG bytes, 10.25 x 8
    inches, text kept as text and no date or random ids (the same data give
    the same file, which can then be committed).

    Top: the CDF (log x, linear y); bottom: the tail, 1 - CDF on a log y
    axis down to 1e-4, where p99 and the maximum show."""
    import io
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    matplotlib.rcParams.update({'svg.fonttype': 'none', 'svg.hashsalt': 'nmi-lab'})

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
    fig.savefig(out, format='svg', dpi=80, metadata={'Date': None})
    plt.close(fig)
    return out.getvalue()


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
    out.update(benchtrap.summary(data))
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
    if 'nesting' in parts or 'trapret' in parts:
        benchtrap.rows(data, args, row, sec)
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
    svg = plot_cdf(series, 'External NMI events: service latency CDF',
                   'torture %s, 4 vCPUs, QEMU TCG (%s)' % (params.replace(':', ' '),
                                                          ', '.join(sorted(kinds))))
    with open(path, 'wb') as f:
        f.write(svg)
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
