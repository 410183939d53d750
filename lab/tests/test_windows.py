# SPDX-License-Identifier: GPL-2.0
"""Unit tests of lab/windows.py's pure parts: disassembly, layout,
expected outcomes, verdicts, sampling and the gdb protocol helpers."""
import contextlib
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gdbstub  # noqa: E402
import kcode  # noqa: E402
import scenario  # noqa: E402
import windows  # noqa: E402

# objdump -d --no-show-raw-insn of asm_exc_nmi from a series build (static
# code, before the boot-time alternatives patching).
ASM_EXC_NMI = """ffffffff814013c0 <asm_exc_nmi>:
ffffffff814013c0:\tnop
ffffffff814013c1:\tnop
ffffffff814013c2:\tnop
ffffffff814013c3:\tcld
ffffffff814013c4:\tpush   %rdx
ffffffff814013c5:\ttestb  $0x3,0x10(%rsp)
ffffffff814013ca:\tje     ffffffff81401479 <asm_exc_nmi+0xb9>
ffffffff814013d0:\tswapgs
ffffffff814013d3:\tnop
ffffffff814013d4:\tnop
ffffffff814013d5:\tnop
ffffffff814013d6:\tjmp    ffffffff814013ea <asm_exc_nmi+0x2a>
ffffffff814013d8:\tmov    %cr3,%rdx
ffffffff814013db:\tnop
ffffffff814013dc:\tnop
ffffffff814013dd:\tnop
ffffffff814013de:\tnop
ffffffff814013df:\tnop
ffffffff814013e0:\tand    $0xffffffffffffe7ff,%rdx
ffffffff814013e7:\tmov    %rdx,%cr3
ffffffff814013ea:\tmov    %rsp,%rdx
ffffffff814013ed:\tmov    %gs:0x7ec2b423(%rip),%rsp        # 2c818 <pcpu_hot+0x18>
ffffffff814013f5:\tpush   0x28(%rdx)
ffffffff814013f8:\tpush   0x20(%rdx)
ffffffff814013fb:\tpush   0x18(%rdx)
ffffffff814013fe:\tpush   0x10(%rdx)
ffffffff81401401:\tpush   0x8(%rdx)
ffffffff81401404:\tpush   $0xffffffffffffffff
ffffffff81401406:\tpush   %rdi
ffffffff81401407:\tpush   %rsi
ffffffff81401408:\tpush   (%rdx)
ffffffff8140140a:\tpush   %rcx
ffffffff8140140b:\tpush   %rax
ffffffff8140140c:\tpush   %r8
ffffffff8140140e:\tpush   %r9
ffffffff81401410:\tpush   %r10
ffffffff81401412:\tpush   %r11
ffffffff81401414:\tpush   %rbx
ffffffff81401415:\tpush   %rbp
ffffffff81401416:\tpush   %r12
ffffffff81401418:\tpush   %r13
ffffffff8140141a:\tpush   %r14
ffffffff8140141c:\tpush   %r15
ffffffff8140141e:\txor    %esi,%esi
ffffffff81401420:\txor    %edx,%edx
ffffffff81401422:\txor    %ecx,%ecx
ffffffff81401424:\txor    %r8d,%r8d
ffffffff81401427:\txor    %r9d,%r9d
ffffffff8140142a:\txor    %r10d,%r10d
ffffffff8140142d:\txor    %r11d,%r11d
ffffffff81401430:\txor    %ebx,%ebx
ffffffff81401432:\txor    %ebp,%ebp
ffffffff81401434:\txor    %r12d,%r12d
ffffffff81401437:\txor    %r13d,%r13d
ffffffff8140143a:\txor    %r14d,%r14d
ffffffff8140143d:\txor    %r15d,%r15d
ffffffff81401440:\tjmp    ffffffff81401457 <asm_exc_nmi+0x97>
ffffffff81401442:\tmov    $0x48,%ecx
ffffffff81401447:\tmov    %gs:0x7ec1a6d1(%rip),%rdx        # 1bb20 <x86_spec_ctrl_current>
ffffffff8140144f:\tmov    %edx,%eax
ffffffff81401451:\tshr    $0x20,%rdx
ffffffff81401455:\twrmsr
ffffffff81401457:\tnop
ffffffff81401458:\tnop
ffffffff81401459:\tnop
ffffffff8140145a:\tnop
ffffffff8140145b:\tnop
ffffffff8140145c:\tnop
ffffffff8140145d:\tnop
ffffffff8140145e:\tnop
ffffffff8140145f:\tnop
ffffffff81401460:\tnop
ffffffff81401461:\tnop
ffffffff81401462:\tnop
ffffffff81401463:\tnop
ffffffff81401464:\tnop
ffffffff81401465:\tnop
ffffffff81401466:\tnop
ffffffff81401467:\tnop
ffffffff81401468:\tnop
ffffffff81401469:\tnop
ffffffff8140146a:\tnop
ffffffff8140146b:\tnop
ffffffff8140146c:\tmov    %rsp,%rdi
ffffffff8140146f:\tcall   ffffffff81383024 <exc_nmi>
ffffffff81401474:\tjmp    ffffffff81400ed0 <__irqentry_text_end>
ffffffff81401479:\tmov    0x8(%rsp),%rdx
ffffffff8140147e:\tsub    $0xffffffff814014e8,%rdx
ffffffff81401485:\tcmp    $0x2a,%rdx
ffffffff8140148c:\tjb     ffffffff814014be <asm_exc_nmi+0xfe>
ffffffff8140148e:\tcmpq   $0x0,-0x8(%rsp)
ffffffff81401494:\tjne    ffffffff814014a1 <asm_exc_nmi+0xe1>
ffffffff81401496:\tcmpq   $0xffffffff814015aa,0x8(%rsp)
ffffffff8140149f:\tjne    ffffffff814014c1 <asm_exc_nmi+0x101>
ffffffff814014a1:\tsub    $0x20,%rsp
ffffffff814014a5:\tlea    -0x50(%rsp),%rdx
ffffffff814014aa:\tpush   $0x18
ffffffff814014ac:\tpush   %rdx
ffffffff814014ad:\tpushf
ffffffff814014ae:\tpush   $0x10
ffffffff814014b0:\tpush   $0xffffffff814014e8
ffffffff814014b5:\tadd    $0x48,%rsp
ffffffff814014b9:\tincq   -0x10(%rsp)
ffffffff814014be:\tpop    %rdx
ffffffff814014bf:\tiretq
ffffffff814014c1:\tmov    (%rsp),%rdx
ffffffff814014c5:\tsub    $0x48,%rsp
ffffffff814014c9:\tpush   0x70(%rsp)
ffffffff814014cd:\tpush   0x70(%rsp)
ffffffff814014d1:\tpush   0x70(%rsp)
ffffffff814014d5:\tpush   0x70(%rsp)
ffffffff814014d9:\tpush   0x70(%rsp)
ffffffff814014dd:\tmovq   $0x1,0x68(%rsp)
ffffffff814014e6:\tjmp    ffffffff814014f6 <nmi_repeat+0xe>

ffffffff814014e8 <nmi_repeat>:
ffffffff814014e8:\tmovq   $0x1,0x68(%rsp)
ffffffff814014f1:\tincq   0x58(%rsp)
ffffffff814014f6:\tadd    $0x50,%rsp
ffffffff814014fa:\tpush   -0x30(%rsp)
ffffffff814014fe:\tpush   -0x30(%rsp)
ffffffff81401502:\tpush   -0x30(%rsp)
ffffffff81401506:\tpush   -0x30(%rsp)
ffffffff8140150a:\tpush   -0x30(%rsp)
ffffffff8140150e:\tsub    $0x28,%rsp

ffffffff81401512 <nmi_repeat_end>:
ffffffff81401512:\tcmpq   $0x0,0x50(%rsp)
ffffffff81401518:\tje     ffffffff8140152c <nmi_repeat_end+0x1a>
ffffffff8140151a:\tpush   $0x18
ffffffff8140151c:\tpush   %rsp
ffffffff8140151d:\taddq   $0x8,(%rsp)
ffffffff81401522:\tpushf
ffffffff81401523:\tpush   $0x10
ffffffff81401525:\tpush   $0xffffffff8140152c
ffffffff8140152a:\tiretq
ffffffff8140152c:\tpush   $0xffffffffffffffff
ffffffff8140152e:\tcall   ffffffff814010c0 <paranoid_entry>
ffffffff81401533:\tmov    %rsp,%rdi
ffffffff81401536:\tcall   ffffffff81383024 <exc_nmi>
ffffffff8140153b:\tjmp    ffffffff8140154d <nmi_repeat_end+0x3b>
ffffffff8140153d:\tmov    $0x48,%ecx
ffffffff81401542:\tmov    %r15,%rdx
ffffffff81401545:\tmov    %edx,%eax
ffffffff81401547:\tshr    $0x20,%rdx
ffffffff8140154b:\twrmsr
ffffffff8140154d:\tjmp    ffffffff81401576 <nmi_repeat_end+0x64>
ffffffff8140154f:\tbt     $0xc,%r14
ffffffff81401554:\tjae    ffffffff81401576 <nmi_repeat_end+0x64>
ffffffff81401556:\tjmp    ffffffff81401572 <nmi_repeat_end+0x60>
ffffffff81401558:\tmov    %r14,%r15
ffffffff8140155b:\tand    $0x7ff,%r15
ffffffff81401562:\tbtr    %r15,%gs:0x7ec2b3ab(%rip)        # 2c916 <cpu_tlbstate+0x16>
ffffffff8140156b:\tjb     ffffffff81401572 <nmi_repeat_end+0x60>
ffffffff8140156d:\tbts    $0x3f,%r14
ffffffff81401572:\tmov    %r14,%cr3
ffffffff81401576:\tjmp    ffffffff8140157f <nmi_repeat_end+0x6d>
ffffffff81401578:\twrgsbase %rbx
ffffffff8140157d:\tjmp    ffffffff81401586 <nmi_repeat_end+0x74>
ffffffff8140157f:\ttest   %ebx,%ebx
ffffffff81401581:\tjne    ffffffff81401586 <nmi_repeat_end+0x74>
ffffffff81401583:\tswapgs
ffffffff81401586:\tpop    %r15
ffffffff81401588:\tpop    %r14
ffffffff8140158a:\tpop    %r13
ffffffff8140158c:\tpop    %r12
ffffffff8140158e:\tpop    %rbp
ffffffff8140158f:\tpop    %rbx
ffffffff81401590:\tpop    %r11
ffffffff81401592:\tpop    %r10
ffffffff81401594:\tpop    %r9
ffffffff81401596:\tpop    %r8
ffffffff81401598:\tpop    %rax
ffffffff81401599:\tpop    %rcx
ffffffff8140159a:\tpop    %rdx
ffffffff8140159b:\tpop    %rsi
ffffffff8140159c:\tpop    %rdi
ffffffff8140159d:\tadd    $0x30,%rsp
ffffffff814015a1:\tmovq   $0x0,0x40(%rsp)

ffffffff814015aa <nmi_final_iret>:
ffffffff814015aa:\tiretq
"""

