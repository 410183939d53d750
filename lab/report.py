# SPDX-License-Identifier: GPL-2.0
"""What the lab prints: readable reports and the machine-readable lines."""

import results
import scan
from tally import summary_line


def _int(v, default=0):
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def findings_block(b, limit=5):
    lines = []
    for kind in scan.KINDS:
        for line in b.findings[kind][:limit]:
            lines.append('    %-8s %s' % (kind, line))
        extra = len(b.findings[kind]) - limit
        if extra > 0:
            lines.append('    %-8s ... %d more' % (kind, extra))
    return lines


def console_row(t, b, name):
    """A row for the console scan of boot b: PASS when it found nothing."""
    n = b.console_findings()
    if n:
        t.add('FAIL', name, '%d findings, first: %s' % (n, first_finding(b)))
    else:
        t.add('PASS', name)


def first_finding(b):
    """The first console line that fails a boot, or ''."""
    return next((line for k in b.findings if k not in scan.INFO_KINDS
                 for line in b.findings[k]), '')


def nmis_seen(b):
    return _int(b.results.lab.get('nmis_after')) - _int(b.results.lab.get('nmis_before'))


def result_line(b, extra=None):
    """RESULT nmis=<n> unknown=<n> oops=<n> ... for one boot."""
    c = scan.counts(b.findings)
    t = torture_fields(b) if b.results.torture else {}
    # Unknown NMIs: the kernel's own count where it has one (the series),
    # else the torture test's, else the console's (rate-limited) lines.
    unknown = t.get('unknown', '-')
    if unknown == '-':
        unknown = c['unknown']
    fields = [
        ('status', b.status),
        ('nmis', nmis_seen(b)),
        ('injected', b.summary.get('nmi_injected', 0)),
        ('unknown', unknown),
        ('ipi_slow', t.get('ipi_slow', '-')),
        ('oops', c['oops']),
        ('warn', c['warn']),
        ('lockdep', c['lockdep']),
        ('lockup', c['lockup']),
    ]
    if t:
        for k in ('raised', 'serviced', 'lost', 'dup', 'nested', 'repeats'):
            fields.append(('torture_' + k, t.get(k, '-')))
        fields.append(('verdict', torture_verdict(b)))
    for k, v in (extra or {}).items():
        fields.append((k, v))
    return summary_line('RESULT', fields)


def print_boot(b):
    print('lab: %s: %s after %.0f s, %d NMIs counted in the guest, %d injected by the host'
          % (b.name, b.status, b.summary['seconds'], nmis_seen(b),
             b.summary.get('nmi_injected', 0)))
    for line in findings_block(b):
        print(line)
    print('lab: logs in %s' % b.outdir)


def torture_table(t):
    rows = [
        ('internal (NMI IPIs)', t.get('int_raised'), t.get('int_serviced'), t.get('int_dup'),
         '-', t.get('int_verdict')),
        ('external (status device)', t.get('ext_raised'), t.get('ext_serviced'),
         t.get('ext_dup'), t.get('ext_lost'), t.get('ext_verdict')),
    ]
    out = ['    %-26s %10s %10s %6s %6s  %s' % ('source', 'raised', 'serviced', 'dup', 'lost',
                                               'verdict')]
    for r in rows:
        out.append('    %-26s %10s %10s %6s %6s  %s' % tuple('-' if v is None else v for v in r))
    out.append('    external latency: p50 %s us, p99 %s us, max %s us; late %s'
               % (t.get('ext_p50_us', '-'), t.get('ext_p99_us', '-'),
                  t.get('ext_max_us', '-'), t.get('ext_late', '-')))
    out.append('    hazards: int3 %s, #PF %s, unmask %s, breakpoint hits in NMI %s / outside %s'
               % (t.get('int3_hits', '-'), t.get('pf_hits', '-'), t.get('unmasks', '-'),
                  t.get('bp_hits_nmi', '-'), t.get('bp_hits_other', '-')))
    out.append('    unknown %s, re-entries %s, register errors %s, nested %s, repeats %s'
               % (t.get('unknown', '-'), t.get('reentry', '-'), t.get('reg_errors', '-'),
                  t.get('nested', '-'), t.get('repeats', '-')))
    return out


def kernel_counts(b):
    """nested/repeats/unknown as counted by the kernel (series only)."""
    return results.nmistats_delta(b.results)


def lockfree_line(delta, seconds=None):
    """How many internal NMIs the series' dispatcher handled without the
    external pass, the only place where it takes a lock or does port I/O:
    ext_polls counts the internal NMIs that ran it.  poll_nmis is the price
    of keeping it off the internal path.  None on a kernel without stats."""
    if not delta:
        return None
    internal, ext = delta.get('internal', 0), delta.get('ext_polls', 0)
    polls = delta.get('poll_nmis', 0)
    pct = 100.0 * (internal - ext) / internal if internal else 100.0
    fields = [('internal', internal), ('ext_polls', ext), ('lockfree_pct', '%.2f' % pct),
              ('poll_nmis', polls),
              ('poll_per_internal_pct', '%.2f' % (100.0 * polls / internal if internal else 0.0)),
              ('recovered', delta.get('recovered', 0))]
    if seconds:
        fields.append(('poll_nmis_per_s', '%.0f' % (polls / seconds)))
    return summary_line('LOCKFREE', fields)


