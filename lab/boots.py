# SPDX-License-Identifier: GPL-2.0
"""Boots of the NMI lab: where things are (LAB, TOP, BUILD, lab.conf), the
kernels and initramfs of a variant, one QEMU boot and what came out of it
(Boot), and the torture boot.  Below every job module (check.py,
hpet_check.py, kvm_check.py, bench.py, series_check.py); above vm.py,
results.py and scan.py only.
"""

import os
import re
import subprocess
import sys

LAB = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(LAB)
BUILD = os.path.join(TOP, 'build')
sys.path.insert(0, LAB)

import results  # noqa: E402
import scan     # noqa: E402
import vm       # noqa: E402


def conf():
    out = {}
    with open(os.path.join(LAB, 'lab.conf')) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#') and '=' in line:
                k, v = line.split('=', 1)
                out[k] = v.strip('"')
    return out


VARIANTS = os.path.join(LAB, 'config', 'variants')


def variants(path=VARIANTS):
    """lab/config/variants: {name: {'arch', 'config', 'qemu', 'cpu'}}; config
    is a list of fragment names (lab/config/<name>.config, 'series-only')
    or a make target (a str); qemu and cpu are None for a kernel never booted."""
    out = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0].startswith('#'):
                continue
            if len(w) != 5:
                raise ValueError('%s: %r: want name arch config qemu cpu' % (path, line))
            name, arch, config, qemu, cpu = w
            # A make target ends in "config" (allnoconfig, i386_defconfig);
            # a fragment's name never does.
            out[name] = {'arch': arch,
                         'config': config if config.endswith('config') else config.split(','),
                         'qemu': None if qemu == '-' else qemu, 'cpu': None if cpu == '-' else cpu}
    return out


def variant_row(name):
    """name's row of lab/config/variants (a name not there: series's)."""
    v = variants()
    return v.get(name, v['series'])


def bzimage(variant):
    return os.path.join(BUILD, 'out-' + variant, 'arch/x86/boot/bzImage')


def initrd(variant):
    return os.path.join(BUILD, 'initramfs-%s.cpio.gz' % variant)


def ensure_variant(variant):
    """Build the variant's kernel unless it is there, and its initramfs."""
    if variant.startswith('i386'):
        # 32-bit: the caller builds the kernel (ARCH=i386 kbuild.sh); the
        # initramfs holds lab/initramfs/init32.c, not the 64-bit busybox.
        subprocess.run([os.path.join(LAB, 'mkinitramfs-i386.sh'), initrd(variant),
                        os.path.join(BUILD, 'out-' + variant)], check=True)
        return
    if variant != 'series' and not os.path.exists(bzimage(variant)):
        print('lab: building the %s kernel' % variant, flush=True)
        subprocess.run([os.path.join(LAB, 'kbuild.sh'), variant], check=True)
    # Always: it takes seconds, and plans or selftests may have changed.
    subprocess.run([os.path.join(LAB, 'mkinitramfs.sh'), initrd(variant),
                    os.path.join(BUILD, 'out-' + variant),
                    os.path.join(BUILD, 'ksft')], check=True)


class Boot:
    """One VM run and what came out of it."""

    def __init__(self, name, summary, outdir, allow=(), window=None):
        self.name = name
        self.summary = summary
        self.outdir = outdir
        self.results = results.parse_file(os.path.join(outdir, 'results.txt'))
        self.findings = scan.scan_file(os.path.join(outdir, 'console.log'), allow, window)

    @property
    def status(self):
        return self.summary['status']

    def completed(self):
        """The plan ran to its end: verdict reached the exit port and the
        results channel has its end marker."""
        return self.status in ('pass', 'fail') and self.results.ended

    def console_findings(self):
        return scan.failing(self.findings)


def spec(kernel, initrd, plan, out, variant='series', cpus=None, mem=None, **kw):
    """A vm.BootSpec with lab.conf's machine (VM_CPUS, VM_MEM) and the QEMU
    binary and -cpu of the variant's row of lab/config/variants, unless given."""
    c = conf()
    row = variant_row(variant)
    kw['qemu'] = kw.get('qemu') or row['qemu'] or vm.QEMU
    kw['cpu'] = kw.get('cpu') or row['cpu'] or vm.CPU
    return vm.BootSpec(kernel=kernel, initrd=initrd, plan=plan, out=out,
                       cpus=int(cpus or c.get('VM_CPUS', 4)), mem=int(mem or c.get('VM_MEM', 1024)),
                       **kw)


def boot(variant, plan, name, append=(), nmi_rate=0.0, timeout=600, allow=(),
         cpus=None, quiet=False, qemu_args=(), qemu=None, cpu=None, nmi_gate=False,
         window=None):
    """One boot.  allow: console patterns that are not findings (only between
    the window's (start, end) markers when given); qemu, cpu: another QEMU
    binary and -cpu than the variant's row of lab/config/variants;
    nmi_gate: the guest switches the host's NMI storm on and off."""
    ensure_variant(variant)
    outdir = os.path.join(BUILD, 'runs', name)
    summary = vm.run(spec(bzimage(variant), initrd(variant), plan, outdir, variant, cpus=cpus,
                          timeout=timeout, nmi_rate=nmi_rate, append=list(append),
                          qemu_args=list(qemu_args), quiet=quiet, qemu=qemu, cpu=cpu,
                          nmi_gate=nmi_gate))
    return Boot(name, summary, outdir, allow, window)


# The genuine phase of a torture boot (lib-torture.sh genuine_phase): host
# NMIs once the test is unloaded, each a genuine unknown NMI that the
# kernel must report.  Its console lines are allowed between its markers.
GENUINE_WINDOW = (r'lab: genuine NMIs on', r'lab: genuine NMIs off')
GENUINE_RATE = 1.0      # host NMIs per second: under printk's rate limit


def torture_boot(variant, name, params, genuine_secs=0, append=(), nmi_rate=0.0,
                 quiet=False):
    """One torture plan boot; with genuine_secs, the genuine phase after it
    (the host's NMIs then come only while the guest asks for them)."""
    secs = int(re.search(r'duration=(\d+)', params).group(1))
    if genuine_secs:
        if nmi_rate:
            raise ValueError('a genuine phase takes the host NMIs for itself')
        append = list(append) + ['lab.genuine_secs=%d' % genuine_secs]
        kw = dict(nmi_rate=GENUINE_RATE, nmi_gate=True, allow=scan.HOST_NMI_ALLOW,
                  window=GENUINE_WINDOW)
    else:
        kw = dict(nmi_rate=nmi_rate)
    return boot(variant, 'torture', name, append=['lab.torture=' + params] + list(append),
                timeout=secs + genuine_secs + 400, quiet=quiet, **kw)
