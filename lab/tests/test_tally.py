"""lab/tally.py: the rows of make check as KTAP, read by the kernel's own
KTAP parser (tools/testing/kunit/kunit_parser.py of the tree)."""
import contextlib
import io
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import results  # noqa: E402
import tally    # noqa: E402


class TestKtapLine(unittest.TestCase):
    def test_pass_fail_xfail(self):
        self.assertEqual(tally.ktap_line(1, 'PASS', 'model'), 'ok 1 model')
        self.assertEqual(tally.ktap_line(2, 'FAIL', 'torture:lost', '3 of 9 lost'),
                         'not ok 2 torture:lost # 3 of 9 lost')
        self.assertEqual(tally.ktap_line(3, 'XFAIL', 'ksft:x', 'fails on the base too'),
                         'ok 3 ksft:x # XFAIL fails on the base too')
        self.assertEqual(tally.ktap_line(4, 'XFAIL', 'ksft:y'), 'ok 4 ksft:y # XFAIL')

    def test_a_name_cannot_open_a_directive(self):
        # "ok 1 a # SKIP" would make the row a skip; a note's newline a new line.
        self.assertEqual(tally.ktap_line(1, 'PASS', 'a # SKIP', 'x\ny'), 'ok 1 a _ SKIP # x y')

    def test_unknown_verdict_refused(self):
        t = tally.Tally(quiet=True)
        with self.assertRaises(ValueError):
            t.add('SKIP', 'x')
        self.assertEqual(t.rows, [])


class TestLater(unittest.TestCase):
    def test_replayed_in_order(self):
        later = tally.Later()
        later.say('      w1: 3 objects')
        later.add('PASS', 'w1:wide', '3 objects')
        later.add('FAIL', 'docs:sphinx', '1 warning')
        with self.assertRaises(ValueError):
            later.add('OK', 'x')
        self.assertEqual(len(later.rows), 2)
        t = tally.Tally()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            t.add('PASS', 'bisect:1')
            later.replay(t)
        self.assertEqual(out.getvalue().splitlines(), [
            'KTAP version 1', 'ok 1 bisect:1', '      w1: 3 objects', 'ok 2 w1:wide # 3 objects',
            'not ok 3 docs:sphinx # 1 warning'])
        self.assertEqual((t.passed(), t.failed()), (2, 1))
        self.assertEqual(later.rows, [])


ROWS = [('PASS', 'lab:TestPollStorms', ''), ('FAIL', 'torture:lost', '3 of 250000 lost'),
        ('XFAIL', 'ksft:sigreturn_64', 'fails the same way on the base'),
        ('PASS', 'bisect:7', 'x86/nmi: Add NMI_EXTERNAL handlers'),
        ('FAIL', 'boot:ksft', 'exit=1')]


