"""ACPI tables for the kernel's table upgrade from the initrd
(CONFIG_ACPI_TABLE_UPGRADE, Documentation/admin-guide/acpi/initrd_table_override.rst):
an uncompressed cpio with kernel/firmware/acpi/<name>.aml, put in front of
the initramfs.

The table made here is the DMAR of QEMU's q35 machine with
"-device intel-iommu,intremap=on" plus what QEMU leaves out: a device scope
for the HPET, so that the kernel puts the HPET behind the remapping unit
(QEMU itself still delivers the HPET's messages without remapping them).
The kernel replaces a table whose signature, OEM ID and OEM table ID match.
"""

import struct

# What QEMU 7.2 puts in its tables (hw/i386/acpi-build.c, build_dmar_q35()).
OEM_ID = b'BOCHS '
OEM_TABLE_ID = b'BXPC    '
IOMMU_BASE = 0xfed90000        # Q35_HOST_BRIDGE_IOMMU_ADDR
IOAPIC_ID = 0
IOAPIC_SOURCE = (0xff, 0, 0)   # Q35_PSEUDO_BUS_PLATFORM, Q35_PSEUDO_DEVFN_IOAPIC
# The HPET: block 0 (the HPET table's sequence number), with the source ID
# Intel chipsets give it (F0:1F.0).
HPET_ID = 0
HPET_SOURCE = (0xf0, 0x1f, 0)

SCOPE_IOAPIC = 3
SCOPE_HPET = 4
DRHD_INCLUDE_PCI_ALL = 0x01
DMAR_INTR_REMAP = 0x01


def hpet_sid():
    """The HPET's source ID as the kernel's remapping table in debugfs
    prints it: "bus:dev.fn"."""
    return '%02x:%02x.%x' % HPET_SOURCE


def checksum(data):
    """The byte that makes @data sum to 0 modulo 256."""
    return (-sum(data)) & 0xff


def scope(kind, enum_id, source):
    bus, dev, fn = source
    return struct.pack('<BBHBBBB', kind, 8, 0, enum_id, bus, dev, fn)


def dmar(hpet=True, host_width=39):
    """DMAR bytes: one remapping unit for every PCI device (INCLUDE_PCI_ALL,
    so that the devices QEMU was given do not matter), the I/O APIC and,
    with @hpet, the HPET in its scope."""
    scopes = scope(SCOPE_IOAPIC, IOAPIC_ID, IOAPIC_SOURCE)
    if hpet:
        scopes += scope(SCOPE_HPET, HPET_ID, HPET_SOURCE)
    drhd = struct.pack('<HHBBHQ', 0, 16 + len(scopes), DRHD_INCLUDE_PCI_ALL, 0, 0,
                       IOMMU_BASE) + scopes
    body = struct.pack('<BB10x', host_width - 1, DMAR_INTR_REMAP) + drhd
    length = 36 + len(body)
    # OEM revision 2: newer than QEMU's 1.
    head = struct.pack('<4sIBB6s8sI4sI', b'DMAR', length, 1, 0, OEM_ID, OEM_TABLE_ID, 2,
                       b'LAB ', 1)
    table = bytearray(head + body)
    table[9] = checksum(table)
    return bytes(table)


def _cpio_entry(name, data, ino):
    name_b = name.encode() + b'\0'
    head = b'070701' + b''.join(b'%08X' % v for v in (
        ino, 0o100644 if data is not None else 0, 0, 0, 1, 0,
        len(data or b''), 0, 0, 0, 0, len(name_b), 0))
    out = head + name_b
    out += b'\0' * (-len(out) % 4)
    out += data or b''
    out += b'\0' * (-len(out) % 4)
    return out


def early_cpio(tables):
    """An uncompressed newc cpio with kernel/firmware/acpi/<name> for each
    (name, bytes) of @tables."""
    out = b''
    for i, (name, data) in enumerate(tables, 1):
        out += _cpio_entry('kernel/firmware/acpi/' + name, data, i)
    out += _cpio_entry('TRAILER!!!', None, 0)
    return out + b'\0' * (-len(out) % 512)


def prepend(initrd, dst, tables):
    """Write @dst: the early cpio of @tables, then the initramfs @initrd."""
    with open(initrd, 'rb') as f:
        rest = f.read()
    with open(dst, 'wb') as f:
        f.write(early_cpio(tables) + rest)