def ext_cpu_polls(delta, cpu):
    """' poll_per_internal_pct_ext=..' for the CPU that receives external
    NMIs, the only one that owes passes and sends itself poll NMIs."""
    if not delta or not delta.get('internal'):
        return ''
    return ' ext_cpu=%s poll_per_internal_pct_ext=%.2f' % (
        cpu, 100.0 * delta.get('poll_nmis', 0) / delta['internal'])


def ext_work_elsewhere(r, ext_cpu, before='before', after='after'):
    """[(cpu, counter, n)]: external passes on claimed NMIs (ext_polls) or
    poll NMIs on CPUs that do not receive external NMIs, between the
    x86/nmi_stats snapshots before and after; the series' design says there
    are none.  Empty on a kernel without per-CPU stats."""
    out = []
    for cpu in sorted(k for k in r.nmistats.get(after, {}) if k.isdigit()):
        if cpu == str(ext_cpu):
            continue
        d = results.nmistats_delta(r, before, after, row=cpu) or {}
        out += [(cpu, k, d[k]) for k in ('ext_polls', 'poll_nmis') if d.get(k)]
    return out


def torture_fields(b):
    """The TORTURE line's fields; the kernel's own counts where it has them."""
    t = dict(b.results.torture)
    k = kernel_counts(b)
    if k is not None:
        for f in ('nested', 'repeats', 'unknown'):
            t[f] = str(k.get(f, '-'))
    return t


def unexplained_unknown(t, injected=0):
    """Unknown NMIs beyond those the test's late IPIs explain (ipi_slow) and
    the host injected (its QMP NMIs carry no status: each is unknown unless
    it merged with another NMI)."""
    unknown = _int(t.get('unknown'), None)
    if unknown is None:
        return None
    return max(0, unknown - _int(t.get('ipi_slow'), 0) - injected)


def storm_injected(b):
    """Host NMIs sent during the torture run itself: none when they went to
    the genuine phase after it (the kernel's counts stop before it)."""
    if 'genuine_reported' in b.results.lab:
        return 0
    return b.summary.get('nmi_injected', 0)


def genuine_fields(b):
    """{'genuine_reported', 'genuine_sent'} of a run with a genuine phase."""
    if 'genuine_reported' not in b.results.lab:
        return {}
    return {'genuine_reported': b.results.lab['genuine_reported'],
            'genuine_sent': str(b.summary.get('nmi_injected', 0))}


def torture_console_failures(b):
    """Console findings of a torture run; its unknown-NMI lines do not count
    when every unknown NMI is explained by a late IPI of the test."""
    n = b.console_findings()
    if unexplained_unknown(torture_fields(b), storm_injected(b)) == 0:
        n -= len(b.findings.get('unknown', []))
    return n


def torture_verdict(b):
    t = torture_fields(b)
    ok = (t.get('int_verdict') == 'PASS' and t.get('ext_verdict') == 'PASS'
          and unexplained_unknown(t, storm_injected(b)) == 0
          and torture_console_failures(b) == 0
          and b.completed())
    return 'PASS' if ok else 'FAIL'


def torture_line(b):
    keys = ('raised', 'serviced', 'lost', 'dup', 'unknown', 'nested', 'repeats')
    if not b.results.torture:
        return summary_line('TORTURE', [(k, None) for k in keys] + [('verdict', 'FAIL')])
    t = torture_fields(b)
    fields = [(k, t.get(k)) for k in keys] + [('verdict', torture_verdict(b)),
                                              ('ipi_slow', t.get('ipi_slow'))]
    # NMIs that reached the NMI_UNKNOWN handlers during the run (the test
    # counts them the same way on every kernel), and the genuine phase.
    fields.append(('unknown_spurious', t.get('unexplained')))
    return summary_line('TORTURE', fields + sorted(genuine_fields(b).items()))


def print_torture(b, variant):
    print('lab: torture on %s: %s after %.0f s' % (variant, b.status, b.summary['seconds']))
    for line in torture_table(torture_fields(b)):
        print(line)
    for line in findings_block(b):
        print(line)
    if b.results.lab.get('user_load_failures'):
        print('    user-mode load failures: %s' % b.results.lab['user_load_failures'])
    print(torture_line(b))
    secs = int(b.results.torture.get('elapsed_ms', 0) or 0) / 1000.0
    lf = lockfree_line(kernel_counts(b), secs)
    if lf:
        ext = b.results.torture.get('ext_cpu', '0')
        print(lf + ext_cpu_polls(results.nmistats_delta(b.results, row=ext), ext))


def print_run(b):
    r = b.results
    print()
    print('NMI workload report (%s)' % b.outdir)
    print('  guest: plan %s, %s in %.0f s' % (r.lab.get('plan', '-'), b.status,
                                            b.summary['seconds']))
    print('  NMIs counted by the guest (/proc/interrupts): %d; injected by the host: %d'
          % (nmis_seen(b), b.summary.get('nmi_injected', 0)))
    print('  NMI backtraces (sysrq-l) sent: %s' % r.lab.get('sysrq_l', '-'))
    if r.torture:
        print('  torture test:')
        for line in torture_table(torture_fields(b)):
            print('  ' + line)
    else:
        print('  torture test: %s' % r.lab.get('torture', 'not run'))
    c = scan.counts(b.findings)
    print('  console: %s' % ', '.join('%s %d' % (k, c[k]) for k in scan.KINDS))
    for line in findings_block(b):
        print(line)
    print(result_line(b))