def printed(rows, between=()):
    """What make check prints for rows, with a part's own lines between."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print('tree: /work/build/linux = base + 19 patches')
        t = tally.Tally()
        for row in rows:
            for ln in between:
                print(ln)
            t.add(*row)
        print(t.totals())
        print('%d passed, %d failed' % (t.passed(), t.failed()))
    return t, out.getvalue()


class TestReadByKunitParser(unittest.TestCase):
    def setUp(self):
        try:
            self.kp = results.kunit_parser()
        except ImportError:
            self.skipTest('no kernel tree (make tree)')

    def parse(self, text):
        # The parser reports on the printer it imported, as kunit.py does.
        saved, self.kp.stdout._output = self.kp.stdout._output, io.StringIO()
        try:
            return self.kp.parse_run_tests(text.splitlines())
        finally:
            self.kp.stdout._output = saved

    def test_counts_agree(self):
        t, text = printed(ROWS, between=(
            '      RESULT status=pass nmis=38259 unknown=0 verdict=PASS',
            'kbuild: series: 812 objects compiled in 300 s'))
        test = self.parse(text)
        self.assertEqual(test.counts.errors, 0, test.log)
        self.assertEqual(test.counts.passed, t.passed())
        self.assertEqual(test.counts.failed, t.failed())
        self.assertEqual([s.name for s in test.subtests], [n for _, n, _ in ROWS])
        self.assertEqual(test.status, self.kp.TestStatus.FAILURE)

    def test_all_pass(self):
        t, text = printed([r for r in ROWS if r[0] != 'FAIL'])
        test = self.parse(text)
        self.assertEqual((test.counts.passed, test.counts.failed, test.counts.errors), (3, 0, 0))
        self.assertEqual(test.status, self.kp.TestStatus.SUCCESS)


# Summary lines as the lab printed them (docs/results.md, session 11).
LINES = {
    'SERIES patches=19 checkpatch=0 prose=0 bisect_fail=0 build_fail=0 new_warnings=0':
        ('SERIES', 'new_warnings', '0'),
    'base: TORTURE raised=251356 serviced=251355 lost=1 dup=0 unknown=1466 verdict=FAIL':
        ('TORTURE', 'lost', '1'),
    '      WINDOWS covered=20 total=137 failures=0 excluded=28': ('WINDOWS', 'failures', '0'),
    'MODEL states=2292718 errors=0 mutants_killed=12/12': ('MODEL', 'mutants_killed', '12/12'),
    'BISECT patches=19 bisect_fail=0': ('BISECT', 'bisect_fail', '0'),
    'BENCH entry_insn_ratio=1.009 lost_ext_base=- roundtrip_insn_ratio_prod=0.738':
        ('BENCH', 'lost_ext_base', '-'),
}


class TestSummaryLines(unittest.TestCase):
    def test_recorded_lines(self):
        for line, (kind, key, value) in LINES.items():
            got = tally.parse_summary(line)
            self.assertEqual(got[0], kind, line)
            self.assertEqual(got[1][key], value, line)
            self.assertEqual(tally.parse_summary(line, kind)[0], kind)
            self.assertIsNone(tally.parse_summary(line, 'HPETSOAK'))

    def test_not_summary_lines(self):
        for line in ('', 'ok 3 model', 'windows: 54 s, details in build/runs', 'RESULT',
                     'KVMSFT ran=3 passed'):
            self.assertIsNone(tally.parse_summary(line), line)

    def test_round_trip(self):
        fields = [('ran', 30), ('passed', 29), ('note', 'two words'), ('nmis', None),
                  ('empty', '')]
        line = tally.summary_line('KVMSFT', fields)
        self.assertEqual(line, 'KVMSFT ran=30 passed=29 note=two_words nmis=- empty=-')
        self.assertEqual(tally.parse_summary(line), ('KVMSFT', {
            'ran': '30', 'passed': '29', 'note': 'two_words', 'nmis': '-', 'empty': '-'}))
        self.assertEqual(tally.summary_line('MODEL', {'errors': 0}), 'MODEL errors=0')

    def test_bad_kind_or_key(self):
        for kind, fields in (('model', []), ('MODEL', [('Errors', 0)]), ('MODEL', [('a b', 1)])):
            with self.assertRaises(ValueError):
                tally.summary_line(kind, fields)

    def test_no_line_written_by_hand(self):
        """Every summary line of the lab's Python is written by summary_line():
        no string in its code (docstrings aside) starts one by hand."""
        import ast
        lab = os.path.join(os.path.dirname(__file__), '..')
        kinds = 'RESULT|TORTURE|LOCKFREE|BENCH|SERIES|BISECT|WINDOWS|HPETSOAK|HPETSWITCH|KVMSFT|MODEL'
        pat = re.compile(r'^\s*(?:%s) [a-z_]+=' % kinds)
        found = []
        for name in sorted(os.listdir(lab)):
            if not name.endswith('.py') or name == 'tally.py':
                continue
            with open(os.path.join(lab, name)) as f:
                tree = ast.parse(f.read())
            docs = {id(n.body[0].value) for n in ast.walk(tree)
                    if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                    and isinstance(n.body[0], ast.Expr)}
            found += ['%s:%d' % (name, n.lineno) for n in ast.walk(tree)
                      if isinstance(n, ast.Constant) and isinstance(n.value, str)
                      and id(n) not in docs and pat.search(n.value)]
        self.assertEqual(found, [])

if __name__ == '__main__':
    unittest.main()