START = 0xffffffff814013c0
END = START + 0x1ec
SYMS = {
    'asm_exc_nmi': (START, 0x1ec),
    'nmi_repeat': (0xffffffff814014e8, None),
    'nmi_repeat_end': (0xffffffff81401512, None),
    'nmi_final_iret': (0xffffffff814015aa, None),
    'exc_nmi': (0xffffffff81383024, 0x150),
}


def layout():
    return kcode.Layout(kcode.parse_objdump(ASM_EXC_NMI, START, END), SYMS)


class ParseTest(unittest.TestCase):
    def test_nm(self):
        syms = kcode.parse_nm('ffffffff814013c0 00000000000001ec T asm_exc_nmi\n'
                          '000000000001b180 d nmi_stats\n'
                          '                 U undefined_thing\n'
                          'ffffffff814013c0 T asm_exc_nmi\n')
        self.assertEqual(syms['asm_exc_nmi'], (START, 0x1ec))
        self.assertEqual(syms['nmi_stats'], (0x1b180, None))
        self.assertNotIn('undefined_thing', syms)

    def test_objdump_vmlinux(self):
        insns = kcode.parse_objdump(ASM_EXC_NMI, START, END)
        self.assertEqual(insns[0].addr, START)
        self.assertEqual(insns[0].mnem, 'nop')
        self.assertEqual(insns[-1].addr, 0xffffffff814015aa)
        self.assertTrue(insns[-1].is_iret())
        self.assertEqual(insns[-1].size, 2)
        self.assertEqual(sum(i.size for i in insns), END - START)
        split = next(i for i in insns if i.is_jcc())
        self.assertEqual(split.addr, START + 0xa)
        self.assertEqual(split.target, 0xffffffff81401479)
        call = next(i for i in insns if i.is_call())
        self.assertEqual(call.target, 0xffffffff81383024)

    def test_objdump_binary(self):
        text = ('\nfoo.bin:     file format binary\n\nDisassembly of section .data:\n\n'
                'ffffffff814013c0 <.data>:\n'
                'ffffffff814013c0:\tnopl   0x0(%rax)\n'
                'ffffffff814013c3:\tcld\n'
                'ffffffff814013c4:\tje     0xffffffff81401479\n'
                'ffffffff814013c6:\tcall   0xffffffff81383024\n'
                'ffffffff814013cb:\tiretq\n')
        insns = kcode.parse_objdump(text, START, START + 0xd)
        self.assertEqual([i.size for i in insns], [3, 1, 2, 5, 2])
        self.assertEqual(insns[2].target, 0xffffffff81401479)
        self.assertTrue(insns[2].is_jcc())
        self.assertEqual(insns[3].target, 0xffffffff81383024)
        self.assertTrue(insns[4].ends_flow())

    def test_raw_bytes_and_continuations(self):
        text = ('ffffffff81401496:\t48 81 7c 24 08 aa 15 \tcmpq   $0xffffffff814015aa,0x8(%rsp)\n'
                'ffffffff8140149d:\t40 81 \n'
                'ffffffff8140149f:\t75 20                \tjne    ffffffff814014c1 <x+0x1>\n')
        insns = kcode.parse_objdump(text)
        self.assertEqual([i.addr for i in insns], [0xffffffff81401496, 0xffffffff8140149f])
        self.assertEqual(insns[1].target, 0xffffffff814014c1)

    def test_indirect_jump_has_no_target(self):
        self.assertIsNone(kcode.Insn(1, 'jmp    *%rax').target)
        self.assertIsNone(kcode.Insn(1, 'call   *0x10(%rip)').target)


