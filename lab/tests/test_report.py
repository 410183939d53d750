# SPDX-License-Identifier: GPL-2.0
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import report  # noqa: E402


class ReportTest(unittest.TestCase):
    def test_unknown_explained_by_late_ipis(self):
        self.assertEqual(report.unexplained_unknown({'unknown': '2', 'ipi_slow': '3'}), 0)
        self.assertEqual(report.unexplained_unknown({'unknown': '2', 'ipi_slow': '0'}), 2)
        self.assertEqual(report.unexplained_unknown({'unknown': '4'}), 4)

    def test_unknown_explained_by_host_nmis(self):
        # Host NMIs are unknown by design; some merge, so fewer may show.
        t = {'unknown': '1655', 'ipi_slow': '8'}
        self.assertEqual(report.unexplained_unknown(t, 10908), 0)
        self.assertEqual(report.unexplained_unknown(t, 1000), 647)
        self.assertEqual(report.unexplained_unknown(t), 1647)

    def test_unknown_not_measured(self):
        # The base without kernel counts and a run without the torture test.
        self.assertIsNone(report.unexplained_unknown({'unknown': '-'}))
        self.assertIsNone(report.unexplained_unknown({}))


class LockfreeTest(unittest.TestCase):
    def test_line(self):
        d = {'internal': 1000, 'ext_polls': 5, 'poll_nmis': 100, 'recovered': 3}
        self.assertEqual(report.lockfree_line(d, 10.0),
                         'LOCKFREE internal=1000 ext_polls=5 lockfree_pct=99.50 poll_nmis=100 '
                         'poll_per_internal_pct=10.00 recovered=3 poll_nmis_per_s=10')

    def test_base_has_no_stats(self):
        self.assertIsNone(report.lockfree_line(None))


class ExtWorkElsewhereTest(unittest.TestCase):
    def stats(self, cpu1_polls):
        import results
        return results.parse(
            'NMISTATS before cpu internal ext_polls poll_nmis longest_ns\n'
            'NMISTATS before 0 1 0 0 5\nNMISTATS before 1 1 0 0 5\n'
            'NMISTATS after cpu internal ext_polls poll_nmis longest_ns\n'
            'NMISTATS after 0 9 4 3 5\nNMISTATS after 1 9 %d 0 5\n' % cpu1_polls)

    def test_only_the_external_cpu_polls(self):
        self.assertEqual(report.ext_work_elsewhere(self.stats(0), '0'), [])

    def test_a_pass_elsewhere_is_reported(self):
        self.assertEqual(report.ext_work_elsewhere(self.stats(2), '0'),
                         [('1', 'ext_polls', 2)])


class ExtCpuPollsTest(unittest.TestCase):
    def test_share_on_the_external_cpu(self):
        self.assertEqual(report.ext_cpu_polls({'internal': 14001, 'poll_nmis': 3882}, '0'),
                         ' ext_cpu=0 poll_per_internal_pct_ext=27.73')

    def test_nothing_without_counts(self):
        self.assertEqual(report.ext_cpu_polls(None, '0'), '')
        self.assertEqual(report.ext_cpu_polls({'internal': 0, 'poll_nmis': 3}, '0'), '')


class GenuinePhaseTest(unittest.TestCase):
    """Host NMIs of the genuine phase come after the kernel's counts stop:
    they explain no unknown NMI of the run itself."""

    class Boot:
        def __init__(self, lab, injected):
            self.results = type('R', (), {'lab': lab})()
            self.summary = {'nmi_injected': injected}

    def test_injected_during_the_storm(self):
        b = self.Boot({}, 40)
        self.assertEqual(report.storm_injected(b), 40)
        self.assertEqual(report.genuine_fields(b), {})

    def test_injected_in_the_genuine_phase(self):
        b = self.Boot({'genuine_reported': '9'}, 10)
        self.assertEqual(report.storm_injected(b), 0)
        self.assertEqual(report.genuine_fields(b),
                         {'genuine_reported': '9', 'genuine_sent': '10'})


if __name__ == '__main__':
    unittest.main()
