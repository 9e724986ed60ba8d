#!/usr/bin/env python3
"""Structure checks CI runs on every crate's src/ (see docs/architecture.md):

* no module cycles: inside a crate, no top-level module imports (via `crate::…`) a module that
  imports it back, directly or through others;
* no function over MAX_FN_LINES lines outside tests (`#[cfg(test)]` modules, tests/, benches/,
  examples/ and fuzz/ are not checked).

Exits 1 and lists the offenders when a check fails. A heuristic reader of Rust, not a parser:
comments and string literals are stripped before braces are counted.
"""
import os
import re
import sys

MAX_FN_LINES = 80
FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')


def code_lines(text):
    """Source lines before the first `#[cfg(test)] mod`, with comments and literals blanked."""
    test_mod = re.search(r'#\[cfg\(test\)\]\s*\n\s*(pub(\([^)]*\))?\s+)?mod\s', text)
    if test_mod:
        text = text[:test_mod.start()]
    out = []
    for line in text.split('\n'):
        line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
        line = re.sub(r"'(\\.|[^'\\])'", "''", line)
        out.append(line.split('//')[0])
    return out


def long_functions(path):
    lines = code_lines(open(path).read())
    found = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            for ch in lines[j]:
                if ch == '{':
                    depth, started = depth + 1, True
                elif ch == '}':
                    depth -= 1
            if (started and depth == 0) or (not started and lines[j].rstrip().endswith(';')):
                break
            j += 1
        if j - i + 1 > MAX_FN_LINES:
            found.append(f'{path}:{i + 1} fn {m.group(6)} is {j - i + 1} lines')
    return found


def module_graph(src):
    graph = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'):
                continue
            path = os.path.join(dirpath, f)
            top = os.path.relpath(path, src).split('/')[0].removesuffix('.rs')
            if top in ('lib', 'main'):
                continue
            text = '\n'.join(code_lines(open(path).read()))
            deps = set(re.findall(r'crate::(\w+)', text))
            for group in re.findall(r'use crate::\{([^}]*)\}', text):
                deps.update(p.strip().split('::')[0] for p in group.split(',') if p.strip())
            graph.setdefault(top, set()).update(d for d in deps if d != top)
    return graph


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else 'crates'
    problems = []
    for crate in sorted(os.listdir(root)):
        src = os.path.join(root, crate, 'src')
        if not os.path.isdir(src):
            continue
        for comp in cycles(module_graph(src)):
            problems.append(f'{crate}: module cycle {" -> ".join(comp)}')
        for dirpath, _, files in os.walk(src):
            for f in sorted(files):
                if f.endswith('.rs'):
                    problems.extend(long_functions(os.path.join(dirpath, f)))
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print('structure: no module cycles, no function over', MAX_FN_LINES, 'lines')


if __name__ == '__main__':
    main()
