#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle (docs/architecture.md).

    python3 scripts/check_cycles.py crates/data crates/models crates/metrics crates/runner

For each crate it reads the library's module tree from `mod` declarations (starting at
src/lib.rs; modules declared under `#[cfg(test)]` are left out, as are the crate's binaries),
and draws an edge A -> B for every path in A's code that names module B or an item of it:
`crate::b::…`, `super::…`, `self::…`, a child module `b::…`, and each member of a
`use crate::{…}` group. A path through a re-export counts as a use of the module that
re-exports, so a child that reaches its parent's re-exports depends on the parent. Comments and
string literals are ignored. It prints every cycle (strongly connected component) it finds,
with one path of each, and exits 1; with none it prints one line per crate and exits 0.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Source text with comments, string and char literals blanked (line structure kept)."""
    out = []
    i, n = 0, len(text)
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
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 40]) and not re.match(r"[A-Za-z0-9_]", text[i - 1:i] or " "):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and re.match(r"'\\u\{[0-9a-fA-F]+\}'", text[i:i + 12])):
            j = text.find("'", i + 2 if text[i + 1] == "\\" else i + 1)
            out.append("' '")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def test_blocks_removed(text):
    """Text without items under `#[cfg(test)]` (inline `mod tests { … }` and the like)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        # The item: up to its matching closing brace, or a `;` before any brace.
        brace = text.find("{", j)
        semi = text.find(";", j)
        if semi >= 0 and (brace < 0 or semi < brace):
            i = semi + 1
            continue
        depth, k = 0, brace
        while k < len(text):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        i = k + 1
    out.append(text[i:])
    return "".join(out)


def module_tree(src):
    """{module path: file} of the library under `src` (`""` is the crate root)."""
    modules = {}

    def visit(path, file, dir_for_children):
        modules[path] = file
        text = test_blocks_removed(strip_comments_and_strings(open(file, encoding="utf-8").read()))
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text, re.M):
            name = m.group(1)
            child = f"{path}::{name}" if path else name
            for cand in (os.path.join(dir_for_children, name + ".rs"),
                         os.path.join(dir_for_children, name, "mod.rs")):
                if os.path.isfile(cand):
                    sub_dir = (os.path.join(dir_for_children, name)
                               if cand.endswith(name + ".rs") else os.path.dirname(cand))
                    visit(child, cand, sub_dir)
                    break
            else:
                sys.exit(f"{file}: module {name} declared but no file found")

    visit("", os.path.join(src, "lib.rs"), src)
    return modules


def split_group(body):
    """Top-level members of a `{a, b::{c, d}, e}` use group."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def resolve(path, current, modules):
    """The module a path (segments) names or reaches an item of, or None outside the crate."""
    segs = [s for s in path if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] in ("super", "self"):
        base = current.split("::") if current else []
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                base = base[:-1]
            segs = segs[1:]
    else:
        # A child module of the current one, named directly.
        child = f"{current}::{segs[0]}" if current else segs[0]
        if child not in modules:
            return None
        base, segs = current.split("::") if current else [], segs
    best = "::".join(base)
    for k in range(1, len(segs) + 1):
        cand = "::".join(base + segs[:k])
        if cand in modules:
            best = cand
        else:
            break
    return best


def edges_of(current, file, modules):
    text = test_blocks_removed(strip_comments_and_strings(open(file, encoding="utf-8").read()))
    out = set()

    def add(path):
        target = resolve(path, current, modules)
        if target is not None and target != current:
            out.add(target)

    # use groups: `use crate::a::{b, c::{d}}` — each member is its own path.
    for m in re.finditer(r"\buse\s+((?:" + IDENT + r"::)+)\{", text):
        prefix = m.group(1).rstrip(":").split("::")
        start = m.end()
        depth, k = 1, start
        while k < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            k += 1
        stack = [(prefix, text[start:k - 1])]
        while stack:
            pre, body = stack.pop()
            for member in split_group(body):
                g = re.match(r"((?:" + IDENT + r"::)*)\{(.*)\}$", member, re.S)
                if g:
                    stack.append((pre + g.group(1).rstrip(":").split("::") if g.group(1) else pre, g.group(2)))
                else:
                    name = re.split(r"\s+as\s+", member)[0].strip()
                    segs = pre + [s for s in name.split("::") if s and s != "*"]
                    if name in ("self", "*"):
                        segs = pre
                    add([s for s in segs if s != "self"] if segs[:1] != ["self"] else segs)
    # every other path: crate::…, super::…, self::…, child::…
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:" + IDENT + r")(?:::(?:" + IDENT + r"|\*))+)", text):
        segs = [s for s in m.group(1).split("::") if s != "*"]
        if segs[0] in ("crate", "super", "self") or (f"{current}::{segs[0]}" if current else segs[0]) in modules:
            add(segs)
    return out


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        sccs.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = counter[0]
                counter[0] += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(graph[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    return sccs


def a_cycle(graph, comp):
    """One closed path through a component."""
    comp = set(comp)
    start = min(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w in comp and w not in prev:
                prev[w] = v
                queue.append(w)
    return [start]


def main(crates):
    failed = False
    for crate in crates:
        src = os.path.join(crate, "src")
        modules = module_tree(src)
        graph = {m: edges_of(m, f, modules) for m, f in modules.items()}
        graph = {m: {t for t in ts if t != ""} for m, ts in graph.items()}
        found = cycles(graph)
        name = os.path.basename(os.path.normpath(crate))
        if found:
            failed = True
            for comp in found:
                label = lambda m: m or "<crate root>"
                print(f"{name}: import cycle among {', '.join(map(label, comp))}")
                print("    " + " -> ".join(map(label, a_cycle(graph, comp))))
        else:
            print(f"{name}: {len(modules)} modules, no import cycle")
    return 1 if failed else 0


def self_test():
    """The checker finds a parent <-> child cycle and a cycle through a `use` group, and
    ignores test modules, comments and strings."""
    import tempfile

    def crate(files):
        root = tempfile.mkdtemp()
        for name, text in files.items():
            path = os.path.join(root, "src", name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        root_modules = module_tree(os.path.join(root, "src"))
        graph = {m: {t for t in edges_of(m, f, root_modules) if t} for m, f in root_modules.items()}
        return cycles(graph)

    assert crate({"lib.rs": "pub mod a;\npub mod b;\n",
                  "a.rs": "use crate::{b::{B}, };\npub struct A;\n",
                  "b.rs": "pub struct B(crate::a::A);\n"}) == [["a", "b"]]
    assert crate({"lib.rs": "pub mod p;\n", "p/mod.rs": "mod c;\npub use c::C;\npub struct P;\n",
                  "p/c.rs": "pub struct C(super::P);\n"}) == [["p", "p::c"]]
    assert crate({"lib.rs": "pub mod a;\npub mod b;\n",
                  "a.rs": "// crate::b::B\nconst S: &str = \"crate::b::B\";\n"
                          "#[cfg(test)]\nmod tests { use crate::b::B; }\n",
                  "b.rs": "pub struct B(crate::a::A);\n"}) == []
    print("check_cycles self-test: ok")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main(sys.argv[1:] or ["crates/data", "crates/models", "crates/metrics", "crates/runner"]))
