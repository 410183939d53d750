# SPDX-License-Identifier: GPL-2.0
"""One injection of the windows sweep (Injector, the base of windows.Runner):
the interrupted context, the traced path of a variant, the prelude that
brings an outer NMI to an address, and the injection itself.
"""

import time

from gdbstub import LabError, Stuck, frame, regs_diff
from kcode import (CONTEXT_REGS, KERNEL_CS, KERNEL_DS, Layout, NMI_STATS_FIELDS, PT_REGS_GPRS,
                   PT_REGS_RIP, SAVED_FRAME, X86_EFLAGS_RF, disassemble_bytes, symbolize)
from scenario import Scenario, base_variant, expect_for, judge


class Injector:
    """One injection: the outer NMI stopped at an address, a second NMI
    injected there, and what happened judged (a Runner's base)."""

    def fmt(self, a):
        if a is None:
            return '?'
        return symbolize(a, self.symtab)

    def ffmt(self, fr):
        return '%s cs %#x rsp %#x' % (self.fmt(fr['rip']), fr['cs'], fr['rsp'])

    def live_layout(self, guest):
        start, size = self.syms['asm_exc_nmi']
        code = guest.kread(start, size)
        insns = disassemble_bytes(code, start)
        self.layout = Layout(insns, self.syms)
        st = {i.addr for i in self.static_insns}
        lv = {i.addr for i in insns}
        self.static_only = sorted(st - lv)
        self.live_only = sorted(lv - st)

    # -- counters --
    def counters(self, guest):
        st = guest.kread64(guest.pcpu0 + self.syms['nmi_stats'][0], len(NMI_STATS_FIELDS))
        c = dict(zip(NMI_STATS_FIELDS, st))
        c['nmi'] = int.from_bytes(guest.kread(guest.pcpu0 + self.syms['irq_stat'][0] +
                                              self.nmi_count_off, 4), 'little')
        return c

    # -- anchors: the interrupted context P0 --
    def anchor(self, guest, context, fresh=False):
        """Stop the guest in an outer context: kernel idle (default_idle_call)
        in the idle boot, else any user-mode stop, or any kernel-mode stop
        with interrupts enabled outside the NMI entry.  Unless fresh, the
        current stop is kept when it qualifies (after an injection the guest
        stands one instruction past the previous context)."""
        gdb = guest.gdb
        guest.set_bps(set())
        if context == 'kernel' and guest.boot_name == 'idle':
            guest.set_bps({self.syms['default_idle_call'][0]})
            if not gdb.cont(20):
                raise LabError('idle: default_idle_call not reached')
            guest.set_bps(set())
            r = gdb.regs()
            if (r['cs'] & 3) != 0:
                raise LabError('idle anchor not in kernel mode')
            return r
        if context == 'gap':
            # The first instruction of the SYSCALL entry: kernel mode with the
            # user's GS base and RSP (nmi_syscall_rsp_64 points RSP into the
            # NMI stack there, the CVE-2015-3291 setting).  Prefer such a stop.
            entry = self.syms['entry_SYSCALL_64'][0]
            guest.set_bps({entry})
            r = None
            for i in range(200):
                if not gdb.cont(20):
                    raise LabError('entry_SYSCALL_64 not reached')
                r = gdb.regs()
                nmi_stack = self.top is not None and \
                    self.top - 0x2000 <= r['rsp'] < self.top
                if nmi_stack or i >= 50:
                    break
                gdb.step()
            guest.set_bps(set())
            self.log('anchor gap: rsp %#x' % r['rsp'])
            return r
        want = 3 if context == 'user' else 0
        L = self.layout

        def fits(r):
            if (r['cs'] & 3) != want:
                return False
            if want == 0:
                return bool(r['eflags'] & 0x200) and not L.start <= r['rip'] < L.end
            return r['rip'] < 0x800000000000
        if not fresh:
            r = gdb.regs()
            if fits(r):
                return r
        for _ in range(400):
            gdb.run_for(0.02)
            r = gdb.regs()
            if fits(r):
                self.log('anchor %s: %s rsp %#x' % (context, self.fmt(r['rip']), r['rsp']))
                return r
        raise LabError('%s: no %s-mode stop found' % (guest.boot_name, context))

    # -- tracing the path of a variant --
    def trace(self, guest, variant):
        """Run the variant's prelude and record the asm_exc_nmi addresses of
        the path of interest, in order, until that path is left."""
        S = Scenario(self, guest)
        L = self.layout
        name, variant = variant, base_variant(variant)
        S.refresh()
        p0 = dict(S.regs)
        if not S.inject():
            raise LabError('%s: outer NMI not taken' % name)
        end_pred = self.prelude(S, variant, p0)
        order = []
        guest.set_bps(S.observers)
        deadline = time.monotonic() + 120
        while end_pred is None or not end_pred():
            if time.monotonic() > deadline:
                raise Stuck('trace %s did not end' % name)
            pc = S.pc
            if not L.start <= pc < L.end:
                raise LabError('trace %s left asm_exc_nmi at %s' % (variant, self.fmt(pc)))
            order.append(pc)
            ins = L.by_addr.get(pc)
            if ins is None:
                raise LabError('trace: %#x is not an instruction boundary' % pc)
            if pc == L.final and end_pred is None and \
                    frame(guest.kread64(S.regs['rsp'], 5))['rip'] == p0['rip']:
                break           # the outer's last IRETQ: finish() takes it
            if ins.is_call():
                # paranoid_entry returns with the registers pushed: no
                # stack pointer condition (nothing nests while tracing).
                S.run_until(S.at(pc + ins.size), [pc + ins.size], 'return from %s' % ins.text)
                continue
            if ins.is_jmp() and not L.start <= (ins.target or 0) < L.end:
                break           # the user path's exit: finish() takes it
            S.step()
        S.finish(p0)
        if S.problems:
            raise LabError('trace %s: %s' % (variant, '; '.join(S.problems)))
        return order

    # The traps of the hazard handler, in the order it takes them.
    TRAPS = ('exc_int3', 'exc_page_fault')

    def live_insn(self, guest, addr):
        """The instruction at addr as the running kernel has it."""
        insns = disassemble_bytes(guest.kread(addr, 16), addr)
        if not insns or insns[0].addr != addr:
            raise LabError('no instruction at %s' % self.fmt(addr))
        return insns[0]

    def trace_fastret(self, guest, variant):
        """The return of each trap the outer NMI's handler takes (TRAPS),
        by single steps from error_return's return to kernel mode
        (.Lerror_return_kernel, with the stack pointer at the trap's
        pt_regs) until the handler runs again at the trap frame's RIP and
        stack pointer.  -> [Insn] of the paths, in the order run (the
        return of the first exc_int3, then of the first exc_page_fault).
        Where the handler resumes, the registers must be those of the trap
        frame, as IRET would restore them (RF aside); differences go to
        self.return_problems[variant]."""
        S = Scenario(self, guest)
        S.refresh()
        p0 = dict(S.regs)
        if not S.inject():
            raise LabError('%s: outer NMI not taken' % variant)
        path = []
        for sym in self.TRAPS:
            entry = self.syms[sym][0]
            S.run_until(S.at(entry), [entry], '%s in the outer NMI\'s handler' % sym)
            regs = S.regs['rdi']
            S.run_until(S.at(self.fastret_at, regs), [self.fastret_at],
                        'the return of %s (%s)' % (sym, self.fmt(self.fastret_at)))
            back = frame(guest.kread64(regs + PT_REGS_RIP, 5))
            want = dict(zip(PT_REGS_GPRS, guest.kread64(regs, len(PT_REGS_GPRS))))
            want.update({'rip': back['rip'], 'rsp': back['rsp'], 'cs': back['cs'],
                         'eflags': back['rflags']})
            mine = []
            while not (S.pc == back['rip'] and S.regs['rsp'] == back['rsp']):
                if len(mine) >= 200:
                    raise Stuck('the return of %s did not reach %s in 200 steps' % (
                        sym, self.fmt(back['rip'])))
                ins = self.live_insn(guest, S.pc)
                if ins.is_iret():
                    raise LabError('%s returned with %s at %s: the return without IRET '
                                   'did not run' % (sym, ins.text, self.fmt(S.pc)))
                mine.append(ins)
                S.step()
            if not any(i.mnem.startswith('popf') for i in mine):
                raise LabError('the return of %s has no POPF: %s' % (
                    sym, ' '.join(self.fmt(i.addr) for i in mine)))
            # What IRET would have restored, but RF (POPF clears it).
            got = dict(S.regs)
            got['eflags'] = (got['eflags'] & ~X86_EFLAGS_RF) | (want['eflags'] & X86_EFLAGS_RF)
            bad = regs_diff(want, got, PT_REGS_GPRS + ('rip', 'rsp', 'cs', 'eflags'))
            if bad:
                # A verdict on the return itself, not a failure to trace it.
                self.return_problems.setdefault(variant, []).append(
                    'the return of %s without IRET (at %s) left registers unlike the trap '
                    'frame: %s' % (sym, self.fmt(back['rip']), ', '.join(bad)))
            self.log('%s: return of %s: %d instructions' % (variant, sym, len(mine)))
            path += mine
        S.finish(p0)
        if S.problems:
            raise LabError('trace %s: %s' % (variant, '; '.join(S.problems)))
        if len(S.deliveries) != 1:
            raise LabError('trace %s: %d NMIs taken' % (variant, len(S.deliveries)))
        return path

    def prelude(self, S, variant, p0):
        """Bring the outer NMI (just delivered, S at asm_exc_nmi) to where the
        variant's target path starts; returns the predicate that ends that path."""
        L = self.layout
        variant = base_variant(variant)
        if variant in ('kernel', 'kernel-gap', 'user', 'user-hz', 'kernel-int3', 'kernel-pf',
                       'user-int3', 'user-pf', 'user-fastret', 'kernel-fastret'):
            return None         # the path ends with the outer's return
        S.run_until(S.at(L.label1), [L.label1], 'label 1 (after the unmask knob)')
        if variant == 'nested-final':
            S.run_until(S.at(L.final), [L.final], 'nmi_final_iret')
        rsp1 = S.regs['rsp']
        pc1 = S.pc
        if not S.inject():
            raise Stuck('prelude: NMI at %s not taken (NMIs still masked?)' % self.fmt(pc1))
        if variant in ('nested', 'nested-final'):
            return S.at(pc1, rsp1)
        S.run_until(S.at(L.nmi_repeat), [L.nmi_repeat], 'nmi_repeat (the repeat pass)')
        if variant == 'repeat':
            return None
        rsp2 = S.regs['rsp']
        if not S.inject():
            raise Stuck('prelude: NMI at nmi_repeat not taken')
        return S.at(L.nmi_repeat, rsp2)

    # -- one injection --
    def inject_at(self, guest, variant, target, masked):
        """target: an address of asm_exc_nmi or a symbol name (trap windows)."""
        L = self.layout
        S = Scenario(self, guest)
        t0 = time.monotonic()
        S.refresh()
        p0 = dict(S.regs)
        c0 = self.counters(guest)
        rec = {'variant': variant, 'boot': guest.boot_name}
        addr = self.syms[target][0] if isinstance(target, str) else target
        rec['addr'] = addr
        rec['where'] = self.fmt(addr)
        exp = expect_for(variant, addr, L, self.knob, masked, fastret=self.fastret)
        rec['expect'] = exp.effect
        heres = []
        cpls = []
        try:
            if not S.inject():
                raise Stuck('outer NMI not taken at %s' % self.fmt(p0['rip']))
            outer = S.deliveries[0]
            if (outer['rip'], outer['cs'], outer['rsp'], outer['ss']) != \
                    (p0['rip'], p0['cs'], p0['rsp'], p0['ss']) or outer['rflags'] != p0['eflags']:
                S.problems.append('outer NMI frame %s does not match the interrupted context'
                                  % self.ffmt(outer))
            npre = len(S.deliveries)
            self.prelude(S, variant, p0)
            heres += [d['rip'] for d in S.deliveries[npre:]]
            cpls += [d['cs'] & 3 for d in S.deliveries[npre:]]
            if S.pc != addr:
                # The first hit of addr from here is the target (see variants).
                S.run_until(S.at(addr), [addr], self.fmt(addr))
            ra = dict(S.regs)
            sl0 = S.slots()
            heres.append(addr)
            cpls.append(ra['cs'] & 3)
            taken = S.inject()
            rec['taken'] = taken
            if taken:
                d = S.deliveries[-1]
                if (d['rip'], d['rsp'], d['cs']) != (addr, ra['rsp'], ra['cs']):
                    S.problems.append('NMI taken with frame %s, expected %s rsp %#x' % (
                        self.ffmt(d), self.fmt(addr), ra['rsp']))
                S.run_until(S.at(addr, ra['rsp']), [addr],
                            'return of the nested NMI to %s' % self.fmt(addr))
                bad = regs_diff(ra, S.regs, CONTEXT_REGS)
                if bad:
                    S.problems.append('registers after the nested NMI returned: %s' %
                                      ', '.join(bad))
                if exp.redirect is not None:
                    sl1 = S.slots()
                    redirected = (sl1['work']['rip'] == L.nmi_repeat and
                                  sl1['work']['rsp'] == self.top - SAVED_FRAME and
                                  sl1['work']['cs'] == KERNEL_CS and
                                  sl1['work']['ss'] == KERNEL_DS)
                    if exp.redirect and not redirected:
                        S.problems.append('working frame not redirected to nmi_repeat: %s'
                                          % self.ffmt(sl1['work']))
                    if exp.redirect and sl1['nested'] != sl0['nested'] + 1:
                        S.problems.append('nested slot %d -> %d, expected +1' % (
                            sl0['nested'], sl1['nested']))
                    if not exp.redirect and (sl1['work'] != sl0['work'] or
                                             sl1['nested'] != sl0['nested']):
                        S.problems.append('an ignored NMI changed the working frame or the '
                                          'nested count')
                    if sl1['saved'] != sl0['saved']:
                        S.problems.append('the nested NMI changed the saved frame: %s -> %s' % (
                            self.ffmt(sl0['saved']), self.ffmt(sl1['saved'])))
                    if base_variant(variant) in ('kernel', 'kernel-gap', 'repeat', 'kernel-int3',
                                   'kernel-pf') and \
                            sl1['saved'] != frame([p0['rip'], p0['cs'], p0['eflags'],
                                                   p0['rsp'], p0['ss']]):
                        S.problems.append('saved frame %s is not the interrupted context' %
                                          self.ffmt(sl1['saved']))
            rec['returns'] = S.finish(p0)
            if S.ist_ctx:
                S.problems.append('%d IST NMI(s) never reached their final IRETQ' %
                                  len(S.ist_ctx))
            sl = S.slots()
            if sl['flag'] or sl['nested'] or sl['repeats']:
                S.problems.append('stack slots left: flag %d nested %d repeats %d' % (
                    sl['flag'], sl['nested'], sl['repeats']))
            stuck = None
        except Stuck as e:
            stuck = str(e)
            S.problems.append('stuck: %s' % e)
        c1 = self.counters(guest)
        delta = {k: c1[k] - c0[k] for k in ('nmi', 'nested', 'repeats', 'latched')}
        delta_all = {k: c1[k] - c0[k] for k in c1 if k != 'longest_ns'}
        obs = {'deliveries': S.deliveries[1:], 'delta': delta, 'problems': S.problems,
               'heres': heres, 'here_cpl': cpls}
        ctx = {'outer_rip': p0['rip'], 'range': (L.start, L.end), 'fmt': self.fmt}
        reasons = judge(exp, obs, ctx)
        rec.update({'ok': not reasons, 'reasons': reasons, 'delta': delta_all,
                    'deliveries': [self.fmt(d['rip']) for d in S.deliveries[:16]],
                    'final_irets': [self.fmt(a) for a in S.final_irets[:16]],
                    'seconds': round(time.monotonic() - t0, 3), 'stuck': stuck,
                    'reboot': bool(stuck) or any('registers' in x or 'slots' in x
                                                 for x in reasons)})
        return rec

    @staticmethod
    def context_of(variant):
        variant = base_variant(variant)
        if variant == 'kernel-gap':
            return 'gap'
        return 'user' if variant.startswith('user') else 'kernel'
