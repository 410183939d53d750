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


class TestBootSpec(unittest.TestCase):
    def test_command_line_gives_the_spec(self):
        spec = vm.parse_args(['--kernel', 'bz', '--initrd', 'rd', '--plan', 'kvm', '--out', 'o',
                              '--append', 'a=1', '--append=b', '--qemu-arg=-icount',
                              '--nmi-rate', '200', '--nmi-gate', '--cpus', '2', '--quiet'])
        self.assertEqual(spec, vm.BootSpec('bz', 'rd', 'kvm', 'o', append=['a=1', 'b'],
                                           qemu_args=['-icount'], nmi_rate=200.0,
                                           nmi_gate=True, cpus=2, quiet=True))

    def test_every_field_has_an_option(self):
        import dataclasses
        fields = {f.name for f in dataclasses.fields(vm.BootSpec)}
        self.assertEqual(set(vars(vm.parse_args(['--kernel', 'k', '--initrd', 'i', '--plan',
                                                 'p', '--out', 'o']))), fields)

    def test_qemu_command(self):
        cmd = vm.qemu_command(vm.BootSpec('bz', 'rd', 'smoke', 'o', append=['x=1'], gdb=True,
                                          qemu_args=['-device', 'hpet']), 'o')
        self.assertEqual(cmd[:5], [vm.QEMU, '-accel', 'tcg', '-cpu', vm.CPU])
        self.assertIn('lab.plan=smoke x=1', cmd[cmd.index('-append') + 1])
        self.assertEqual(cmd[-2:], ['-device', 'hpet'])
        self.assertIn('-S', cmd)


if __name__ == '__main__':
    unittest.main()
