"""lab/acpi_upgrade.py: the DMAR table and the early cpio the kernel's ACPI
table upgrade reads."""
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))

import acpi_upgrade as A  # noqa: E402

# QEMU 7.2's own DMAR for q35 -device intel-iommu,intremap=on (read from
# /sys/firmware/acpi/tables/DMAR in a guest): after the header, host
# address width 39, interrupt remapping, one DRHD at 0xfed90000 with the
# I/O APIC and the PCI devices of that machine in its scope, no HPET.
QEMU_DMAR_BODY = bytes.fromhex(
    '26 01 00 00 00 00 00 00 00 00 00 00'
    '00 00 48 00 00 00 00 00 00 00 d9 fe 00 00 00 00'
    '03 08 00 00 00 ff 00 00')


def scopes(table):
    """[(type, enumeration id, bus, dev, fn)] of the first DRHD."""
    drhd = table[48:]
    length = struct.unpack_from('<H', drhd, 2)[0]
    out, off = [], 16
    while off < length:
        kind, ln, _, enum, bus, dev, fn = struct.unpack_from('<BBHBBBB', drhd, off)
        out.append((kind, enum, bus, dev, fn))
        off += ln
    return out


def cpio_files(data):
    """{name: bytes} of a newc cpio."""
    out, off = {}, 0
    while True:
        head = data[off:off + 110]
        assert head[:6] == b'070701', head[:6]
        f = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        size, namesize = f[6], f[11]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        if name == 'TRAILER!!!':
            return out
        out[name] = data[off:off + size]
        off += size
        off += -off % 4


class TestDmar(unittest.TestCase):
    def test_checksum_and_length(self):
        t = A.dmar()
        self.assertEqual(sum(t) % 256, 0)
        self.assertEqual(struct.unpack_from('<I', t, 4)[0], len(t))

    def test_matches_what_the_kernel_replaces(self):
        t = A.dmar()
        # Signature, OEM ID and OEM table ID as QEMU's: the upgrade matches them.
        self.assertEqual(t[:4], b'DMAR')
        self.assertEqual(t[10:16], b'BOCHS ')
        self.assertEqual(t[16:24], b'BXPC    ')

    def test_qemu_unit_with_the_hpet_added(self):
        t = A.dmar()
        # Width and flags as QEMU's, the same unit, now for every PCI device.
        self.assertEqual(t[36:48], QEMU_DMAR_BODY[:12])
        self.assertEqual(t[56:64], QEMU_DMAR_BODY[20:28])
        self.assertEqual(t[52], A.DRHD_INCLUDE_PCI_ALL)
        self.assertEqual(scopes(t), [(3, 0, 0xff, 0, 0), (4, 0, 0xf0, 0x1f, 0)])
        self.assertEqual(scopes(A.dmar(hpet=False)), [(3, 0, 0xff, 0, 0)])
        self.assertEqual(A.hpet_sid(), 'f0:1f.0')


class TestCpio(unittest.TestCase):
    def test_round_trip(self):
        files = cpio_files(A.early_cpio([('dmar.aml', b'x' * 5), ('ssdt.aml', b'yz')]))
        self.assertEqual(files, {'kernel/firmware/acpi/dmar.aml': b'xxxxx',
                                 'kernel/firmware/acpi/ssdt.aml': b'yz'})

    def test_prepend_keeps_the_initramfs(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            src, dst = os.path.join(d, 'i.gz'), os.path.join(d, 'o.img')
            with open(src, 'wb') as f:
                f.write(b'\x1f\x8brest')
            A.prepend(src, dst, [('dmar.aml', A.dmar())])
            with open(dst, 'rb') as f:
                data = f.read()
            head = A.early_cpio([('dmar.aml', A.dmar())])
            self.assertEqual(len(head) % 512, 0)
            self.assertEqual(data, head + b'\x1f\x8brest')


if __name__ == '__main__':
    unittest.main()
