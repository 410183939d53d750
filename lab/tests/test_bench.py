# SPDX-License-Identifier: GPL-2.0
import glob
import json
import os
import re
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench  # noqa: E402
import benchreport  # noqa: E402
import benchstats  # noqa: E402
import benchstep  # noqa: E402
import benchtrap  # noqa: E402
import boots  # noqa: E402
import report  # noqa: E402
import results  # noqa: E402
import scan  # noqa: E402


SWEEP = """\
LAB plan=bench
LAB bench=sweep cpus=4
LAB sweep_step=1000
NMISTATS before cpu internal unknown nested longest_ns
NMISTATS before all 4 0 0 100
TORTURE_KV state=done
TORTURE_KV cpus=4
TORTURE_KV elapsed_ms=10000
TORTURE_KV int_raised=40000
TORTURE_KV int_lost=0
TORTURE_KV ext_lost=0
TORTURE_KV ipi_slow=2
TORTURE_KV unknown=-
TORTURE_KV TORTURE raised=41000 serviced=41000 lost=0 dup=0 unknown=- nested=- repeats=- verdict=PASS
NMISTATS after cpu internal unknown nested longest_ns
NMISTATS after all 900 2 7 300
LAB sweep_rc=0
LAB sweep_step=4000
TORTURE_KV state=done
TORTURE_KV cpus=4
TORTURE_KV elapsed_ms=10000
TORTURE_KV int_raised=160000
TORTURE_KV int_lost=0
TORTURE_KV ext_lost=1
TORTURE_KV ipi_slow=0
TORTURE_KV unknown=5
TORTURE_KV TORTURE raised=161000 serviced=160999 lost=1 dup=0 unknown=5 nested=- repeats=- verdict=FAIL
LAB sweep_rc=1
LAB nmis_after=20
LAB end rc=0
"""


class TrapReturnTest(unittest.TestCase):
    SYMS = {'__entry_text_start': (0x1000, 0), '__entry_text_end': (0x2000, 0),
            'asm_exc_int3': (0x1100, 0x40), 'asm_exc_page_fault': (0x1200, 0x40),
            'error_return': (0x1400, 0x100), 'native_irq_return_iret': (0x1600, 0),
            '__x86_return_thunk': (0x3000, 8), 'exc_int3': (0x5000, 0x80)}

    def trace(self, *rips):
        return [(r, 'dispatch') for r in rips]

    def test_fast_and_iret_returns(self):
        t = self.trace(0x9000, 0x1100, 0x1104, 0x5000, 0x5004,        # int3, handler
                       0x1400, 0x1404, 0x1408, 0x3000, 0x9004,        # fast: 4 insns
                       0x1200, 0x5000, 0x1400, 0x1404, 0x1404, 0x1600, 0x9010)  # #PF, IRET
        self.assertEqual(benchtrap.trap_returns(t, self.SYMS),
                         [('int3', 4, 'fast'), ('pf', 3, 'iret')])

    def test_no_trap_no_return(self):
        # An NMI without traps, and a return whose trap entry was not seen.
        self.assertEqual(benchtrap.trap_returns(self.trace(0x9000, 0x9004), self.SYMS), [])
        self.assertEqual(benchtrap.trap_returns(self.trace(0x1400, 0x9000), self.SYMS),
                         [(None, 1, 'fast')])

    def test_summary_keys(self):
        d = {'series': {'nesting': {'runs': {'iret': {'nested_per_min': 6531.0,
                                                      'repeats_per_min': 6333.0},
                                             'fast': {'nested_per_min': 0.0,
                                                      'repeats_per_min': 0.0}}},
                        'trapret': {'iret': {'int3': 22, 'pf': 22},
                                    'fast': {'int3': 44, 'pf': 46}}},
             'instrument': {'trapret': {'iret': {'int3': 20, 'pf': 20}}}}
        kv = dict(x.split('=') for x in
                  benchstats.bench_line(benchreport.summary_of(d)).split()[1:])
        self.assertEqual(kv['nested_per_min_series'], '6531')
        self.assertEqual(kv['nested_per_min_fastret'], '0')
        self.assertEqual(kv['nested_per_min_base'], '-')
        self.assertEqual(kv['nested_per_min_floor'], '-')
        self.assertEqual(kv['int3_return_insns_base'], '20')
        self.assertEqual(kv['pf_return_insns_fast'], '46')


