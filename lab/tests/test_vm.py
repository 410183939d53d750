"""When the host's NMI storm runs (lab/vm.py)."""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import vm   # noqa: E402


class TestGates(unittest.TestCase):
    def test_no_storm_before_init(self):
        gate = threading.Event()
        on_line = vm.started_on_line(gate)
        on_line('LAB host_nmi=on')          # not a plan's start
        self.assertFalse(gate.is_set())
        on_line('LAB plan=ksft')
        self.assertTrue(gate.is_set())
        on_line('LAB host_nmi=off')         # stays open
        self.assertTrue(gate.is_set())

    def test_the_plan_opens_and_closes_its_storm(self):
        gate = threading.Event()
        on_line = vm.gate_on_line(gate)
        on_line('LAB plan=kvm')
        self.assertFalse(gate.is_set())
        on_line('LAB host_nmi=on')
        self.assertTrue(gate.is_set())
        on_line('LAB host_nmi=off')
        self.assertFalse(gate.is_set())


if __name__ == '__main__':
    unittest.main()