class LayoutTest(unittest.TestCase):
    def setUp(self):
        self.L = layout()

    def test_labels(self):
        L = self.L
        self.assertEqual(L.split, START + 0xa)
        self.assertEqual(L.kernel, START + 0xb9)            # .Lnmi_from_kernel
        self.assertEqual(L.test1_jcc, START + 0xcc)         # jb .Lnmi_nested_out
        self.assertEqual(L.nested_out, START + 0xfe)
        self.assertEqual(L.test3_jcc, START + 0xdf)         # jne .Lnmi_first
        self.assertEqual(L.lnmi_nested, START + 0xe1)
        self.assertEqual(L.nested_iret, START + 0xff)
        self.assertEqual(L.lnmi_first, START + 0x101)
        self.assertEqual(L.knob_iret, 0xffffffff8140152a)
        self.assertEqual(L.label1, 0xffffffff8140152c)
        self.assertEqual(L.call_exc_nmi_user, START + 0xaf)

    def test_regions(self):
        L = self.L
        self.assertEqual(L.region(START), 'entry')
        self.assertEqual(L.region(START + 0xa), 'entry')
        self.assertEqual(L.region(START + 0x10), 'user')      # swapgs
        self.assertEqual(L.region(START + 0xb9), 'tests')
        self.assertEqual(L.region(START + 0xe1), 'nested')
        self.assertEqual(L.region(START + 0xff), 'nested')    # its iretq
        self.assertEqual(L.region(START + 0x101), 'first')
        self.assertEqual(L.region(0xffffffff814014e8), 'repeat')
        self.assertEqual(L.region(0xffffffff8140150e), 'repeat')
        self.assertEqual(L.region(0xffffffff81401512), 'knob')
        self.assertEqual(L.region(0xffffffff8140152a), 'knob')
        self.assertEqual(L.region(0xffffffff8140152c), 'run')
        self.assertEqual(L.region(0xffffffff814015a1), 'run')
        self.assertEqual(L.region(0xffffffff814015aa), 'final')

    def test_reachable(self):
        L = self.L
        live = L.live
        self.assertIn(START, live)
        self.assertIn(L.final, live)
        self.assertIn(L.nmi_repeat, live)
        # jmp over the CR3 switch, the IBRS wrmsr and the no-FSGSBASE test:
        # dead in this (unpatched) code.
        self.assertNotIn(0xffffffff814013d8, live)            # mov %cr3,%rdx
        self.assertNotIn(0xffffffff81401455, live)            # wrmsr (IBRS_ENTER)
        self.assertNotIn(0xffffffff81401578, live)            # wrgsbase
        self.assertIn(0xffffffff8140157f, live)               # test %ebx,%ebx
        # the user path ends with a jump out, the nested path with iretq
        self.assertNotIn(L.lnmi_first - 1, live - set(L.addresses()))

    def test_not_the_reworked_entry(self):
        syms = dict(SYMS)
        del syms['nmi_final_iret']
        with self.assertRaises(gdbstub.LabError):
            kcode.Layout(kcode.parse_objdump(ASM_EXC_NMI, START, END), syms)

    def test_reachable_small(self):
        insns = kcode.parse_objdump('1000:\tje     1004\n1002:\tjmp    1006\n'
                                '1004:\tnop\n1005:\tiretq\n1006:\tcall   1000\n'
                                '100b:\tud2\n100d:\tnop\n', 0x1000, 0x100e)
        self.assertEqual(kcode.reachable(insns, [0x1000]),
                         {0x1000, 0x1002, 0x1004, 0x1005, 0x1006, 0x100b})


class ExpectTest(unittest.TestCase):
    def setUp(self):
        self.L = layout()

    def test_kernel(self):
        L = self.L
        e = scenario.expect_for('kernel', START, L, knob=1, masked=True)
        self.assertEqual((e.effect, e.deliveries), ('latched', [L.label1]))
        self.assertEqual(e.d, {'nmi': 2, 'nested': 1, 'repeats': 1, 'latched': 0})
        e = scenario.expect_for('kernel', START, L, knob=0, masked=True)
        self.assertEqual((e.deliveries, e.d['nested']), (['kernel-ctx'], 0))
        e = scenario.expect_for('kernel', L.final, L, knob=1, masked=False)
        self.assertEqual((e.effect, e.deliveries, e.redirect), ('nested', ['here'], True))

    def test_repeat(self):
        L = self.L
        e = scenario.expect_for('repeat', L.nmi_repeat, L, 1, False)
        self.assertEqual((e.effect, e.redirect), ('ignored', False))
        self.assertEqual(e.d, {'nmi': 2, 'nested': 1, 'repeats': 1, 'latched': 0})
        e = scenario.expect_for('repeat', L.nmi_repeat_end, L, 1, False)
        self.assertEqual(e.effect, 'nested')
        self.assertEqual(e.d, {'nmi': 3, 'nested': 2, 'repeats': 2, 'latched': 0})

    def test_nested_variants(self):
        L = self.L
        self.assertEqual(scenario.expect_for('nested', START, L, 1, True).deliveries,
                         ['here', L.label1])
        self.assertEqual(scenario.expect_for('nested-final', START, L, 1, True).deliveries,
                         ['here', L.final])
        e = scenario.expect_for('nested-repeat', START, L, 1, True)
        self.assertEqual(e.deliveries, ['here', 'here', L.nmi_repeat])
        self.assertEqual(e.d['nested'], 1)

    def test_user(self):
        L = self.L
        self.assertEqual(scenario.expect_for('user', START, L, 1, True).d,
                         {'nmi': 2, 'nested': 0, 'repeats': 0, 'latched': 0})
        e = scenario.expect_for('user-hz', START, L, 1, True)
        self.assertEqual((e.effect, e.deliveries, e.d['latched']),
                         ('c-latch', ['kernel-outside'], 1))
        e = scenario.expect_for('user-hz', START + 0xb4, L, 1, False)
        self.assertEqual((e.effect, e.d['latched']), ('first', 0))
        self.assertEqual(scenario.expect_for('user-pf', 0, L, 1, False).deliveries, ['here'])

    def test_unknown_variant(self):
        with self.assertRaises(ValueError):
            scenario.expect_for('nope', START, self.L, 1, True)


def fmt(a):
    return hex(a)


