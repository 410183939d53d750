# SPDX-License-Identifier: GPL-2.0
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import expect  # noqa: E402


class ExpectTest(unittest.TestCase):
    def test_parse(self):
        e = expect.parse('# c\n\nmov_ss_trap_64  QEMU 7.2 TCG quirk\n')
        self.assertEqual(e, {'mov_ss_trap_64': 'QEMU 7.2 TCG quirk'})

    def test_reason_required(self):
        with self.assertRaises(ValueError):
            expect.parse('mov_ss_trap_64\n')

    def test_duplicate(self):
        with self.assertRaises(ValueError):
            expect.parse('a r\na r\n')

    def test_classify(self):
        e = {'x': 'why'}
        self.assertEqual(expect.classify('y', False, e), 'PASS')
        self.assertEqual(expect.classify('y', True, e), 'FAIL')
        self.assertEqual(expect.classify('x', True, e, base_failed=True), 'XFAIL')
        # Fails on the series but not (identically) on the base: a real failure.
        self.assertEqual(expect.classify('x', True, e, base_failed=False), 'FAIL')
        # Not proven on the base at all: not accepted.
        self.assertEqual(expect.classify('x', True, e, base_failed=None), 'FAIL')
        # Listed but passing: the list is stale.
        self.assertEqual(expect.classify('x', False, e), 'XPASS')

    def test_repository_file_parses(self):
        expect.load()


if __name__ == '__main__':
    unittest.main()
