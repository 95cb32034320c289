#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Import cycles between gmig's parts (`make lint`).

In the kernel glue (rust/, but the crate root rust/gmig.rs, which owns it
all, and the crates of their own, gmig_core and gmig_trace) a part is a
file: rust/abi.rs, rust/migration/arc.rs, named by its module path
(`abi`, `migration::arc`; a folder's mod.rs is the folder's module,
`migration`). A file depends on another when its code outside the test
modules (`#[cfg(test)]`, `#[kunit_tests(..)]`) names the other's module
through a `crate::`, `super::` or `self::` path or use tree, or names one
of its own child modules by a bare path (`pub(crate) use arc::abort;` in
mod.rs); the longest module prefix of the path is the file named. A
parent's `mod x;` declaration alone is no dependency. In the core crate
(rust/gmig_core/src) a part is a top-level module with its folder, and
depends on another when its code outside the test modules names it
through `crate::`, `super::` or a `use` tree. The glue may depend on the
core, never the other way round.
Prints the graph with --print; exits 1 and names the cycle if there is one.
--root DIR reads another checkout.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if "--root" in sys.argv:
    ROOT = sys.argv[sys.argv.index("--root") + 1]
GLUE = os.path.join(ROOT, "rust")
CORE = os.path.join(GLUE, "gmig_core", "src")

PATH = re.compile(r"\b(\$?crate|super(?:::super)*)::(\{|[A-Za-z_]\w*)")


def code_of(path):
    """The file's text without comments, strings and test modules."""
    text = open(path, encoding="utf-8").read()
    cut = re.search(r"^#\[(cfg\((all\()?test|kunit_tests\()", text, re.M)
    if cut:
        text = text[:cut.start()]
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return re.sub(r"//[^\n]*", "", text)


def brace_heads(text, start):
    """Leading identifiers of the items of the brace group at text[start]."""
    depth, item, heads = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and ch == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += ch
    return [m.group(0) for h in heads if (m := re.match(r"\s*\w+", h))]


def referenced(text):
    """(root, levels up, first segment) of every path in text."""
    for m in PATH.finditer(text):
        root = m.group(1)
        up = 0 if root.endswith("crate") else root.count("super")
        if m.group(2) == "{":
            for head in brace_heads(text, m.start(2)):
                yield up, head.strip()
        else:
            yield up, m.group(2)


def core_parts():
    parts = {}
    for dirpath, _, files in os.walk(CORE):
        for f in files:
            # A module file of its own named tests.rs is a test module
            # (declared under #[cfg(test)], as aub/tests.rs is).
            if not f.endswith(".rs") or f in ("lib.rs", "tests.rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), CORE)
            mod = rel[:-3].split(os.sep)
            parts[os.path.join(dirpath, f)] = mod
    return parts

GLUE_ROOT = re.compile(r"(?<![\w:])(\$?crate|self|super(?:::super)*)::")
IDENT = re.compile(r"\s*(r#)?([A-Za-z_]\w*)")


def use_tree(text, i):
    """The paths (lists of segments) of the path or use tree at text[i]."""
    segs = []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if text.startswith("{", i):
            paths, i = [], i + 1
            while True:
                while i < len(text) and text[i] in " \t\n,":
                    i += 1
                if i >= len(text) or text[i] == "}":
                    break
                sub, j = use_tree(text, i)
                if j == i:
                    break
                paths += sub
                i = j
            return [segs + p for p in paths] or [segs], i + 1
        m = IDENT.match(text, i)
        if not m:
            return [segs], i
        segs.append(m.group(2))
        i = m.end()
        rest = re.match(r"\s*::", text[i:])
        if not rest:
            return [segs], i
        i += rest.end()


def glue_files():
    """Every file of the kernel glue, by module path (a tuple)."""
    files = {}
    for dirpath, dirs, names in os.walk(GLUE):
        # A crate of its own (gmig_core, gmig_trace) is no glue file.
        dirs[:] = sorted(
            d for d in dirs if not os.path.exists(os.path.join(dirpath, d, "Cargo.toml"))
        )
        for f in names:
            if not f.endswith(".rs"):
                continue
            mod = tuple(os.path.relpath(os.path.join(dirpath, f), GLUE)[:-3].split(os.sep))
            if mod == ("gmig",):
                continue
            if mod[-1] == "mod":
                mod = mod[:-1]
            files[mod] = os.path.join(dirpath, f)
    return files


def glue_name(mod):
    return "::".join(mod)


def glue_targets(mod, text, files):
    """The glue files the paths in text (of the file of module mod) name."""
    paths = []
    for m in GLUE_ROOT.finditer(text):
        root = m.group(1)
        base = {"crate": (), "$crate": (), "self": mod}.get(root)
        if base is None:
            base = mod[: max(len(mod) - root.count("super"), 0)]
        paths += [base + tuple(p) for p in use_tree(text, m.end())[0]]
    # A bare path to one of the file's own child modules.
    for child in {m[len(mod)] for m in files if len(m) == len(mod) + 1 and m[: len(mod)] == mod}:
        for m in re.finditer(r"(?<![\w:$])%s\s*::" % re.escape(child), text):
            paths += [mod + tuple(p) for p in use_tree(text, m.start())[0]]
    for path in paths:
        for n in range(len(path), 0, -1):
            if path[:n] in files:
                yield path[:n]
                break


def graph():
    deps = {}
    core = core_parts()
    tops = {m[0] for m in core.values()}
    for path, mod in core.items():
        me = mod[0]
        for up, seg in referenced(code_of(path)):
            # `super::` is the file's parent module, `super::super::` its
            # parent's; `crate::` (tests only) the root
            where = mod[: max(len(mod) - up, 0)] if up else []
            target = where[0] if where else seg
            if target in tops and target != me:
                deps.setdefault("core::" + me, set()).add("core::" + target)
    glue = glue_files()
    for mod, path in glue.items():
        text = code_of(path)
        for target in glue_targets(mod, text, glue):
            if target != mod:
                deps.setdefault(glue_name(mod), set()).add(glue_name(target))
    return deps


def cycle(deps):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(deps.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(deps):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def main():
    deps = graph()
    if "--print" in sys.argv:
        for n in sorted(deps):
            print(f"{n} -> {', '.join(sorted(deps[n]))}")
    found = cycle(deps)
    if found:
        print("import cycle between parts: " + " -> ".join(found))
        return 1
    print(f"no import cycle between {len(deps)} parts that depend on others")
    return 0


if __name__ == "__main__":
    sys.exit(main())