class JudgeTest(unittest.TestCase):
    def setUp(self):
        self.L = layout()
        self.ctx = {'outer_rip': 0xffffffff81386740, 'range': (START, END), 'fmt': fmt}

    def obs(self, rips, delta, heres, cs=0x10, problems=()):
        return {'deliveries': [{'rip': r, 'cs': cs} for r in rips], 'delta': delta,
                'heres': heres, 'here_cpl': [0] * len(heres), 'problems': list(problems)}

    def test_nested_ok(self):
        L = self.L
        e = scenario.expect_for('kernel', L.final, L, 1, False)
        o = self.obs([L.final], {'nmi': 2, 'nested': 1, 'repeats': 1, 'latched': 0}, [L.final])
        self.assertEqual(scenario.judge(e, o, self.ctx), [])

    def test_latched_ok_and_wrong_place(self):
        L = self.L
        e = scenario.expect_for('kernel', START, L, 1, True)
        d = {'nmi': 2, 'nested': 1, 'repeats': 1, 'latched': 0}
        self.assertEqual(scenario.judge(e, self.obs([L.label1], d, [START]), self.ctx), [])
        r = scenario.judge(e, self.obs([START + 0x3], d, [START]), self.ctx)
        self.assertEqual(len(r), 1)
        self.assertIn('taken at', r[0])

    def test_lost_and_extra(self):
        L = self.L
        e = scenario.expect_for('kernel', L.final, L, 1, False)
        r = scenario.judge(e, self.obs([], {'nmi': 1, 'nested': 0, 'repeats': 0, 'latched': 0},
                                [L.final]), self.ctx)
        self.assertTrue(any('0 NMI deliveries' in x for x in r))
        self.assertTrue(any(x.startswith('nmi +1, expected +2') for x in r))
        r = scenario.judge(e, self.obs([L.final, L.final],
                                {'nmi': 3, 'nested': 2, 'repeats': 2, 'latched': 0},
                                [L.final]), self.ctx)
        self.assertTrue(any('2 NMI deliveries' in x for x in r))

    def test_problems_are_reasons(self):
        L = self.L
        e = scenario.expect_for('kernel', L.final, L, 1, False)
        o = self.obs([L.final], {'nmi': 2, 'nested': 1, 'repeats': 1, 'latched': 0}, [L.final],
                     problems=['registers after the nested NMI returned: rax 0x1 -> 0x2'])
        self.assertEqual(scenario.judge(e, o, self.ctx),
                         ['registers after the nested NMI returned: rax 0x1 -> 0x2'])

    def test_delivery_kinds(self):
        c = dict(self.ctx, here=0x1234)
        self.assertTrue(scenario.delivery_matches('here', {'rip': 0x1234, 'cs': 0x10}, c))
        self.assertFalse(scenario.delivery_matches('here', {'rip': 0x1234, 'cs': 0x33}, c))
        self.assertTrue(scenario.delivery_matches('user-ctx', {'rip': c['outer_rip'], 'cs': 0x33}, c))
        self.assertTrue(scenario.delivery_matches('kernel-ctx', {'rip': c['outer_rip'], 'cs': 0x10},
                                           c))
        self.assertTrue(scenario.delivery_matches('kernel-outside',
                                           {'rip': 0xffffffffa0013000, 'cs': 0x10}, c))
        self.assertFalse(scenario.delivery_matches('kernel-outside', {'rip': START + 4, 'cs': 0x10},
                                            c))
        self.assertTrue(scenario.delivery_matches(START, {'rip': START, 'cs': 0x10}, c))


class SampleTest(unittest.TestCase):
    def test_deterministic_spread(self):
        L = layout()
        cl = [(a, L.region(a)) for a in L.addresses() if a in L.live]
        s1 = scenario.sample_addresses(cl, 12)
        self.assertEqual(s1, scenario.sample_addresses(cl, 12))
        self.assertEqual(len(s1), 12)
        self.assertEqual(s1, sorted(s1))
        regions = {L.region(a) for a in s1}
        # every region of live code gets a pick before any region gets two
        self.assertEqual(regions, {r for _, r in cl})
        self.assertIn(L.final, s1)

    def test_small_and_large(self):
        cl = [(i, 'a' if i < 5 else 'b') for i in range(8)]
        self.assertEqual(scenario.sample_addresses(cl, 0), [])
        self.assertEqual(scenario.sample_addresses(cl, 2), [0, 5])
        self.assertEqual(scenario.sample_addresses(cl, 100), list(range(8)))

    def test_ends_first(self):
        cl = [(i, 'a') for i in range(9)]
        self.assertEqual(scenario.sample_addresses(cl, 3), [0, 4, 8])


class ProtocolTest(unittest.TestCase):
    XML = ('<?xml version="1.0"?><feature name="org.gnu.gdb.i386.core">'
           '<reg name="rax" bitsize="64" type="int64" regnum="0"/>'
           '<reg name="rip" bitsize="64" type="code_ptr"/>'
           '<!-- <reg name="ss_base" bitsize="64" type="int64"/> -->'
           '<reg name="eflags" bitsize="32" type="x64_eflags"/>'
           '<reg name="st0" bitsize="80" type="i387_ext"/>'
           '<reg name="cr2" bitsize="64" type="int64"/></feature>')

    def test_regs_xml(self):
        regs = gdbstub.parse_regs_xml([self.XML])
        self.assertEqual(regs, [('rax', 64), ('rip', 64), ('eflags', 32), ('st0', 80),
                                ('cr2', 64)])

    def test_decode_g(self):
        regs = gdbstub.parse_regs_xml([self.XML])
        data = ((1).to_bytes(8, 'little') + (0xffffffff814013c0).to_bytes(8, 'little') +
                (0x246).to_bytes(4, 'little') + bytes(10) + (0xdead).to_bytes(8, 'little'))
        g = gdbstub.decode_g(data.hex(), regs)
        self.assertEqual(g, {'rax': 1, 'rip': START, 'eflags': 0x246, 'cr2': 0xdead})

    def test_stop(self):
        self.assertEqual(gdbstub.parse_stop('T05thread:p01.01;'), ('signal', 5))
        self.assertEqual(gdbstub.parse_stop('S02'), ('signal', 2))
        self.assertEqual(gdbstub.parse_stop('W00'), ('exited', 0))
        self.assertEqual(gdbstub.parse_stop('OK')[0], 'other')


# The same code as the running kernel has it after the alternatives
# patching: UNTRAIN_RET's second site (15 bytes, nothing to patch in) is a
# JMP over INT3 fill.
def live_text(stuff=False):
    lines = []
    for ln in ASM_EXC_NMI.splitlines():
        a = int(ln.split(':')[0], 16) if ln[:1] == 'f' and ':' in ln and '<' not in \
            ln.split(':')[0] else None
        if a is not None and 0xffffffff81401457 <= a < 0xffffffff8140146c:
            continue
        lines.append(ln)
        if a == 0xffffffff81401455:
            lines += ['ffffffff81401457:\tnop', 'ffffffff81401458:\tnopl   0x0(%rax,%rax,1)']
            if stuff:
                lines += ['ffffffff8140145d:\txor    %eax,%eax',
                          'ffffffff8140145f:\tbts    $0x3f,%rax',
                          'ffffffff81401464:\tmov    %rax,%gs:0x7ec2b3e4(%rip)']
            else:
                lines += ['ffffffff8140145d:\tjmp    ffffffff8140146c <asm_exc_nmi+0xac>']
                lines += ['%x:\tint3' % x for x in range(0xffffffff8140145f,
                                                         0xffffffff8140146c)]
    return '\n'.join(lines) + '\n'


def live_layout(stuff=False):
    return kcode.Layout(kcode.parse_objdump(live_text(stuff), START, END), SYMS)


KERNEL_IBRS = 7 * 32 + 12
PCID = 4 * 32 + 17
PTI = 7 * 32 + 11


def alt(addr, length, feature, repl_len, flags=0):
    return kcode.AltSite(addr, length, feature, flags, 0xffffffff81dceb00, repl_len)


# The alternative sites of the fixture (from .altinstructions of that build).
SITES = [alt(START, 3, 9 * 32 + 20, 3), alt(START + 0x16, 2, PTI, 0),
         alt(START + 0x80, 2, KERNEL_IBRS, 0), alt(START + 0x98, 5, 11 * 32 + 15, 5),
         alt(START + 0x9d, 15, 11 * 32 + 19, 15), alt(0xffffffff8140153b, 2, KERNEL_IBRS, 0),
         alt(0xffffffff8140154d, 2, PTI, 0), alt(0xffffffff81401556, 2, PCID, 0),
         alt(0xffffffff81401576, 2, 9 * 32 + 0, 0)]


