"""Verdict rules of lab/check.py, fed with recorded results."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import check    # noqa: E402
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
        self.assertEqual(check.poll_storms(r, 30), [])

    def test_the_old_dispatcher_storm(self):
        # 825772 poll NMIs in 40 s on CPU 0: what the dispatcher did before
        # a poll NMI identified itself, with a sticky local handler.
        r = stats({'0': 1, '1': 0}, {'0': 825773, '1': 0})
        self.assertEqual(check.poll_storms(r, 40), [('0', 825772)])


if __name__ == '__main__':
    unittest.main()
