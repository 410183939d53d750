# SPDX-License-Identifier: GPL-2.0
"""One front door: the Makefile runs the lab's Python only through lab.py,
and every job subcommand of lab.py reaches its module."""
import contextlib
import io
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import lab  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FrontDoorTest(unittest.TestCase):
    def test_makefile_calls_only_lab_py(self):
        with open(os.path.join(TOP, 'Makefile')) as f:
            recipes = [ln for ln in f if not ln.lstrip().startswith('#')]
        calls = re.findall(r'\$\(PY\) (\S+)', ''.join(recipes))
        self.assertTrue(calls)
        others = [c for c in calls if c not in ('$(LAB)/lab.py', '-m')]
        self.assertEqual(others, [])

    def test_jobs_reach_their_module(self):
        from unittest import mock
        for name, (mod, _) in lab.JOBS.items():
            with mock.patch.object(mod, 'main', return_value=7) as m:
                self.assertEqual(lab.main([name, '--x', 'y']), 7, name)
            m.assert_called_once_with(['--x', 'y'])
            out = io.StringIO()
            with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as e:
                lab.main([name, '--help'])
            self.assertEqual(e.exception.code, 0, name)
            self.assertNotIn('{windows,bench', out.getvalue(), name)   # the job's own help

    def test_unknown_subcommand_refused(self):
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit) as e:
            lab.main(['no-such-job'])
        self.assertEqual(e.exception.code, 2)


if __name__ == '__main__':
    unittest.main()