class AltTest(unittest.TestCase):
    def test_parse_altinstructions(self):
        base = 0xffffffff81dca4c8
        # instr at base + 0 - 0x989108, repl at base + 4 + 0x4640
        blob = kcode.ALT_INSTR.pack(-0x989108, 0x4640, KERNEL_IBRS, 2, 0) + \
            kcode.ALT_INSTR.pack(-0x989108, 0x4640, PCID | (kcode.ALT_FLAG_NOT << 16), 5, 5) + b'\0'
        s = kcode.parse_altinstructions(blob, base)
        self.assertEqual(len(s), 2)
        self.assertEqual((s[0].addr, s[0].len, s[0].feature, s[0].flags, s[0].repl_len),
                         (base - 0x989108, 2, KERNEL_IBRS, 0, 0))
        self.assertEqual(s[0].repl, base + 4 + 0x4640)
        self.assertEqual(s[0].end, base - 0x989106)
        self.assertEqual((s[1].addr, s[1].feature, s[1].flags),
                         (base + 14 - 0x989108, PCID, kcode.ALT_FLAG_NOT))

    def test_elf_sections(self):
        import struct
        names = b'\0.text\0.altinstructions\0.shstrtab\0'
        shoff = 0x40 + len(names)
        sh = [(0, 0, 0, 0, 0, 0), (1, 1, 6, 0xffffffff81000000, 0x1000, 0x20),
              (7, 1, 2, 0xffffffff81dca4c8, 0x2000, 0x1c), (24, 3, 0, 0, 0x40, len(names))]
        hdr = bytearray(0x40)
        hdr[:6] = b'\x7fELF\x02\x01'
        struct.pack_into('<Q', hdr, 0x28, shoff)
        struct.pack_into('<HHH', hdr, 0x3a, 64, len(sh), 3)
        data = bytes(hdr) + names + b''.join(
            struct.pack('<IIQQQQ', *x) + bytes(24) for x in sh)
        secs = kcode.elf_sections(data)
        self.assertEqual(secs['.altinstructions'], (0xffffffff81dca4c8, 0x2000, 0x1c))
        self.assertEqual(secs['.text'][0], 0xffffffff81000000)
        with self.assertRaises(gdbstub.LabError):
            kcode.elf_sections(b'\x7fELF\x01' + bytes(100))

    def test_feature_gates(self):
        insns = kcode.parse_objdump(ASM_EXC_NMI, START, END)
        gates = {(s.addr, t) for s, t in kcode.feature_gates(SITES, insns)}
        self.assertEqual(gates, {(START + 0x16, START + 0x2a), (START + 0x80, START + 0x97),
                                 (0xffffffff8140153b, 0xffffffff8140154d),
                                 (0xffffffff8140154d, 0xffffffff81401576),
                                 (0xffffffff81401556, 0xffffffff81401572),
                                 (0xffffffff81401576, 0xffffffff8140157f)})
        # ALT_NOT, or a replacement with code: not a gate.
        self.assertEqual(kcode.feature_gates([alt(START + 0x80, 2, KERNEL_IBRS, 0, flags=1),
                                          alt(START + 0x80, 2, KERNEL_IBRS, 2)], insns), [])

    def test_call_thunk(self):
        # retbleed=stuff: the user path calls exc_nmi's accounting thunk.
        text = ASM_EXC_NMI.replace('ffffffff8140146f:\tcall   ffffffff81383024 <exc_nmi>',
                                   'ffffffff8140146f:\tcall   ffffffff8138301b')
        L = kcode.Layout(kcode.parse_objdump(text, START, END), SYMS)
        self.assertEqual(L.call_exc_nmi_user, START + 0xaf)
        text = ASM_EXC_NMI.replace('ffffffff8140146f:\tcall   ffffffff81383024 <exc_nmi>',
                                   'ffffffff8140146f:\tcall   ffffffff81383000')
        self.assertIsNone(kcode.Layout(kcode.parse_objdump(text, START, END), SYMS).call_exc_nmi_user)


class ExclusionTest(unittest.TestCase):
    UNREACHABLE = {KERNEL_IBRS: 'no IBRS', PCID: 'no PCID'}

    def setUp(self):
        self.insns = kcode.parse_objdump(ASM_EXC_NMI, START, END)
        self.gates = kcode.feature_gates(SITES, self.insns)

    def run_ex(self, layouts, unreachable=None):
        dead = set()
        for L in layouts:
            dead |= set(L.addresses())
        for L in layouts:
            dead -= L.live
        ex = kcode.exclusions(dead, layouts, self.gates,
                          self.UNREACHABLE if unreachable is None else unreachable, hex)
        return dead, ex

    def test_padding(self):
        L = live_layout()
        self.assertEqual(kcode.padding_of(L, 0xffffffff8140145f).addr, 0xffffffff8140145d)
        self.assertEqual(kcode.padding_of(L, 0xffffffff8140146b).addr, 0xffffffff8140145d)
        self.assertIsNone(kcode.padding_of(L, 0xffffffff8140145d))       # the jmp itself
        self.assertIsNone(kcode.padding_of(L, START + 0x82))             # IBRS code, not int3
        # int3 that the jump before it does not skip is not padding
        insns = kcode.parse_objdump('1000:\tjmp    1002\n1002:\tint3\n1003:\tnop\n', 0x1000, 0x1004)
        lay = type('L', (), {})()
        lay.insns, lay.by_addr = insns, {i.addr: i for i in insns}
        self.assertIsNone(kcode.padding_of(lay, 0x1002))

    def test_default_boots(self):
        dead, ex = self.run_ex([live_layout()])
        pad = set(range(0xffffffff8140145f, 0xffffffff8140146c))
        ibrs = {START + 0x82, START + 0x87, START + 0x8f, START + 0x91, START + 0x95,
                0xffffffff8140153d, 0xffffffff81401542, 0xffffffff81401545,
                0xffffffff81401547, 0xffffffff8140154b}
        pcid = {0xffffffff81401558, 0xffffffff8140155b, 0xffffffff81401562,
                0xffffffff8140156b, 0xffffffff8140156d}
        self.assertEqual(set(ex), pad | ibrs | pcid)
        self.assertIn('int3 fill', ex[0xffffffff81401460])
        self.assertIn('X86_FEATURE_KERNEL_IBRS', ex[START + 0x82])
        self.assertIn('no IBRS', ex[START + 0x82])
        self.assertIn('X86_FEATURE_PCID', ex[0xffffffff81401562])
        # The PTI code (CR3 switches) and the FSGSBASE exit stay: pti=on
        # (and a CPU with FSGSBASE) make them live, so they are not excluded.
        self.assertIn(START + 0x18, dead - set(ex))                   # mov %cr3,%rdx
        self.assertIn(0xffffffff81401578, dead - set(ex))             # wrgsbase
        self.assertNotIn(0xffffffff8140157f, dead)                    # test %ebx,%ebx: live

    def test_stuff_boot_makes_fill_live(self):
        dead, ex = self.run_ex([live_layout(), live_layout(stuff=True)])
        self.assertNotIn(0xffffffff8140145f, dead)     # bts in the stuff boot
        self.assertNotIn(0xffffffff81401464, dead)     # mov %rax,%gs:... there
        self.assertIn(0xffffffff81401460, ex)          # int3 in one, mid-insn in the other
        self.assertIn('int3 fill', ex[0xffffffff81401460])

    def test_feature_qemu_offers(self):
        _dead, ex = self.run_ex([live_layout()], unreachable={KERNEL_IBRS: 'no IBRS'})
        self.assertIn(START + 0x82, ex)
        self.assertNotIn(0xffffffff81401562, ex)       # PCID: not shown unreachable

    def test_gate_opened_in_some_boot(self):
        # A boot whose code lacks the jump (feature set) runs the body, so
        # an uncovered body address is not explained by that feature.
        L = live_layout()
        text = live_text().replace('ffffffff81401440:\tjmp    ffffffff81401457 '
                                   '<asm_exc_nmi+0x97>', 'ffffffff81401440:\txchg   %ax,%ax')
        L2 = kcode.Layout(kcode.parse_objdump(text, START, END), SYMS)
        self.assertIn(START + 0x82, L2.live)
        ex = kcode.exclusions({START + 0x82}, [L, L2], self.gates, self.UNREACHABLE, hex)
        self.assertEqual(ex, {})

    def test_unreachable_features(self):
        def probe(cpu, props):
            self.assertEqual(cpu, 'max,-smap')
            return {p: p == 'pcid' and self.pcid for p in props}, [
                "TCG doesn't support requested feature: CPUID.07H:EDX.spec-ctrl [bit 26]"]
        self.pcid = False
        out, notes = kcode.unreachable_features('max,-smap', probe)
        self.assertEqual(set(out), {KERNEL_IBRS, PCID})
        self.assertTrue(any('spec-ctrl=off ibrs=off' in n and 'bit 26' in n for n in notes))
        self.pcid = True
        out, notes = kcode.unreachable_features('max,-smap', probe)
        self.assertEqual(set(out), {KERNEL_IBRS})
        self.assertTrue(any(n.startswith('QEMU offers pcid') for n in notes))

        def broken(cpu, props):
            raise OSError('no qemu')
        out, notes = kcode.unreachable_features('max', broken)
        self.assertEqual(out, {})
        self.assertIn('probe failed', notes[0])


