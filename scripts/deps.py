#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Import cycles between gmig's parts (`make lint`).

A part is a module of the kernel glue (rust/*.rs but the crate root
rust/gmig.rs, which owns them all) or a top-level module of the core crate
(rust/gmig_core/src/*.rs, with its folder). A part depends on another when
its code outside the test modules names it through `crate::`, `super::` or
a `use` tree. The glue may depend on the core, never the other way round.
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
    cut = re.search(r"^#\[cfg\((all\()?test", text, re.M)
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
    glue = {f[:-3] for f in os.listdir(GLUE) if f.endswith(".rs")} - {"gmig"}
    for name in glue:
        text = code_of(os.path.join(GLUE, name + ".rs"))
        for up, seg in referenced(text):
            if up == 0 and seg in glue and seg != name:
                deps.setdefault(name, set()).add(seg)
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
