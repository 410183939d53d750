"""Verdict rules of lab/torture_check.py's hotplug boot, fed with recorded
results."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import results  # noqa: E402
import torture_check  # noqa: E402

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


class TestMoved(unittest.TestCase):
    def test_away_and_back_each_time(self):
        tt = {'hp_offlines': '14', 'hp_moves': '28', 'hp_kicks': '0', 'hp_failed': '0'}
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


if __name__ == '__main__':
    unittest.main()
