#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# Parses Documentation/*.rst with docutils (Debian's python3-docutils) and
# fails on any warning or error, but for the Sphinx-only :doc: role and
# toctree directive the kernel's documentation build provides.
import glob
import io
import re
import sys

import docutils.core

SPHINX = ('"doc"', '"toctree"')
MSG = re.compile(r"^\S+:\d+: \((INFO|WARNING|ERROR|SEVERE)/\d\) ")
bad = 0
for path in sorted(glob.glob("Documentation/*.rst")):
    err = io.StringIO()
    with open(path, encoding="utf-8") as f:
        docutils.core.publish_doctree(
            f.read(), source_path=path,
            settings_overrides={"warning_stream": err, "report_level": 2})
    for line in err.getvalue().splitlines():
        if MSG.match(line) and not any(s in line for s in SPHINX):
            print(line)
            bad += 1
print(f"rst-check: {bad} problem(s)" if bad else "rst-check: clean")
sys.exit(1 if bad else 0)
