#!/usr/bin/env python3
"""Checks the layout rules of ARCHITECTURE.md that the compiler does not:

- no cycle among the top-level modules of any crate (a module `a` uses `b` when its code names `crate::b`,
  `super::b` from its top level, or an item the crate root re-exports from `b`);
- no source file over 1 000 lines of code, tests aside (`#[cfg(test)] mod tests` and the files of tests/,
  benches/, examples/ and fuzz/ are not counted; neither are blank lines and comments);
- no file refers to notes outside the repository.

Prints each breach and exits 1 when there is one. Standard library only: it runs before anything is built.
"""

import re
import sys
from pathlib import Path

MAX_LINES_OF_CODE = 1000
ROOT = Path(__file__).resolve().parent.parent


def crate_sources():
    """The `src/` directory of every package of the workspace."""
    for manifest in sorted(ROOT.glob("**/Cargo.toml")):
        if "target" in manifest.parts or "fuzz" in manifest.relative_to(ROOT).parts:
            continue
        src = manifest.parent / "src"
        if src.is_dir():
            yield src


def strip_tests(text):
    """The text before the unit tests of a file (`#[cfg(test)]` then `mod tests`)."""
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod \w+", text, re.M)
    return text[: m.start()] if m else text


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())


def lines_of_code(text):
    return sum(1 for line in strip_comments(strip_tests(text)).splitlines() if line.strip())


def top_modules(src):
    """Top-level module name -> the files it is made of."""
    modules = {}
    for path in src.iterdir():
        if path.suffix == ".rs" and path.stem not in ("lib", "main"):
            modules.setdefault(path.stem, []).append(path)
        elif path.is_dir():
            modules.setdefault(path.name, []).extend(sorted(path.rglob("*.rs")))
    return modules


def root_reexports(src, modules):
    """Names the crate root re-exports -> the module they come from."""
    names = {}
    for root in ("lib.rs", "main.rs"):
        path = src / root
        if not path.exists():
            continue
        for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+(?:self::|crate::)?(\w+)::([^;]+);", path.read_text()):
            module, rest = m.group(1), m.group(2)
            if module not in modules:
                continue
            for ident in re.findall(r"\b(\w+)\b(?:\s+as\s+(\w+))?", rest):
                names[ident[1] or ident[0]] = module
    return names


def referenced(text, depth, modules, reexports):
    """Top-level modules a file's code names."""
    text = strip_comments(strip_tests(text))
    found = set()
    prefixes = [r"crate::"]
    if depth >= 1:
        prefixes.append(r"(?<![\w:])" + r"super::" * depth)

    def add(ident):
        if ident in modules:
            found.add(ident)
        elif ident in reexports:
            found.add(reexports[ident])

    for prefix in prefixes:
        for m in re.finditer(prefix + r"(\w+)", text):
            add(m.group(1))
        for m in re.finditer(prefix + r"\{", text):
            # a grouped import: the first identifier of each top-level item of the braces
            level, start, i = 1, m.end(), m.end()
            while i < len(text) and level:
                level += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            body, part, level = text[start : i - 1], "", 0
            for ch in body + ",":
                if ch == "{":
                    level += 1
                elif ch == "}":
                    level -= 1
                if ch == "," and level == 0:
                    first = re.match(r"\s*(\w+)", part)
                    if first:
                        add(first.group(1))
                    part = ""
                else:
                    part += ch
    return found


def module_depth(path, src):
    """How many `super::` lead from a file to the crate root."""
    rel = path.relative_to(src)
    depth = len(rel.parts)  # a.rs: 1; a/b.rs: 2; a/mod.rs: 2 but it is module a
    if rel.name == "mod.rs":
        depth -= 1
    return depth


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    breaches = []
    for src in crate_sources():
        modules = top_modules(src)
        reexports = root_reexports(src, modules)
        graph = {name: set() for name in modules}
        for name, files in modules.items():
            for path in files:
                text = path.read_text()
                graph[name] |= referenced(text, module_depth(path, src), modules, reexports)
            graph[name].discard(name)
        for component in cycles(graph):
            edges = ", ".join(f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component)
            breaches.append(f"{src.relative_to(ROOT)}: module cycle {{{', '.join(component)}}}: {edges}")
        for path in sorted(src.rglob("*.rs")):
            loc = lines_of_code(path.read_text())
            if loc > MAX_LINES_OF_CODE:
                breaches.append(f"{path.relative_to(ROOT)}: {loc} lines of code (at most {MAX_LINES_OF_CODE})")
    outside = re.compile(r"\.\./shared|sources\.md")
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if not path.is_file() or rel.parts[0] in ("target", ".git", "node_modules") or "node_modules" in rel.parts:
            continue
        if path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if outside.search(line):
                breaches.append(f"{rel}:{number}: refers to notes outside the repository")
    for breach in breaches:
        print(breach)
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