class StatsTest(unittest.TestCase):
    def test_median_and_ratio(self):
        self.assertEqual(benchstats.median([5, 1, 3]), 3)
        self.assertEqual(benchstats.median([4, 1, 3, 2]), 2.5)
        self.assertIsNone(benchstats.median([]))
        self.assertEqual(benchstats.ratio(3, 2), 1.5)
        self.assertIsNone(benchstats.ratio(3, 0))
        self.assertIsNone(benchstats.ratio(None, 2))

    def test_split_counts_rep_iterations(self):
        # Three entry instructions, a REP MOVS stepped three times in the
        # dispatcher, then one more of each.
        trace = [(1, 'entry'), (2, 'entry'), (3, 'entry'),
                 (10, 'dispatch'), (11, 'dispatch'), (11, 'dispatch'), (11, 'dispatch'),
                 (12, 'dispatch'), (4, 'entry')]
        c = benchstats.split_counts(trace)
        self.assertEqual(c, {'entry': 4, 'dispatch': 3, 'steps': 9, 'rep': 2, 'total': 7})

    def test_breakdown_by_symbol(self):
        symtab = [(0x1000, 'asm_exc_nmi'), (0x2000, 'exc_nmi'), (0x3000, 'nmi_handle')]
        trace = [(0x1000, 'entry'), (0x1004, 'entry'), (0x2000, 'dispatch'),
                 (0x3000, 'dispatch'), (0x3004, 'dispatch'), (0x3004, 'dispatch')]
        self.assertEqual(benchstats.breakdown(trace, symtab, 'dispatch'),
                         [('nmi_handle', 2), ('exc_nmi', 1)])
        self.assertEqual(benchstats.breakdown(trace, symtab)[0], ('asm_exc_nmi', 2))
        self.assertEqual(benchstats.symbol_of(0x10, symtab), '0x10')
        self.assertEqual(benchstats.symbol_of(0x3000 + 0x200000, symtab), '0x203000')


