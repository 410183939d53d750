"""The timing table of make check (lab/timing.py)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import timing   # noqa: E402


class TestTable(unittest.TestCase):
    def setUp(self):
        fd, self.path = tempfile.mkstemp()
        os.close(fd)

    def tearDown(self):
        os.unlink(self.path)

    def write(self, text):
        with open(self.path, 'w') as f:
            f.write(text)

    def test_builds_and_boots_under_their_part(self):
        self.write('start 1000\ndeps 40\nkernel:series 600\nkernel 601\n'
                   'kernel:instrument 300\nboot:check-ksft 500\npart:ksft 810\n')
        timing.add('part:hpet', 99.6, self.path)
        lines = timing.table(self.path, now=3000)
        self.assertEqual([ln.split() for ln in lines], [
            ['timing', '(s):'], ['deps', '40'], ['kernel', '601'], ['build', 'series', '600'],
            ['part:ksft', '810'], ['build', 'instrument', '300'], ['boot', 'check-ksft', '500'],
            ['part:hpet', '100'], ['wall', 'time', '2000']])

    def test_a_new_start_begins_a_new_table(self):
        self.write('start 1\ndeps 5\nstart 10\ntree 3\nbad line here\n')
        self.assertEqual(timing.read(self.path), (10, [('tree', 3)]))

    def test_no_file(self):
        os.unlink(self.path)
        self.assertEqual(timing.table(self.path), ['timing (s):'])
        open(self.path, 'w').close()


if __name__ == '__main__':
    unittest.main()
