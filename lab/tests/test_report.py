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

    def test_unknown_not_measured(self):
        # The base without kernel counts and a run without the torture test.
        self.assertIsNone(report.unexplained_unknown({'unknown': '-'}))
        self.assertIsNone(report.unexplained_unknown({}))


if __name__ == '__main__':
    unittest.main()