class SummaryTest(unittest.TestCase):
    def rec(self, variant, addr, ok=True):
        return {'variant': variant, 'addr': addr, 'ok': ok}

    def test_rows(self):
        vstats = {'kernel': {'path': 3, 'todo': 3}, 'user': {'path': 5, 'todo': 2},
                  'kernel-int3': {'path': 1, 'todo': 1}}
        res = [self.rec('kernel', 1), self.rec('kernel', 2), self.rec('kernel', 3, False),
               self.rec('user', 4), self.rec('user', 5), self.rec('kernel-int3', 9),
               {'variant': 'hazard', 'addr': None, 'ok': False}]
        rows = scenario.variant_summary(vstats, res)
        self.assertEqual(rows, [('kernel', 3, 3, 1, 3), ('user', 2, 2, 0, 5),
                                ('kernel-int3', 1, 1, 0, 1), ('hazard', 0, 0, 1, 0)])
        req = scenario.required_summary(rows, ['kernel', 'user', 'kernel-int3', 'kernel-pf',
                                        'user-int3'])
        self.assertEqual([q[0] for q in req], [w for w, _ in scenario.REQUIRED])
        kern, user, int3, pf = req
        self.assertEqual(kern[1:], (['kernel'], 3, 3, 1, False))     # a failure
        self.assertEqual(user[1:], (['user'], 2, 2, 0, True))
        self.assertEqual(int3[1:], (['kernel-int3', 'user-int3'], 1, 1, 0, False))  # not run
        self.assertEqual(pf[1:], (['kernel-pf'], 0, 0, 0, False))

    def test_complete_and_uncovered(self):
        rows = [('kernel', 2, 3, 0, 3), ('kernel-gap/pti', 4, 4, 0, 4)]
        req = scenario.required_summary(rows, ['kernel', 'kernel-gap/pti'])
        self.assertEqual(req[0][1:], (['kernel', 'kernel-gap/pti'], 6, 7, 0, False))
        rows[0] = ('kernel', 3, 3, 0, 3)
        self.assertTrue(scenario.required_summary(rows, ['kernel', 'kernel-gap/pti'])[0][5])
        # a variant whose trace failed has nothing to cover: incomplete
        self.assertFalse(scenario.required_summary([('kernel', 0, 0, 1, 0)], ['kernel'])[0][5])


class MiscTest(unittest.TestCase):
    def test_symbolize(self):
        tab = sorted([(START, 'asm_exc_nmi'), (0xffffffff814014e8, 'nmi_repeat')])
        self.assertEqual(kcode.symbolize(START, tab), 'asm_exc_nmi')
        self.assertEqual(kcode.symbolize(START + 0xb9, tab), 'asm_exc_nmi+0xb9')
        self.assertEqual(kcode.symbolize(0xffffffff814014f1, tab), 'nmi_repeat+0x9')
        self.assertEqual(kcode.symbolize(0x401000, tab), '0x401000')

    def test_regs_diff(self):
        a = {'rax': 1, 'rbx': 2, 'cr2': 3}
        b = {'rax': 1, 'rbx': 5, 'cr2': 3}
        self.assertEqual(gdbstub.regs_diff(a, b, ('rax', 'rbx', 'cr2', 'rcx')), ['rbx 0x2 -> 0x5'])

    def test_frame(self):
        self.assertEqual(gdbstub.frame([1, 0x10, 0x2, 0x3, 0x18]),
                         {'rip': 1, 'cs': 0x10, 'rflags': 2, 'rsp': 3, 'ss': 0x18})

    def test_problem_list(self):
        p = scenario.ProblemList()
        for i in range(30):
            p.append('same')
            p.append('m%d' % i)
        self.assertEqual(p[0], 'same')
        self.assertEqual(len(p), 12)



# objdump -d --no-show-raw-insn of error_return with the return without IRET
# in NMI context (the DEBUG_ENTRY_ASSERT_IRQS_OFF prologue left out).
ERROR_RETURN = """ffffffff8140144d:\ttestb  $0x3,0x88(%rsp)
ffffffff81401455:\tje     ffffffff8140145c <error_return+0x1c>
ffffffff81401457:\tjmp    ffffffff81400f70 <__irqentry_text_end>
ffffffff8140145c:\ttestl  $0xf00000,%gs:0x7ec2bbe1(%rip)        # 2d048 <pcpu_hot+0x8>
ffffffff81401467:\tje     ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff8140146d:\tnopl   0x0(%rax,%rax,1)
ffffffff81401472:\tcmpb   $0x0,0xa08397(%rip)        # ffffffff81e09810 <nmi_trap_iret>
ffffffff81401479:\tjne    ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff8140147f:\ttestl  $0x100,0x90(%rsp)
ffffffff8140148a:\tjne    ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff81401490:\ttestl  $0x10000,0x90(%rsp)
ffffffff8140149b:\tje     ffffffff814014ab <error_return+0x6b>
ffffffff8140149d:\ttestb  $0xaa,%gs:0x7ec1a5db(%rip)        # 1ba80 <cpu_dr7>
ffffffff814014a5:\tjne    ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff814014ab:\tcmpw   $0x10,0x88(%rsp)
ffffffff814014b4:\tjne    ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff814014ba:\tmov    %ss,%eax
ffffffff814014bc:\tcmp    %ax,0xa0(%rsp)
ffffffff814014c4:\tjne    ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff814014ca:\tmov    0x98(%rsp),%rax
ffffffff814014d2:\tlea    0xa8(%rsp),%rcx
ffffffff814014da:\tcmp    %rcx,%rax
ffffffff814014dd:\tjb     ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff814014e3:\tmov    0x80(%rsp),%rcx
ffffffff814014eb:\tmov    %rcx,-0x8(%rax)
ffffffff814014ef:\tmov    0x90(%rsp),%rcx
ffffffff814014f7:\tmov    %rcx,-0x10(%rax)
ffffffff814014fb:\tsub    $0x10,%rax
ffffffff814014ff:\tmov    %rax,0x78(%rsp)
ffffffff81401504:\tpop    %r15
ffffffff81401506:\tpop    %r14
ffffffff81401508:\tpop    %rdi
ffffffff81401509:\tpop    %rsp
ffffffff8140150a:\tpopf
ffffffff8140150b:\tjmp    ffffffff813da530 <__x86_return_thunk>
"""
ER_START, ER_END = 0xffffffff8140144d, 0xffffffff81401510
LERR = 0xffffffff8140145c

