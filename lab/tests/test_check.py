"""Verdict rules of lab/check.py, fed with recorded results."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import check    # noqa: E402
import torture_check  # noqa: E402
import results  # noqa: E402

HEADER = ('cpu internal external fallback unknown unknown_b2b unknown_expired swallowed '
          'late_ipis latched nested repeats recovered ext_polls poll_nmis')


def stats(before, after):
    """A results channel with NMISTATS before/after; {cpu: poll_nmis}."""
    lines = ['NMISTATS before ' + HEADER, 'NMISTATS after ' + HEADER]
    for cpu in sorted(before):
        lines.insert(1, 'NMISTATS before %s 0 0 0 0 0 0 0 0 0 0 0 0 0 %d' % (cpu, before[cpu]))
        lines.append('NMISTATS after %s 0 0 0 0 0 0 0 0 0 0 0 0 0 %d' % (cpu, after[cpu]))
    return results.parse('\n'.join(lines) + '\n')


class TestPollStorms(unittest.TestCase):
    def test_within_the_interval(self):
        r = stats({'0': 5, '1': 0}, {'0': 5 + 30 * 100, '1': 40})
        self.assertEqual(torture_check.poll_storms(r, 30), [])

    def test_the_old_dispatcher_storm(self):
        # 825772 poll NMIs in 40 s on CPU 0: what the dispatcher did before
        # a poll NMI identified itself, with a sticky local handler.
        r = stats({'0': 1, '1': 0}, {'0': 825773, '1': 0})
        self.assertEqual(torture_check.poll_storms(r, 40), [('0', 825772)])


class TestFirstFailures(unittest.TestCase):
    def test_the_failed_checks_of_a_selftest(self):
        diag = ['TAP version 13', '1..2',
                '# IRET fault: LDT CS invalidated by a sibling: 3.0s, 5 iterations',
                '[FAIL] IRET fault at 0x401000: reg 3 is 0x1, not 0x2',
                'ok 1 IRET fault: LDT CS invalidated by a sibling: 603 NMIs',
                'not ok 2 IRET fault: LDT SS (espfix): 1 failed checks, exit status 0',
                '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0']
        self.assertEqual(check.first_failures(diag), [
            '[FAIL] IRET fault at 0x401000: reg 3 is 0x1, not 0x2',
            'not ok 2 IRET fault: LDT SS (espfix): 1 failed checks, exit status 0'])

    def test_a_passing_selftest_says_nothing(self):
        self.assertEqual(check.first_failures(['ok 1 a', '# [SKIP] b', '# ok 2 c']), [])



class FakeBoot:
    """What the verdict rules read of a lab.Boot: results and vm summary."""

    def __init__(self, text, injected=0):
        self.results = results.parse(text)
        self.summary = {'nmi_injected': injected}


class TestGenuineAndSpurious(unittest.TestCase):
    def test_every_genuine_nmi_reported(self):
        b = FakeBoot('LAB genuine_reported=10\n', injected=10)
        self.assertEqual(torture_check.genuine_row(b)[0], 'PASS')

    def test_a_genuine_nmi_swallowed(self):
        b = FakeBoot('LAB genuine_reported=9\n', injected=10)
        self.assertEqual(torture_check.genuine_row(b), ('FAIL', 'genuine_reported=9 genuine_sent=10'))

    def test_no_genuine_phase_or_nothing_sent(self):
        self.assertEqual(torture_check.genuine_row(FakeBoot('', injected=10))[0], 'FAIL')
        self.assertEqual(torture_check.genuine_row(FakeBoot('LAB genuine_reported=0\n'))[0], 'FAIL')

    def test_spurious_a_tenth_of_the_base(self):
        s = FakeBoot('TORTURE_KV unexplained=39\n')
        b = FakeBoot('TORTURE_KV unexplained=395\n')
        self.assertEqual(torture_check.spurious_row(s, b)[0], 'PASS')
        s = FakeBoot('TORTURE_KV unexplained=78\n')
        self.assertEqual(torture_check.spurious_row(s, b)[0], 'FAIL')

    def test_spurious_without_counts(self):
        s = FakeBoot('TORTURE_KV unexplained=0\n')
        self.assertEqual(torture_check.spurious_row(s, FakeBoot(''))[0], 'FAIL')
        self.assertEqual(torture_check.spurious_row(FakeBoot(''), s)[0], 'FAIL')

    def test_base_without_spurious_needs_none(self):
        s = FakeBoot('TORTURE_KV unexplained=0\n')
        self.assertEqual(torture_check.spurious_row(s, s)[0], 'PASS')
        self.assertEqual(torture_check.spurious_row(FakeBoot('TORTURE_KV unexplained=1\n'), s)[0],
                         'FAIL')


KUNIT_SRC = """static struct kunit_case nmi_dispatch_test_cases[] = {
	KUNIT_CASE(nmi_test_a),
	KUNIT_CASE(nmi_test_b),
	{}
};
"""


class TestKunit(unittest.TestCase):
    """check.kunit(): the kernel's KUnit parser reads the results, and the
    cases must be the source's, all run and passed."""

    def setUp(self):
        import tempfile
        self.tree = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.tree, 'arch/x86/kernel'))
        with open(os.path.join(self.tree, 'arch/x86/kernel/nmi_kunit.c'), 'w') as f:
            f.write(KUNIT_SRC)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tree)

    def rows(self, cases, suite_ok=True, plan=None):
        lines = ['KTAP version 1', '1..1', '    KTAP version 1',
                 '    # Subtest: x86_nmi_dispatch', '    1..%d' % (plan or len(cases))]
        lines += ['    %s %d %s' % (st, i + 1, c) for i, (c, st) in enumerate(cases)]
        if suite_ok is not None:
            lines.append('%s 1 x86_nmi_dispatch' % ('ok' if suite_ok else 'not ok'))
        b = FakeBoot(''.join('KUNIT %s\n' % ln for ln in lines))
        t = check.Tally()
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            check.kunit(t, b, tree=self.tree)
        return {name: v for v, name, _ in t.rows}

    @unittest.skipUnless(os.path.isdir(results.KUNIT_TOOL), 'no kernel tree (make tree)')
    def test_all_cases_of_the_source_pass(self):
        r = self.rows([('nmi_test_a', 'ok'), ('nmi_test_b', 'ok')])
        self.assertEqual(r['kunit:x86_nmi_dispatch'], 'PASS')
        self.assertEqual(r['kunit:x86_nmi_dispatch.nmi_test_b'], 'PASS')

    @unittest.skipUnless(os.path.isdir(results.KUNIT_TOOL), 'no kernel tree (make tree)')
    def test_a_failed_case(self):
        r = self.rows([('nmi_test_a', 'ok'), ('nmi_test_b', 'not ok')], suite_ok=False)
        self.assertEqual(r['kunit:x86_nmi_dispatch.nmi_test_b'], 'FAIL')
        self.assertEqual(r['kunit:x86_nmi_dispatch'], 'FAIL')

    @unittest.skipUnless(os.path.isdir(results.KUNIT_TOOL), 'no kernel tree (make tree)')
    def test_a_case_missing_or_renamed(self):
        r = self.rows([('nmi_test_a', 'ok')], plan=2, suite_ok=None)
        self.assertEqual(r['kunit:x86_nmi_dispatch'], 'FAIL')
        r = self.rows([('nmi_test_a', 'ok'), ('nmi_test_c', 'ok')])
        self.assertEqual(r['kunit:x86_nmi_dispatch'], 'FAIL')

    def test_the_source_cases(self):
        self.assertEqual(check.kunit_cases(os.path.join(self.tree, 'arch/x86/kernel/nmi_kunit.c')),
                         ['nmi_test_a', 'nmi_test_b'])


