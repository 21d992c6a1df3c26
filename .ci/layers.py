#!/usr/bin/env python3
"""Fails when files under src/ refer to each other's items in a cycle.

Builds the file -> file graph from `use crate::…`, `use super::…`, full
paths (`crate::a::b`, `super::x`) and paths through names a `use` brought
in, each resolved to the file that defines the item. A folder's mod.rs may
call its children (those edges are left out); a child's reference to mod.rs
counts for what mod.rs itself defines, while a name mod.rs only re-exports
(`pub use child::X`) resolves to the file that defines it.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"


def strip(text):
    """The source without comments, strings and char literals."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            out.append('""')
            i = n if j < 0 else j + len(end)
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|::|[{};,*()]|\S")


def modules():
    """Module path (a tuple) -> file, for every file under src/."""
    table = {}
    for f in ROOT.rglob("*.rs"):
        rel = f.relative_to(ROOT).with_suffix("").parts
        if rel in (("lib",), ("main",)):
            path = () if rel == ("lib",) else ("<main>",)
        elif rel[-1] == "mod":
            path = rel[:-1]
        else:
            path = rel
        table[path] = f
    return table


class File:
    def __init__(self, path, module, tokens):
        self.path, self.module, self.tokens = path, module, tokens
        self.bindings = {}  # name -> (full path as list, line)
        self.refs = []  # (path segments, module the path is written in, line)


def use_tree(tokens, i, prefix, out):
    """Parse a use tree at tokens[i]; append (path, binding name) to out; return the next index."""
    path = list(prefix)
    while i < len(tokens):
        t = tokens[i][0]
        if t == "::":
            i += 1
        elif t == "{":
            i += 1
            while tokens[i][0] != "}":
                i = use_tree(tokens, i, path, out)
                if tokens[i][0] == ",":
                    i += 1
            i += 1
            return i
        elif t == "*":
            out.append((path, None))
            return i + 1
        elif t == "as":
            name = tokens[i + 1][0]
            out.append((path, None if name == "_" else name))
            return i + 2
        elif t in (",", "}", ";"):
            if path and path[-1] == "self":
                path = path[:-1]
            if path:
                out.append((path, path[-1]))
            return i
        else:
            path.append(t)
            i += 1
    return i


def scan(path, module):
    text = strip(path.read_text())
    tokens, line, last = [], 1, 0
    for m in TOKEN.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        tokens.append((m.group(0), line))
    f = File(path, module, tokens)
    inline = []  # (module path, brace depth at which it closes)
    depth, i = 0, 0
    cur = lambda: inline[-1][0] if inline else module
    while i < len(tokens):
        t, ln = tokens[i]
        if t == "{":
            depth += 1
        elif t == "}":
            depth -= 1
            while inline and inline[-1][1] > depth:
                inline.pop()
        elif t == "mod" and i + 2 < len(tokens) and tokens[i + 2][0] == "{":
            inline.append((cur() + (tokens[i + 1][0],), depth + 1))
            i += 2
            continue
        elif t == "use" and (i == 0 or tokens[i - 1][0] != "::"):
            leaves = []
            j = use_tree(tokens, i + 1, [], leaves)
            for p, name in leaves:
                if p and p[0] == "::":
                    p = p[1:]
                if name is not None:
                    f.bindings[name] = (p, cur())
                f.refs.append((p, cur(), ln))
            while j < len(tokens) and tokens[j][0] != ";":
                j += 1
            i = j
            continue
        elif re.match(r"[A-Za-z_]", t) and (i == 0 or tokens[i - 1][0] != "::") and i + 1 < len(tokens) and tokens[i + 1][0] == "::":
            p, j = [t], i + 1
            while j + 1 < len(tokens) and tokens[j][0] == "::" and re.match(r"[A-Za-z_]", tokens[j + 1][0]):
                p.append(tokens[j + 1][0])
                j += 2
            f.refs.append((p, cur(), ln))
            i = j
            continue
        i += 1
    return f


def main():
    table = modules()
    files = {m: scan(p, m) for m, p in table.items()}

    def file_of(module):
        while module not in table:
            module = module[:-1]
        return module

    def resolve(p, context, seen=0):
        """The module path of the file defining the item `p` names, or None (std, other crates)."""
        if seen > 20 or not p:
            return None
        head, rest = p[0], list(p[1:])
        if head in ("crate", "lightfi_token"):
            mod = ()
        elif head == "self":
            mod = context
        elif head == "super":
            mod = context[:-1]
            while rest and rest[0] == "super":
                mod, rest = mod[:-1], rest[1:]
        else:
            owner = files[file_of(context)]
            if context + (head,) in table:
                mod = context + (head,)
            elif head in owner.bindings and owner.bindings[head][0] != p:
                target, ctx = owner.bindings[head]
                return resolve(target + rest, ctx, seen + 1)
            else:
                return None
        while rest and mod + (rest[0],) in table:
            mod, rest = mod + (rest[0],), rest[1:]
        if not rest:
            return None  # a module itself: its uses count
        owner = files[file_of(mod)]
        name = rest[0]
        if name in owner.bindings:
            target, ctx = owner.bindings[name]
            if target and target[0] not in ("std", "core", "alloc"):
                again = resolve(target + rest[1:], ctx, seen + 1)
                if again is not None:
                    return again
        return file_of(mod)

    edges = {}
    for m, f in files.items():
        for p, context, line in f.refs:
            target = resolve(p, context)
            if target is None or target == m:
                continue
            # A mod.rs calling into its folder is allowed.
            if table[m].name in ("mod.rs", "lib.rs") and target[: len(m)] == m:
                continue
            edges.setdefault(m, {}).setdefault(target, (line, "::".join(p)))

    name = lambda m: str(table[m].relative_to(ROOT.parent))
    cycles = strongly_connected(list(files), {k: list(v) for k, v in edges.items()})
    for scc in cycles:
        print("cycle: " + " -> ".join(name(m) for m in scc + [scc[0]]))
        for a, b in zip(scc, scc[1:] + [scc[0]]):
            line, via = edges[a][b]
            print(f"  {name(a)}:{line} uses {via}")
    count = sum(len(v) for v in edges.values())
    print(f"{len(files)} files, {count} references between them, {len(cycles)} cycle(s)")
    return 1 if cycles else 0


def strongly_connected(nodes, edges):
    """One cycle through each strongly connected component of more than one node."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, []):
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
                out.append(shortest_cycle(sorted(comp), set(comp), edges))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def shortest_cycle(comp, members, edges):
    start = comp[0]
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in edges.get(v, []):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return path[::-1]
                if w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


if __name__ == "__main__":
    sys.exit(main())