def module_defines():
    """{name: value} of the torture module's NT_HIST_* #defines, read from
    the series (patches/, the source of truth), arithmetic evaluated."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = glob.glob(os.path.join(top, 'patches', '0001-*.patch'))[0]
    out = {}
    with open(path) as f:
        text = f.read()
    for m in re.finditer(r'^\+#define\s+NT_(HIST_\w+)\s+(.+)$', text, re.M):
        expr = re.sub(r'NT_(HIST_\w+)', lambda n: str(out[n.group(1)]), m.group(2))
        out[m.group(1)] = eval(expr, {'__builtins__': {}})     # digits and + - * ( )
    return out


class HistogramTest(unittest.TestCase):
    def test_buckets_match_the_module(self):
        d = module_defines()
        self.assertEqual((benchstats.HIST_LINEAR, benchstats.HIST_SUB, benchstats.HIST_BUCKETS),
                         (d['HIST_LINEAR'], d['HIST_SUB'], d['HIST_BUCKETS']))
        self.assertEqual([benchstats.hist_index(u) for u in (0, 63, 64, 65, 66, 127, 128)],
                         [0, 63, 64, 64, 65, 95, 96])
        self.assertEqual([benchstats.hist_value(i) for i in (0, 63, 64, 65, 95, 96)],
                         [0, 63, 64, 66, 126, 128])
        for us in list(range(0, 300)) + [1000, 4095, 4096, 88064, 10 ** 6, 2 ** 40 + 12345]:
            i = benchstats.hist_index(us)
            self.assertLessEqual(benchstats.hist_value(i), us)
            self.assertLess(us, benchstats.hist_value(i + 1))
        self.assertEqual(benchstats.hist_index(2 ** 64 - 1), benchstats.HIST_BUCKETS - 1)

    def test_percentile_like_nt_percentile(self):
        hist = [0] * benchstats.HIST_BUCKETS
        hist[10] = 50
        hist[benchstats.hist_index(1000)] = 49
        hist[benchstats.hist_index(90000)] = 1
        self.assertEqual(benchstats.hist_percentile(hist, 50), 10)
        self.assertEqual(benchstats.hist_percentile(hist, 51), benchstats.hist_value(
            benchstats.hist_index(1000)))
        self.assertEqual(benchstats.hist_percentile(hist, 99), benchstats.hist_value(
            benchstats.hist_index(1000)))
        self.assertEqual(benchstats.hist_percentile(hist, 100), benchstats.hist_value(
            benchstats.hist_index(90000)))
        self.assertEqual(benchstats.hist_percentile([0] * 4, 50), 0)

    def test_cdf(self):
        hist = [0] * benchstats.HIST_BUCKETS
        hist[5], hist[70] = 3, 1
        pts = benchstats.hist_cdf(hist)
        self.assertEqual(pts[0], (5, 0.0))
        self.assertEqual(pts[1], (6, 0.75))
        self.assertEqual(pts[-1], (benchstats.hist_value(71), 1.0))
        self.assertEqual(benchstats.hist_cdf([0, 0]), [])
        self.assertEqual(benchstats.percentile_cdf(72, 4608, 20094),
                         [(72, 0.0), (72, 0.5), (4608, 0.99), (20094, 1.0)])
        self.assertEqual(benchstats.percentile_cdf(None, None, None), [])


class SweepTest(unittest.TestCase):
    def steps(self):
        out = []
        for rate, r in benchstats.parse_sweep(SWEEP):
            t = report.torture_fields(types.SimpleNamespace(results=r))
            out.append(benchstats.sweep_step(rate, t))
        return out

    def test_parse_sweep(self):
        chunks = benchstats.parse_sweep(SWEEP)
        self.assertEqual([r for r, _ in chunks], [1000, 4000])
        self.assertEqual(chunks[0][1].torture['int_raised'], '40000')
        self.assertEqual(chunks[1][1].torture['lost'], '1')
        self.assertIsNotNone(results.nmistats_delta(chunks[0][1]))
        self.assertIsNone(results.nmistats_delta(chunks[1][1]))

    def test_steps(self):
        s1, s2 = self.steps()
        # Step 1: the kernel's own unknown count (2) is explained by 2 late IPIs.
        self.assertTrue(s1['ok'])
        self.assertEqual(s1['unknown'], 2)
        self.assertEqual(s1['achieved'], 1000)
        self.assertFalse(s2['ok'])
        self.assertFalse(s2['noloss'])
        self.assertIn('lost 1', s2['why'])
        self.assertIn('5 unexplained unknown', s2['why'])
        self.assertEqual(benchstats.max_sustained([s1, s2]), 1000)

    def test_max_sustained(self):
        def st(rate, ok, noloss=None):
            return {'rate': rate, 'ok': ok, 'noloss': ok if noloss is None else noloss}
        self.assertIsNone(benchstats.max_sustained([st(250, False, True), st(1000, True)]))
        self.assertEqual(benchstats.max_sustained([st(1000, True), st(250, False, True)], 'noloss'),
                         1000)
        # A step that holds after one that did not does not count.
        self.assertEqual(benchstats.max_sustained([st(250, True), st(1000, False), st(4000, True)]),
                         250)

    def test_step_below_rate(self):
        t = {'elapsed_ms': '10000', 'cpus': '4', 'int_raised': '100000', 'lost': '0',
             'dup': '0', 'unknown': '0', 'ipi_slow': '0'}
        s = benchstats.sweep_step(16000, t)
        self.assertFalse(s['ok'])
        self.assertFalse(s['noloss'])
        self.assertIn('reached 2500/s', s['why'])
        self.assertTrue(benchstats.sweep_step(2500, t)['ok'])
        self.assertIn('no result', benchstats.sweep_step(1000, {})['why'])


class ReportTest(unittest.TestCase):
    def test_backtrace_cpus(self):
        text = ('[ 11.2] NMI backtrace for cpu 4\n[ 11.3] NMI backtrace for cpu 0\n'
                '[ 11.4] NMI backtrace for cpu 4 skipped: idling at default_idle+0x9/0x10\n'
                '[ 11.5] NMI backtrace for cpu 12\n')
        self.assertEqual(scan.backtrace_cpus(text), [0, 4, 12])

    def data(self):
        def step(entry, disp):
            return {'entry': entry, 'dispatch': disp, 'total': entry + disp}
        return {
            'instrument': {
                'step': {'kernel': step(109, 695), 'user': step(76, 774)},
                'torture': {'fields': {'ext_lost': '4', 'ext_p50_us': '7808',
                                       'ext_p99_us': '88064'}},
                'sweep': {'max_rate': None, 'max_rate_noloss': 1000,
                          'steps': [{'rate': 250}]}},
            'series': {
                'step': {'kernel': step(103, 832), 'user': step(76, 910)},
                'torture': {'fields': {'ext_lost': '0', 'ext_p50_us': '70',
                                       'ext_p99_us': '4608'}},
                'sweep': {'max_rate': 16000, 'max_rate_noloss': 16000,
                          'steps': [{'rate': 250}]}},
        }

    def test_summary_and_bench_line(self):
        s = benchreport.summary_of(self.data())
        self.assertAlmostEqual(s['entry_insn_ratio'], 103 / 109)
        self.assertEqual(s['user_entry_insn_ratio'], 1.0)
        self.assertEqual(s['max_rate_ratio'], float('inf'))
        self.assertEqual(s['max_rate_noloss_ratio'], 16.0)
        line = benchstats.bench_line(s)
        self.assertTrue(line.startswith('BENCH entry_insn_ratio=0.945 user_entry_insn_ratio=1.000 '
                                        'dispatch_insn_ratio=1.197 lost_ext_base=4 '
                                        'lost_ext_series=0 ext_p50_ms=0.070 ext_p99_ms=4.608 '
                                        'max_rate_ratio=inf ext_p50_ms_base=7.808 '
                                        'ext_p99_ms_base=88.064'), line)
        self.assertIn(' max_rate_noloss_ratio=16.00 roundtrip_insn_ratio=', line)
        self.assertIn(' roundtrip_insn_ratio_prod=- ', line)
        self.assertTrue(line.endswith(' ext_p99_ms_trap_fastret=-'), line)

    def test_bench_line_missing(self):
        line = benchstats.bench_line(benchreport.summary_of({}))
        keys = [kv.split('=')[0] for kv in line.split()[1:]]
        self.assertEqual(keys[:8], ['entry_insn_ratio', 'user_entry_insn_ratio',
                                    'dispatch_insn_ratio', 'lost_ext_base', 'lost_ext_series',
                                    'ext_p50_ms', 'ext_p99_ms', 'max_rate_ratio'])
        self.assertTrue(all(kv.endswith('=-') for kv in line.split()[1:]))

    def test_module_symtab(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, 'results.txt'), 'w') as f:
                f.write('LAB plan=bench\nKSYM ffffffffa0000010 nt_int_handler\nKSYM bad\n')
            self.assertEqual(benchstep.module_symtab(d),
                             [(0xffffffffa0000010, 'nt_int_handler [nmi_torture]')])
            self.assertEqual(benchstep.module_symtab(os.path.join(d, 'none')), [])


class ConfigsTest(unittest.TestCase):
    """The instruction counts of both configurations: summary keys, BENCH
    line and table, from recorded numbers (README's test configuration;
    a prod run)."""

    @staticmethod
    def step(k_entry, k_disp, u_entry, u_disp, poll=None):
        def ctx(e, d):
            return {'entry': e, 'dispatch': d, 'total': e + d, 'rep': 0}
        out = {'kernel': ctx(k_entry, k_disp), 'user': ctx(u_entry, u_disp)}
        if poll is not None:
            out['kernel']['poll_total'] = poll
        return out

    def data(self, prod=True):
        d = {'instrument': {'step': self.step(109, 695, 76, 774)},
             'series': {'step': self.step(103, 857, 76, 936, poll=2724)}}
        if prod:
            d['instrument-prod'] = {'step': self.step(61, 402, 52, 410)}
            d['series-prod'] = {'step': self.step(59, 431, 52, 439, poll=1811)}
        return d

    def test_ratios(self):
        s = benchreport.summary_of(self.data())
        self.assertAlmostEqual(s['roundtrip_insn_ratio'], (103 + 857) / (109 + 695))
        self.assertAlmostEqual(s['roundtrip_insn_ratio_prod'], (59 + 431) / (61 + 402))
        self.assertAlmostEqual(s['entry_insn_ratio_prod'], 59 / 61)
        self.assertEqual(s['user_entry_insn_ratio_prod'], 1.0)
        self.assertAlmostEqual(s['dispatch_insn_ratio_prod'], 431 / 402)
        # The test configuration's keys are the ones they always were.
        self.assertAlmostEqual(s['entry_insn_ratio'], 103 / 109)
        self.assertAlmostEqual(s['dispatch_insn_ratio'], 857 / 695)
        self.assertEqual(benchstats.insn_ratios({}, {}, '_x'),
                         {k + '_x': None for k in benchstats.INSN_RATIOS})

    def test_round_trip_is_the_median_total(self):
        # The median of the totals, not the sum of the medians.
        b = {'step': {'kernel': benchstep.summarize_steps([
            {'context': 'kernel', 'at': 'x', 'trace': [], 'counts': c}
            for c in ({'entry': 10, 'dispatch': 100, 'total': 110, 'rep': 0, 'steps': 110},
                      {'entry': 12, 'dispatch': 90, 'total': 102, 'rep': 0, 'steps': 102},
                      {'entry': 11, 'dispatch': 95, 'total': 106, 'rep': 0, 'steps': 106})],
            [])['kernel']}}
        s = {'step': {'kernel': {'entry': 11, 'dispatch': 95, 'total': 53}}}
        self.assertEqual(benchstats.get(b, 'step', 'kernel', 'total'), 106)
        self.assertEqual(benchstats.insn_ratios(b, s)['roundtrip_insn_ratio'], 0.5)

    def test_bench_line(self):
        line = benchstats.bench_line(benchreport.summary_of(self.data()))
        kv = dict(x.split('=') for x in line.split()[1:])
        self.assertEqual(kv['roundtrip_insn_ratio'], '1.194')
        self.assertEqual(kv['roundtrip_insn_ratio_prod'], '1.058')
        self.assertEqual(kv['entry_insn_ratio_prod'], '0.967')
        self.assertEqual(kv['user_entry_insn_ratio_prod'], '1.000')
        self.assertEqual(kv['dispatch_insn_ratio_prod'], '1.072')
        self.assertEqual(kv['entry_insn_ratio'], '0.945')
        self.assertEqual(kv['dispatch_insn_ratio'], '1.233')
        # Only instruction counts: the other parts' keys are there, as "-".
        self.assertEqual(kv['lost_ext_base'], '-')
        self.assertEqual(kv['max_rate_noloss_ratio'], '-')
        # The existing keys first, in their order; the new ones after.
        keys = [x.split('=')[0] for x in line.split()[1:]]
        self.assertEqual(keys, [
            'entry_insn_ratio', 'user_entry_insn_ratio', 'dispatch_insn_ratio',
            'lost_ext_base', 'lost_ext_series', 'ext_p50_ms', 'ext_p99_ms', 'max_rate_ratio',
            'ext_p50_ms_base', 'ext_p99_ms_base', 'max_rate_noloss_ratio',
            'roundtrip_insn_ratio', 'entry_insn_ratio_prod', 'user_entry_insn_ratio_prod',
            'dispatch_insn_ratio_prod', 'roundtrip_insn_ratio_prod'] + list(benchstats.TRAP_KEYS))

    def test_prod_missing_or_failed(self):
        kv = dict(x.split('=') for x in
                  benchstats.bench_line(benchreport.summary_of(self.data(prod=False))).split()[1:])
        self.assertEqual(kv['roundtrip_insn_ratio'], '1.194')
        self.assertEqual(kv['roundtrip_insn_ratio_prod'], '-')
        d = self.data()
        d['series-prod'] = {'step': {'error': 'no nt_cpu address'}}
        kv = dict(x.split('=') for x in
                  benchstats.bench_line(benchreport.summary_of(d)).split()[1:])
        self.assertEqual(kv['dispatch_insn_ratio_prod'], '-')
        self.assertIn('series-prod step: FAILED: no nt_cpu address', benchreport.notes(d))

    def args(self, parts=benchstats.PARTS):
        return types.SimpleNamespace(reps=5, torture_seconds=90, sweep_seconds=15,
                                           scale_cpus=64, part_list=list(parts))

    def test_table(self):
        rows = benchreport.table(self.data(), self.args(['step']))
        text = '\n'.join(rows)
        self.assertIn('test configuration', text)
        self.assertIn('prod configuration', text)
        self.assertNotIn('torture', text)
        trips = [r for r in rows if 'kernel->kernel (idle loop): round trip' in r]
        self.assertEqual(len(trips), 2)
        self.assertEqual(trips[0].split()[-3:], ['804', '960', '1.19'])
        self.assertEqual(trips[1].split()[-3:], ['463', '490', '1.06'])
        polls = [r for r in rows if 'poll NMI' in r]
        self.assertEqual([r.split()[-2:] for r in polls], [['-', '2724'], ['-', '1811']])
        # Without prod results (an older bench.json): no prod section; the
        # full table keeps every part.
        text = '\n'.join(benchreport.table(self.data(prod=False), self.args()))
        self.assertNotIn('prod configuration', text)
        self.assertIn('External events under internal NMI load', text)
        self.assertIn('NMI backtrace (sysrq-l)', text)

    def test_report_only_insn(self):
        with tempfile.TemporaryDirectory() as d:
            data = self.data()
            data['args'] = {'reps': 5, 'part_list': ['step']}
            data['inputs'] = {'series': {'from': 'build/out-series',
                                         'bzImage_mtime': '2026-12-04 15:12:15 UTC',
                                         'ko_mtime': '2026-12-04 15:14:05 UTC'}}
            with open(os.path.join(d, 'bench.json'), 'w') as f:
                json.dump(data, f)
            with open(os.devnull, 'w') as null:
                old, sys.stdout = sys.stdout, null
                try:
                    rc = bench.main(['--report-only', '--out', d])
                finally:
                    sys.stdout = old
            self.assertEqual(rc, 0)
            with open(os.path.join(d, 'bench.txt')) as f:
                txt = f.read()
        self.assertIn('roundtrip_insn_ratio_prod=1.058', txt.splitlines()[-1])
        self.assertNotIn('sysrq-l', txt)
        self.assertIn('series       bzImage 2026-12-04 15:12:15 UTC', txt)

    def test_inputs_prod_built_first(self):
        # The prod kernels are built before the test kernels are snapshotted,
        # which come right after one another; each snapshot's initramfs is
        # made from its own copied module, and says which build it is.
        from unittest import mock
        calls = []
        with tempfile.TemporaryDirectory() as d:
            build = os.path.join(d, 'build')
            for v in benchstats.ALL_VARIANTS:
                k = os.path.join(build, 'out-' + v)
                os.makedirs(os.path.join(k, 'arch/x86/boot'))
                os.makedirs(os.path.join(k, 'lib'))
                for n in ('arch/x86/boot/bzImage', 'vmlinux', 'lib/nmi_torture.ko'):
                    with open(os.path.join(k, n), 'w') as f:
                        f.write(v)

            def initrd(dd):
                with open(os.path.join(dd, 'nmi_torture.ko')) as f:
                    calls.append('initrd ' + f.read())
                open(os.path.join(dd, 'initramfs.cpio.gz'), 'w').close()
            args = types.SimpleNamespace(inputs=None, out=os.path.join(d, 'bench'))
            info = {}
            with mock.patch.object(bench, 'BUILD', build), \
                    mock.patch.object(boots, 'BUILD', build), \
                    mock.patch.object(bench, 'make_initrd', initrd), \
                    mock.patch.object(bench, 'ensure_kernel',
                                      lambda v: calls.append('build ' + v)):
                out = bench.prepare_inputs(args, benchstats.ALL_VARIANTS, info)
            self.assertEqual(calls, ['build instrument-prod', 'initrd instrument-prod',
                                     'build series-prod', 'initrd series-prod',
                                     'build instrument', 'initrd instrument',
                                     'build series', 'initrd series'])
            with open(out['series-prod']['kernel']) as f:
                self.assertEqual(f.read(), 'series-prod')
            self.assertEqual(out['series']['initrd'],
                             os.path.join(d, 'bench/inputs/series/initramfs.cpio.gz'))
            self.assertEqual(info['instrument-prod']['from'],
                             os.path.relpath(os.path.join(build, 'out-instrument-prod'),
                                             bench.TOP))
            self.assertRegex(info['series']['bzImage_mtime'], r'^\d{4}-\d\d-\d\d \d\d:')

    def test_prod_build_command(self):
        self.assertEqual(bench.prod_kbuild_argv('series-prod')[1:], ['series', 'series-prod'])
        self.assertEqual(bench.prod_kbuild_argv('instrument-prod')[1:],
                         ['instrument', 'instrument-prod'])
        with open(os.path.join(bench.TOP, bench.PROD_CONFIG)) as f:
            lines = [x.strip() for x in f if x.startswith('CONFIG_')]
        for opt in ('PROVE_LOCKING', 'DEBUG_ENTRY', 'DEBUG_ATOMIC_SLEEP', 'NMI_CHECK_CPU',
                    'DEBUG_NMI_SELFTEST'):
            self.assertIn('CONFIG_%s=n' % opt, lines)
        # What the bench needs stays.
        for opt in ('NMI_TORTURE', 'KPROBES', 'PERF_EVENTS', 'DEBUG_FS', 'DEBUG_KERNEL'):
            self.assertFalse([x for x in lines if x.startswith('CONFIG_%s=' % opt)], opt)


class PlotTest(unittest.TestCase):
    def plot(self):
        hist = [0] * benchstats.HIST_BUCKETS
        hist[30], hist[benchstats.hist_index(5000)] = 90, 10
        return benchreport.plot_cdf(
            [('BASE', (30, 90, 200), benchstats.percentile_cdf(7808, 88064, 138950)),
             ('SERIES', (210, 50, 30), benchstats.hist_cdf(hist))], 'TITLE', 'SUB')

    def test_plot(self):
        import xml.etree.ElementTree as ET
        svg = self.plot()
        root = ET.fromstring(svg)
        self.assertEqual(root.tag, '{http://www.w3.org/2000/svg}svg')
        self.assertEqual((root.get('width'), root.get('height')), ('738pt', '576pt'))  # 10.25 x 8 in
        text = svg.decode()
        self.assertIn('#d2321e', text)      # both series are drawn
        self.assertIn('#1e5ac8', text)
        for words in ('TITLE', 'SUB', 'BASE', 'SERIES', '1 - CDF'):
            self.assertIn('>%s<' % words, text)
        self.assertEqual(svg, self.plot())  # no date, no random ids


if __name__ == '__main__':
    unittest.main()
