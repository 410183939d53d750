"""Verdict rules of lab/torture_check.py's hotplug boot, fed with recorded
results."""
import contextlib
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import results  # noqa: E402
import torture_check  # noqa: E402
from tally import Tally  # noqa: E402

HEADER = ('cpu internal external fallback unknown unknown_b2b unknown_expired swallowed '
          'late_ipis latched nested repeats recovered ext_polls poll_nmis')


def quiet(rows):
    """NMISTATS quiet0/quiet1; rows: {cpu: (internal, ext_polls, poll_nmis)}
    of quiet1, quiet0 all zeros."""
    lines = ['NMISTATS quiet0 ' + HEADER, 'NMISTATS quiet1 ' + HEADER]
    for cpu, (internal, polls, pnmis) in sorted(rows.items()):
        lines.insert(1, 'NMISTATS quiet0 %s' % cpu + ' 0' * 14)
        lines.append('NMISTATS quiet1 %s %d 0 0 0 0 0 0 0 0 0 0 0 %d %d' % (
            cpu, internal, polls, pnmis))
    return results.parse('\n'.join(lines) + '\n')


class TestRefs(unittest.TestCase):
    def test_no_poll_but_on_cpu0(self):
        r = quiet({'0': (900, 12, 30), '1': (800, 0, 0), '2': (850, 0, 0), '3': (700, 0, 0)})
        self.assertEqual(torture_check.refs_row(r)[0], 'PASS')

    def test_a_cpu_left_marked_owes_polls(self):
        # CPU 2 took the device's NMIs while CPU 1 was offline and was not
        # unmarked: it owes a poll after its claimed NMIs.
        r = quiet({'0': (900, 12, 30), '1': (800, 0, 0), '2': (850, 40, 35), '3': (700, 0, 0)})
        v, note = torture_check.refs_row(r)
        self.assertEqual(v, 'FAIL')
        self.assertIn('cpu2:poll_nmis=35', note)

    def test_a_cpu_without_internal_nmis_tested_nothing(self):
        r = quiet({'0': (900, 0, 0), '1': (0, 0, 0)})
        self.assertEqual(torture_check.refs_row(r)[0], 'FAIL')

    def test_no_snapshots(self):
        self.assertEqual(torture_check.refs_row(results.parse(''))[0], 'FAIL')


class TestTrapret(unittest.TestCase):
    HITS = {'int3_hits': '78442', 'pf_hits': '78442'}

    def test_fast_return_no_nesting(self):
        v, note = torture_check.trapret_row(dict(self.HITS, nested='0', repeats='0'), 0)
        self.assertEqual(v, 'PASS')
        self.assertIn('nested=0 repeats=0', note)

    def test_fast_return_that_nests_fails(self):
        # What a kernel whose traps still return with IRET records.
        v, _ = torture_check.trapret_row(dict(self.HITS, nested='2177', repeats='2111'), 0)
        self.assertEqual(v, 'FAIL')

    def test_iret_must_nest(self):
        self.assertEqual(torture_check.trapret_row(
            dict(self.HITS, nested='2177', repeats='2111'), 1)[0], 'PASS')
        # The knob had no effect: the test could not tell the two apart.
        self.assertEqual(torture_check.trapret_row(
            dict(self.HITS, nested='0', repeats='0'), 1)[0], 'FAIL')

    def test_no_hazard_hit_proves_nothing(self):
        self.assertEqual(torture_check.trapret_row(
            {'nested': '0', 'repeats': '0', 'int3_hits': '0', 'pf_hits': '5'}, 0)[0], 'FAIL')
        self.assertEqual(torture_check.trapret_row({'nested': '0', 'repeats': '0'}, 0)[0],
                         'FAIL')


class TestMoved(unittest.TestCase):
    def test_away_and_back_each_time(self):
        tt = {'hp_offlines': '14', 'hp_moves': '28', 'hp_failed': '0'}
        self.assertEqual(torture_check.moved_row(tt)[0], 'PASS')

    def test_never_offline(self):
        tt = {'hp_offlines': '0', 'hp_moves': '0', 'hp_failed': '0'}
        self.assertEqual(torture_check.moved_row(tt)[0], 'FAIL')

    def test_not_moved_back(self):
        tt = {'hp_offlines': '14', 'hp_moves': '14', 'hp_failed': '0'}
        self.assertEqual(torture_check.moved_row(tt)[0], 'FAIL')

    def test_a_failed_offline(self):
        tt = {'hp_offlines': '3', 'hp_moves': '6', 'hp_failed': '1'}
        self.assertEqual(torture_check.moved_row(tt)[0], 'FAIL')

    def test_a_kernel_without_the_knob(self):
        self.assertEqual(torture_check.moved_row({})[0], 'FAIL')


class FakeBoot:
    def __init__(self, text, completed=True):
        self.results = results.parse(text)
        self._completed = completed
        self.status = 'pass' if completed else 'timeout'
        self.summary = {}

    def completed(self):
        return self._completed

    def console_findings(self):
        return 0


class TestVerdictRows(unittest.TestCase):
    TEXT = ('TORTURE_KV int_verdict=PASS\nTORTURE_KV ext_verdict=FAIL\n'
            'TORTURE_KV ext_lost=1\nTORTURE_KV ext_foreign=9\n'
            'TORTURE_KV TORTURE raised=5 serviced=4 lost=1 dup=0 unknown=0 nested=0 '
            'repeats=0 verdict=FAIL\n')

    def test_each_verdict_its_row(self):
        t = Tally(quiet=True)
        with contextlib.redirect_stdout(io.StringIO()):
            tt = torture_check.verdict_rows(t, FakeBoot(self.TEXT), 'torture-x',
                                            ('ext_foreign',))
        self.assertEqual(tt['ext_lost'], '1')
        self.assertEqual([(v, n) for v, n, _ in t.rows],
                         [('PASS', 'torture-x:int'), ('FAIL', 'torture-x:ext')])
        self.assertIn('ext_foreign=9', t.rows[1][2])

    def test_a_plan_that_did_not_end(self):
        t = Tally(quiet=True)
        self.assertIsNone(torture_check.verdict_rows(t, FakeBoot('', completed=False),
                                                     'torture-x', ()))
        self.assertEqual([(v, n) for v, n, _ in t.rows],
                         [('FAIL', 'torture-x'), ('PASS', 'console:torture-x')])


if __name__ == '__main__':
    unittest.main()