# The same in a kernel without it: the CS test jumps straight out.
ERROR_RETURN_BASE = """ffffffff8140144d:\ttestb  $0x3,0x88(%rsp)
ffffffff81401455:\tje     ffffffff8140103c <restore_regs_and_return_to_kernel>
ffffffff81401457:\tjmp    ffffffff81400f70 <__irqentry_text_end>
"""


class FastRetCodeTest(unittest.TestCase):
    def test_entry(self):
        insns = kcode.parse_objdump(ERROR_RETURN, ER_START, ER_END)
        self.assertEqual(kcode.fastret_entry(insns), LERR)

    def test_gate(self):
        # The feature gate is the NOP after the NMI test's conditional jump.
        insns = kcode.parse_objdump(ERROR_RETURN, ER_START, ER_END)
        self.assertEqual(kcode.fastret_gate(insns, LERR), 0xffffffff8140146d)
        self.assertIsNone(kcode.fastret_gate([], LERR))
        base = kcode.parse_objdump(ERROR_RETURN_BASE, ER_START, ER_START + 0xf)
        self.assertIsNone(kcode.fastret_entry(base))
        self.assertIsNone(kcode.fastret_entry([]))

    def test_regions(self):
        insns = kcode.parse_objdump(ERROR_RETURN, ER_START, ER_END)
        # As run with RF clear: the cpu_dr7 test skipped; then the thunk.
        path = [i for i in insns if i.addr >= LERR and i.addr not in (0xffffffff8140149d,
                                                                      0xffffffff814014a5)]
        path.append(kcode.Insn(0xffffffff813da530, 'ret'))
        reg = dict(kcode.fastret_regions(path))
        self.assertEqual(reg[LERR], 'checks')
        self.assertEqual(reg[0xffffffff814014dd], 'checks')       # jb: the last test
        self.assertEqual(reg[0xffffffff814014e3], 'copy')
        self.assertEqual(reg[0xffffffff814014ff], 'copy')
        self.assertEqual(reg[0xffffffff81401504], 'pops')
        self.assertEqual(reg[0xffffffff81401509], 'pops')         # pop %rsp
        self.assertEqual(reg[0xffffffff8140150a], 'popf')
        self.assertEqual(reg[0xffffffff8140150b], 'ret')
        self.assertEqual(reg[0xffffffff813da530], 'ret')
        # Two returns run one after the other: each has its parts.
        self.assertEqual(kcode.fastret_regions(path + path), kcode.fastret_regions(path) * 2)
        # The sample takes one of each part first.
        pick = scenario.sample_addresses(kcode.fastret_regions(path), 5)
        self.assertEqual(pick, sorted([LERR, 0xffffffff814014e3, 0xffffffff81401504,
                                       0xffffffff8140150a, 0xffffffff8140150b]))


class TrapReturnExpectTest(unittest.TestCase):
    """Expectations with traps in NMI context returning without IRET
    (fastret) and with IRET (nmi_trap_iret=1 or a kernel without it)."""

    def setUp(self):
        self.L = layout()

    def exp(self, variant, knob, masked, fastret):
        e = scenario.expect_for(variant, LERR, self.L, knob, masked, fastret=fastret)
        return e.effect, e.deliveries, e.d

    def test_user_outer_held_until_user_mode(self):
        for v in ('user-hz', 'user-int3', 'user-pf', 'user-fastret', 'user-fastret/pti'):
            self.assertEqual(self.exp(v, 1, True, True),
                             ('latched', ['user-ctx'],
                              {'nmi': 2, 'nested': 0, 'repeats': 0, 'latched': 0}), v)

    def test_kernel_outer_held_until_the_final_iret(self):
        for v in ('kernel-int3', 'kernel-pf', 'kernel-fastret'):
            self.assertEqual(self.exp(v, 0, True, True),
                             ('latched', ['kernel-ctx'],
                              {'nmi': 2, 'nested': 0, 'repeats': 0, 'latched': 0}), v)
            # The unmask knob on: NMIs unmasked before the handler, nested.
            e = scenario.expect_for(v, LERR, self.L, 1, False, fastret=True)
            self.assertEqual((e.effect, e.deliveries, e.redirect), ('nested', ['here'], True))
            self.assertEqual((e.d['nested'], e.d['repeats']), (1, 1))

    def test_with_iret_as_before(self):
        self.assertEqual(self.exp('user-int3', 1, True, False),
                         ('c-latch', ['kernel-outside'],
                          {'nmi': 2, 'nested': 0, 'repeats': 0, 'latched': 1}))
        self.assertEqual(self.exp('user-pf', 1, False, False)[:2], ('c-latch', ['here']))
        self.assertEqual(self.exp('user-hz', 1, False, False)[:2], ('first', ['here']))
        self.assertEqual(self.exp('kernel-int3', 0, True, False),
                         ('latched', ['kernel-outside'],
                          {'nmi': 2, 'nested': 1, 'repeats': 1, 'latched': 0}))
        # The default is the old expectation.
        e = scenario.expect_for('user-int3', LERR, self.L, 1, True)
        self.assertEqual(e.effect, 'c-latch')

    def test_judge_latched_until_user_mode(self):
        e = scenario.expect_for('user-fastret', LERR, self.L, 1, True, fastret=True)
        ctx = {'outer_rip': 0x401cc5, 'range': (START, END), 'fmt': fmt}
        obs = {'deliveries': [{'rip': 0x401cc5, 'cs': 0x33}],
               'delta': {'nmi': 2, 'nested': 0, 'repeats': 0, 'latched': 0},
               'heres': [LERR], 'here_cpl': [0], 'problems': []}
        self.assertEqual(scenario.judge(e, obs, ctx), [])
        # What the IRET after the trap would do: taken in the handler, latched.
        obs['deliveries'] = [{'rip': 0xffffffff81383100, 'cs': 0x10}]
        obs['delta'] = dict(obs['delta'], latched=1)
        self.assertEqual(len(scenario.judge(e, obs, ctx)), 2)


class FakeGuest:
    """Kernel memory of a guest, as a dict of bytes."""

    def __init__(self, mem):
        self.mem = dict(mem)
        self.unmask_boot = None
        self.writes = []

    def kread(self, va, n):
        return bytes(self.mem.get(va + i, 0) for i in range(n))

    def kread64(self, va, count=1):
        d = self.kread(va, 8 * count)
        return [int.from_bytes(d[i:i + 8], 'little') for i in range(0, len(d), 8)]

    def kwrite(self, va, data):
        self.writes.append((va, bytes(data)))
        for i, b in enumerate(data):
            self.mem[va + i] = b


class Args:
    sample = 0
    trap_iret = False
    verbose = False