class TestKsftRow(unittest.TestCase):
    EXPECTED = {'mov_ss_trap_64': 'fails on the base the same way'}

    def test_nmi_selftest_skipped_under_the_storm_fails(self):
        self.assertEqual(check.ksft_row('nmi_regs_64', 'skip', 'SKIP no NMI', 200, {}, {})[0],
                         'FAIL')
        self.assertEqual(check.ksft_row('nmi_regs_64', 'skip', 'SKIP no NMI', 0, {}, {})[0],
                         'PASS')
        self.assertEqual(check.ksft_row('sigreturn_64', 'skip', 'SKIP', 200, {}, {})[0], 'PASS')

    def test_expected_failure_needs_the_same_failure_on_the_base(self):
        same = {'mov_ss_trap_64': ('fail', 'exit=1')}
        other = {'mov_ss_trap_64': ('fail', 'TIMEOUT after 300s')}
        passed = {'mov_ss_trap_64': ('pass', '')}
        row = lambda base: check.ksft_row('mov_ss_trap_64', 'fail', 'exit=1 nmis=5', 200,
                                          self.EXPECTED, base)[0]
        self.assertEqual(row(same), 'XFAIL')
        self.assertEqual(row(other), 'FAIL')
        self.assertEqual(row(passed), 'FAIL')
        self.assertEqual(row({}), 'FAIL')           # not proven on the base

    def test_stale_entry_and_plain_failure(self):
        v, note = check.ksft_row('mov_ss_trap_64', 'pass', '', 200, self.EXPECTED, {})
        self.assertEqual(v, 'XPASS')
        self.assertIn('remove the entry', note)
        self.assertEqual(check.ksft_row('fsgsbase_64', 'fail', 'exit=1', 200, {}, {})[0],
                         'FAIL')


