# SPDX-License-Identifier: GPL-2.0
"""QEMU's gdbstub spoken directly: the GDB remote protocol over the unix
socket, the registers it reports, and the lab's two failures that are not
verdicts (LabError, Stuck).  Used by lab/windows.py and lab/bench.py.
"""

import re
import socket

import vm


class LabError(Exception):
    """The test could not be carried out (infrastructure, not a verdict)."""


class Stuck(Exception):
    """The guest did not reach an expected point in time."""


def parse_regs_xml(docs):
    """[(name, bits)] from QEMU's target description (a list of XML texts in
    document order; comments are ignored)."""
    regs = []
    for doc in docs:
        doc = re.sub(r'<!--.*?-->', '', doc, flags=re.S)
        for m in re.finditer(r'<reg\s+([^>]*)/?>', doc):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if 'name' in attrs and 'bitsize' in attrs:
                regs.append((attrs['name'], int(attrs['bitsize'])))
    return regs


def decode_g(hexstr, layout):
    """'g' packet payload -> {name: int} for registers up to 64 bits."""
    data = bytes.fromhex(hexstr)
    out = {}
    off = 0
    for name, bits in layout:
        n = bits // 8
        if off + n > len(data):
            break
        if bits <= 64:
            out[name] = int.from_bytes(data[off:off + n], 'little')
        off += n
    return out


def parse_stop(reply):
    """Stop reply -> ('signal', n) / ('exited', n) / ('other', text)."""
    if reply[:1] in ('T', 'S') and len(reply) >= 3:
        return ('signal', int(reply[1:3], 16))
    if reply[:1] in ('W', 'X'):
        return ('exited', int(reply[1:3] or '0', 16))
    return ('other', reply)


def frame(vals):
    return {'rip': vals[0], 'cs': vals[1], 'rflags': vals[2], 'rsp': vals[3], 'ss': vals[4]}


def regs_diff(a, b, names):
    return ['%s %#x -> %#x' % (n, a[n], b[n]) for n in names
            if n in a and n in b and a[n] != b[n]]


class Gdb:
    def __init__(self, path, timeout=30.0, running=False):
        """running: the VM runs (QEMU without -S): stop it first; QEMU drops
        the byte that stops it and sends a stop reply."""
        try:
            self.sock = vm.connect_unix(path, timeout)
        except OSError:
            raise LabError('gdbstub %s: no connection' % path)
        self.buf = b''
        self.packets = 0
        if running:
            self.interrupt()
            kind = parse_stop(self.recv(30))
            if kind[0] != 'signal':
                raise LabError('gdbstub: no stop reply (%s)' % (kind,))
        self.cmd('qSupported:xmlRegisters=i386')
        self.layout = parse_regs_xml(self._xml_docs('target.xml', set()))
        if not any(n == 'rip' for n, _ in self.layout):
            raise LabError('gdbstub: no x86-64 register description')
        self.phys = self.cmd('Qqemu.PhyMemMode:1') == 'OK'
        self._sstep = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _xml_docs(self, name, seen):
        if name in seen:
            return []
        seen.add(name)
        doc = ''
        while True:
            r = self.cmd('qXfer:features:read:%s:%x,800' % (name, len(doc)))
            if not r or r[0] not in 'ml':
                raise LabError('qXfer %s: %r' % (name, r[:40]))
            doc += r[1:]
            if r[0] == 'l':
                break
        docs = [doc]
        for inc in re.findall(r'<xi:include\s+href="([^"]+)"', re.sub(r'<!--.*?-->', '', doc,
                                                                       flags=re.S)):
            docs += self._xml_docs(inc, seen)
        return docs

    def _raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise LabError('gdbstub: %s (QEMU gone?)' % e)

    def interrupt(self):
        self._raw(b'\x03')

    def send(self, payload):
        data = payload.encode('latin1')
        self._raw(b'$' + data + b'#%02x' % (sum(data) & 0xff))
        self.packets += 1

    def recv(self, timeout=60.0):
        self.sock.settimeout(timeout)
        while True:
            i = self.buf.find(b'$')
            if i >= 0:
                j = self.buf.find(b'#', i)
                if j >= 0 and len(self.buf) >= j + 3:
                    data = self.buf[i + 1:j]
                    self.buf = self.buf[j + 3:]
                    self._raw(b'+')
                    return data.decode('latin1')
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise Stuck('gdbstub: no reply in %.0f s' % timeout)
            except OSError as e:
                raise LabError('gdbstub: %s (QEMU gone?)' % e)
            if not d:
                raise LabError('gdbstub: connection closed (QEMU gone?)')
            self.buf += d

    def cmd(self, payload, timeout=60.0):
        self.send(payload)
        return self.recv(timeout)

    def monitor(self, line):
        self.send('qRcmd,' + line.encode().hex())
        out = ''
        while True:
            r = self.recv()
            if r.startswith('O') and r != 'OK':
                out += bytes.fromhex(r[1:]).decode('latin1', 'replace')
                continue
            if r != 'OK':
                raise LabError('monitor %s: %s' % (line, r))
            return out

    def sstep(self, flags):
        if self._sstep != flags:
            if self.cmd('Qqemu.sstep=%#x' % flags) != 'OK':
                raise LabError('Qqemu.sstep not supported')
            self._sstep = flags

    def regs(self):
        return decode_g(self.cmd('g'), self.layout)

    def read(self, addr, n):
        """Memory in the gdbstub's current mode (physical when self.phys)."""
        out = b''
        while n > 0:
            k = min(n, 0x400)
            r = self.cmd('m%x,%x' % (addr, k))
            if not r or r[0] == 'E':
                raise LabError('read %#x: %s' % (addr, r))
            out += bytes.fromhex(r)
            addr += k
            n -= k
        return out

    def write(self, addr, data):
        r = self.cmd('M%x,%x:%s' % (addr, len(data), data.hex()))
        if r != 'OK':
            raise LabError('write %#x: %s' % (addr, r))

    def bp(self, addr, on=True):
        r = self.cmd('%s0,%x,1' % ('Z' if on else 'z', addr))
        if r != 'OK':
            raise LabError('breakpoint %#x: %s' % (addr, r))

    def step(self):
        kind = parse_stop(self.cmd('s', 30))
        if kind[0] != 'signal':
            raise LabError('step: %s' % (kind,))

    def cont(self, timeout):
        """Continue; True when stopped by a breakpoint, False on timeout."""
        self.send('c')
        try:
            r = self.recv(timeout)
        except Stuck:
            self.interrupt()
            r = self.recv(30)
            kind = parse_stop(r)
            if kind == ('signal', 5):       # hit just as we interrupted
                return True
            return False
        kind = parse_stop(r)
        if kind[0] == 'exited':
            raise LabError('guest exited (%s)' % r)
        return True

    def run_for(self, seconds):
        """Let the guest run for a while, then stop it."""
        self.send('c')
        try:
            r = self.recv(seconds)
            return parse_stop(r)
        except Stuck:
            self.interrupt()
            return parse_stop(self.recv(30))