class RunnerTest(unittest.TestCase):
    TRAP_IRET = 0xffffffff81e09810
    TOP = 0xfffffe0000010000

    def runner(self, fastret_at=LERR, sample=0):
        args = Args()
        args.sample = sample
        r = windows.Runner(args)
        r.syms = dict(SYMS, nmi_trap_iret=(self.TRAP_IRET, 1), exc_int3=(0xffffffff813cccce, 0xae),
                      exc_page_fault=(0xffffffff813cd000, 0x100))
        r.symtab = sorted([(START, 'asm_exc_nmi'), (ER_START - 0x4d, 'error_return')])
        r.layout = layout()
        r.fastret_at = fastret_at
        r.top = self.TOP
        r.windows, r.selected = {}, set()
        return r

    def test_trap_return_read_from_the_guest(self):
        r = self.runner()
        g = FakeGuest({self.TRAP_IRET: 0})
        self.assertTrue(r.trap_return(g))
        self.assertIn('without IRET (nmi_trap_iret=0)', r.describe_trap_return(g))
        g.mem[self.TRAP_IRET] = 1
        self.assertFalse(r.trap_return(g))
        self.assertIn('with IRET (nmi_trap_iret=1)', r.describe_trap_return(g))
        r = self.runner(fastret_at=None)
        self.assertFalse(r.trap_return(g))
        self.assertIn('no nmi_trap_iret', r.describe_trap_return(g))

    def test_unmask_knob_per_variant(self):
        r = self.runner()
        slot = self.TOP - kcode.SLOT_UNMASK
        g = FakeGuest({slot: 1})
        r.set_unmask(g, 'kernel-fastret')
        self.assertEqual((r.knob, g.kread64(slot)[0], g.unmask_boot), (0, 0, 1))
        r.set_unmask(g, 'user-fastret/pti')
        self.assertEqual((r.knob, g.kread64(slot)[0]), (1, 1))
        r.set_unmask(g, 'kernel-fastret/stuff')
        r.set_unmask(g, None)
        self.assertEqual((r.knob, g.kread64(slot)[0]), (1, 1))
        self.assertEqual(len(g.writes), 4)

    def test_trap_windows_masked(self):
        r = self.runner()
        cases = {  # variant: (masked with IRET, without), knob on
            'user-int3': (True, True), 'user-pf': (False, True),
            'kernel-int3': (False, False), 'kernel-pf': (False, False)}
        for v, (with_iret, without) in cases.items():
            sym = 'exc_int3' if v.endswith('int3') else 'exc_page_fault'
            r.knob = 1
            for fastret, want in ((False, with_iret), (True, without)):
                r.fastret = fastret
                self.assertEqual(r.targets(None, v), ([sym], {sym: want}), (v, fastret))
        r.knob = 0
        r.fastret = True
        self.assertEqual(r.targets(None, 'kernel-pf')[1], {'exc_page_fault': True})
        r.fastret = False
        self.assertEqual(r.targets(None, 'kernel-pf')[1], {'exc_page_fault': False})
        self.assertEqual(r.targets(None, 'kernel-int3')[1], {'exc_int3': True})

    def test_user_hz_cut(self):
        r = self.runner()
        L = r.layout
        order = [START, START + 0xa, START + 0x10, L.call_exc_nmi_user, L.call_exc_nmi_user + 5]
        r.trace = lambda guest, variant: order
        r.knob = 1
        r.fastret = False
        seen, masked = r.targets(None, 'user-hz')
        self.assertEqual(seen, order)
        self.assertEqual([masked[x] for x in order], [True, True, True, True, False])
        r.fastret = True
        seen, masked = r.targets(None, 'user-hz/pti')
        self.assertTrue(all(masked[x] for x in order))

    def fastret_path(self):
        insns = kcode.parse_objdump(ERROR_RETURN, ER_START, ER_END)
        return [i for i in insns if i.addr >= LERR]

    def test_fastret_targets_and_sample(self):
        r = self.runner(sample=12)
        path = self.fastret_path()
        r.trace_fastret = lambda guest, variant: path + path
        r.fastret, r.knob = True, 1
        with contextlib.redirect_stdout(io.StringIO()) as out:
            seen, masked = r.targets(None, 'user-fastret')
        self.assertIn('user-fastret: sample of 6 of the %d instructions' % len(path),
                      out.getvalue())
        self.assertEqual(seen, [i.addr for i in path])
        self.assertTrue(all(masked.values()))
        self.assertEqual(len(r.traces['user-fastret']), 2 * len(path))
        picked = r.selected & set(seen)
        self.assertEqual(len(picked), 6)
        for a in (LERR, 0xffffffff814014e3, 0xffffffff81401504, 0xffffffff8140150a,
                  0xffffffff8140150b):
            self.assertIn(a, picked)
        self.assertTrue(all(r.windows[a]['live'] for a in seen))
        # The same path again (kernel-fastret, with the knob off): nothing
        # more sampled, masked throughout.
        r.knob = 0
        seen2, masked2 = r.targets(None, 'kernel-fastret')
        self.assertEqual((seen2, r.selected & set(seen)), (seen, picked))
        self.assertTrue(all(masked2.values()))
        # The kernel outer with the knob on: NMIs already unmasked.
        r.knob = 1
        self.assertFalse(any(r.targets(None, 'kernel-fastret')[1].values()))

    def test_fastret_full_sweep_takes_all(self):
        r = self.runner(sample=0)
        path = self.fastret_path()
        r.trace_fastret = lambda guest, variant: path
        r.fastret, r.knob = True, 1
        seen, _ = r.targets(None, 'user-fastret')
        self.assertEqual(r.selected, set(seen))

    def test_variants(self):
        r = self.runner()
        self.assertIn('user-fastret', r.variants_of('hazard'))
        self.assertIn('kernel-fastret', r.variants_of('hazard'))
        self.assertIn('user-fastret/pti', r.variants_of('hazard-pti'))
        self.assertEqual(r.variants_of('hazard-stuff'),
                         ['user-fastret/stuff', 'kernel-fastret/stuff', 'user-int3/stuff',
                          'user-pf/stuff'])
        self.assertEqual(windows.Runner.context_of('user-fastret/pti'), 'user')
        self.assertEqual(windows.Runner.context_of('kernel-fastret'), 'kernel')


class NmiCountOffsetTest(unittest.TestCase):
    # exc_nmi's inc_irq_stat(__nmi_count), twice (user and kernel path)
    KVM_INTEL = ("ffffffff813cc197:\tincl   %gs:0x7ec60da6(%rip)        # 2cf44 <irq_stat+0x4>\n"
                 "ffffffff813cc2a0:\tincl   %gs:0x7ec60c9d(%rip)        # 2cf44 <irq_stat+0x4>\n")
    PLAIN = "ffffffff813cc197:\tincl   %gs:0x7ec60da6(%rip)        # 2cf40 <irq_stat>\n"

    def test_offset_follows_the_layout(self):
        self.assertEqual(kcode.nmi_count_offset(self.KVM_INTEL), 4)
        self.assertEqual(kcode.nmi_count_offset(self.PLAIN), 0)

    def test_none_or_ambiguous_is_an_error(self):
        with self.assertRaises(gdbstub.LabError):
            kcode.nmi_count_offset("ffffffff813cc197:\tincl   %gs:0x10(%rip)  # 1b1a0 <nmi_stats>\n")
        with self.assertRaises(gdbstub.LabError):
            kcode.nmi_count_offset(self.KVM_INTEL + self.PLAIN)


if __name__ == '__main__':
    unittest.main()
