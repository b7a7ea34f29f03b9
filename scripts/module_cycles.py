#!/usr/bin/env python3
"""Import cycles between the module files of each crate.

For every crate (default: net engine/types engine signaling api benches testkit; or the crate dirs given as
arguments) this builds a graph whose nodes are module files (foo.rs or foo/mod.rs, found
by following `mod foo;` from lib.rs, main.rs and src/bin/*.rs) and whose edges are the
paths a file uses: `use crate::..`, `use super::..`, `use self::..`, `use child::..` and the
same paths written in code. A path points to the file of the deepest module it names, so
a child using a type its parent `mod.rs` re-exports depends on that `mod.rs`. Declaring
`mod child;` is not a dependency; test modules (`#[cfg(test)]` or named `tests`, inline or
in their own file) are left out. Method calls across files (`impl` blocks of one type
spread over several files) are not paths and are not seen.

Prints every strongly connected component of more than one file and exits 1 if any.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRATES = ["net", "engine/types", "engine", "signaling", "api", "benches", "testkit"]

# Comments, string and char literals: blanked before anything is parsed.
NOISE = re.compile(r"""//[^\n]*|/\*.*?\*/|r(#*)".*?"\1|"(?:\\.|[^"\\])*"|'(?:\\.|[^\\'])'""", re.S)
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")
MOD_DECL = re.compile(r"(#\[cfg\(test\)\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
USE = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
PATH = re.compile(r"(?<![\w:])(\w+(?:\s*::\s*\w+)+)")


def clean(text):
    """The code without comments, literals and test modules."""
    text = NOISE.sub('""', text)
    while m := TEST_MOD.search(text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[: m.start()] + text[i:]
    return text


def split_top(s):
    """Splits `a, b::{c, d}` at the commas outside braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    return [p.strip() for p in parts + [s[start:]] if p.strip()]


def expand(tree):
    """`a::{b, c::{d as e}}` -> [(['a', 'b'], None), (['a', 'c', 'd'], 'e')]."""
    tree = re.sub(r"\s+", " ", tree).strip()
    if "{" not in tree:
        path, _, alias = tree.partition(" as ")
        return [([s.strip() for s in path.split("::")], alias.strip() or None)]
    i = tree.index("{")
    prefix = [s.strip() for s in tree[:i].split("::") if s.strip()]
    out = []
    for part in split_top(tree[i + 1 : tree.rindex("}")]):
        for path, alias in expand(part):
            out.append((prefix + (path if path != ["self"] else []), alias))
    return out


class Crate:
    def __init__(self, crate_dir):
        self.dir = crate_dir
        self.files = {}  # module path (tuple, with the root file first) -> file
        self.code = {}  # file -> cleaned text
        self.aliases = {}  # (module, name) -> module
        src = crate_dir / "src"
        roots = [src / "lib.rs", src / "main.rs"] + sorted((src / "bin").glob("*.rs"))
        for root in roots:
            if root.exists():
                self.add((root.name,), root, root.parent)

    def add(self, module, file, child_dir):
        self.files[module] = file
        self.code[file] = clean(file.read_text())
        for m in MOD_DECL.finditer(self.code[file]):
            name = m.group(2)
            if m.group(1) or name == "tests":
                continue
            for f in [child_dir / f"{name}.rs", child_dir / name / "mod.rs"]:
                if f.exists():
                    self.add(module + (name,), f, child_dir / name)
                    break

    def resolve(self, module, segments):
        """The deepest module `segments` names from `module`, and whether it names only
        modules; None when it is not a path into this crate."""
        first, rest = segments[0], segments[1:]
        if first == "crate":
            module = module[:1]
        elif first == "super":
            module = module[:-1]
            while rest and rest[0] == "super":
                module, rest = module[:-1], rest[1:]
        elif first != "self":
            rest = segments  # a child module of this one, or nothing of ours
            if module + (first,) not in self.files:
                return None
        for i, seg in enumerate(rest):
            if module + (seg,) in self.files:
                module += (seg,)
            elif (module, seg) in self.aliases:
                module = self.aliases[(module, seg)]
            else:
                return module, False
        return module, True

    def edges(self):
        for module, file in self.files.items():  # module aliases first (`pub use x as y;`)
            for m in USE.finditer(self.code[file]):
                for path, alias in expand(m.group(1)):
                    hit = alias and self.resolve(module, path)
                    if hit and hit[1]:
                        self.aliases[(module, alias)] = hit[0]
        graph = {f: set() for f in self.files.values()}
        for module, file in self.files.items():
            code = self.code[file]
            paths = [p for m in USE.finditer(code) for p, _ in expand(m.group(1))]
            code = USE.sub("", code)
            paths += [[s.strip() for s in m.group(1).split("::")] for m in PATH.finditer(code)]
            for path in paths:
                hit = self.resolve(module, path)
                if hit and self.files[hit[0]] != file:
                    graph[file].add(self.files[hit[0]])
        return graph


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while not comp or w != v:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(args):
    found = False
    for name in args or DEFAULT_CRATES:
        crate_dir = (ROOT / name) if not Path(name).is_absolute() else Path(name)
        graph = Crate(crate_dir).edges()
        comps = cycles(graph)
        print(f"{name}: {len(graph)} module files, {len(comps)} cycle(s)")
        for comp in comps:
            found = True
            print(f"  cycle of {len(comp)} files:")
            for f in comp:
                uses = ", ".join(str(g.relative_to(ROOT)) for g in sorted(graph[f]) if g in comp)
                print(f"    {f.relative_to(ROOT)} -> {uses}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