class TestNestingRow(unittest.TestCase):
    def test_rule(self):
        self.assertEqual(torture_check.nesting_row({'nested': 5, 'repeats': 3})[0], 'PASS')
        self.assertEqual(torture_check.nesting_row({'nested': 3, 'repeats': 3})[0], 'PASS')
        self.assertEqual(torture_check.nesting_row({'nested': 0, 'repeats': 0})[0], 'FAIL')
        self.assertEqual(torture_check.nesting_row({'nested': 2, 'repeats': 3})[0], 'FAIL')
        self.assertEqual(torture_check.nesting_row({})[0], 'FAIL')


class TestModelLine(unittest.TestCase):
    def test_rules(self):
        self.assertTrue(check.model_ok('MODEL states=2292718 errors=0 mutants_killed=12/12'))
        self.assertFalse(check.model_ok('MODEL states=2292718 errors=0 mutants_killed=11/12'))
        self.assertFalse(check.model_ok('MODEL states=2292718 errors=1 mutants_killed=12/12'))
        self.assertFalse(check.model_ok('MODEL states=2292718 errors=0'))
        self.assertFalse(check.model_ok('spin: error: cannot open model.pml'))


class TestSummaryTee(unittest.TestCase):
    def test_keeps_summary_lines(self):
        import io
        out = io.StringIO()
        tee = check.SummaryTee(out)
        tee.write('ok 1 model\n      MODEL states=5 errors=0 mutants_killed=12/12\nbase: TOR')
        tee.write('TURE raised=3 lost=0\nkbuild: series built in 453 s\n')
        tee.write('ok 369 kvm:torture # TORTURE raised=180956 lost=0\n')
        self.assertEqual(tee.lines, ['MODEL states=5 errors=0 mutants_killed=12/12',
                                     'base: TORTURE raised=3 lost=0'])
        self.assertIn('kbuild: series built', out.getvalue())

    def test_results_section(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            summary = os.path.join(d, 'check-summary.txt')
            with open(summary, 'w') as f:
                f.write('MODEL states=5 errors=0 mutants_killed=12/12\n348 passed, 0 failed\n')
            with open(os.path.join(d, 'check-timing.txt'), 'w') as f:
                f.write('timing (s):\n  deps                              5\n'
                        '  wall time                      2400\n')
            text = check.results_section('Session 12', summary)
        lines = text.splitlines()
        self.assertEqual(lines[0], '## Session 12')
        self.assertIn('**2400 s, 348 passed, 0 failed**', text)
        self.assertIn('    MODEL states=5 errors=0 mutants_killed=12/12', lines)
        self.assertIn('      deps                              5', lines)


if __name__ == '__main__':
    unittest.main()


class TestBacktrace(unittest.TestCase):
    """The sysrq-l of the torture plan: every CPU's NMI backtrace."""

    def boot(self, console):
        import tempfile
        d = tempfile.mkdtemp()
        with open(os.path.join(d, 'console.log'), 'w') as f:
            f.write(console)
        b = FakeBoot('LAB backtrace_sent=1 cpus=4\n')
        b.outdir = d
        return b

    def test_every_cpu(self):
        text = ''.join('[ 9.8] NMI backtrace for cpu %d\n' % c for c in (1, 0, 3, 2))
        self.assertEqual(torture_check.backtrace_row(self.boot(text)),
                         ('PASS', 'NMI backtraces of 4 of 4 CPUs'))

    def test_only_the_sender(self):
        # What a kernel prints whose backtrace handler never runs: the
        # sending CPU's own backtrace, nothing from the others.
        v, note = torture_check.backtrace_row(self.boot('[ 9.8] NMI backtrace for cpu 1\n'))
        self.assertEqual(v, 'FAIL')
        self.assertIn('missing: [0, 2, 3]', note)

    def test_no_sysrq(self):
        b = self.boot('')
        b.results = results.parse('')
        self.assertEqual(torture_check.backtrace_row(b)[0], 'FAIL')
