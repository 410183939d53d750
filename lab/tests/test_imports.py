# SPDX-License-Identifier: GPL-2.0
"""The lab's imports only run downward: no module imports, at any depth of
its code, a module that imports it back (directly or through others)."""
import ast
import glob
import os
import unittest

LAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lab_imports(lab=LAB):
    """{module: set of lab modules it imports anywhere in its code}."""
    mods = {os.path.basename(p)[:-3]: p for p in glob.glob(os.path.join(lab, '*.py'))}
    out = {}
    for name, path in mods.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps.add(node.module.split('.')[0])
        out[name] = {d for d in deps if d in mods and d != name}
    return out


def cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(n, path):
        state[n] = 'open'
        for d in sorted(graph[n]):
            if state.get(d) == 'open':
                return path[path.index(d):] + [d]
            if d not in state:
                c = visit(d, path + [d])
                if c:
                    return c
        state[n] = 'done'
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n, [n])
            if c:
                return c
    return None


class ImportsTest(unittest.TestCase):
    def test_no_cycle(self):
        c = cycle(lab_imports())
        self.assertIsNone(c, 'import cycle: ' + ' -> '.join(c or []))

    def test_the_front_door_is_on_top_and_tally_at_the_bottom(self):
        g = lab_imports()
        self.assertFalse([m for m, d in g.items() if 'lab' in d])
        self.assertEqual(g['tally'], set())

    def test_cycle_finder(self):
        self.assertEqual(cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}), ['a', 'b', 'c', 'a'])
        self.assertIsNone(cycle({'a': {'b'}, 'b': set(), 'c': {'a', 'b'}}))


if __name__ == '__main__':
    unittest.main()
