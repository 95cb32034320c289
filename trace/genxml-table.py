#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Mesa's description of the Gen9 commands, as a table gmig's parser is checked against.

Usage: genxml-table.py MESA_SOURCE GENXML OUT

Reads GENXML (src/intel/genxml/gen90.xml) with Mesa's own genxml library
(intel_genxml.py, which resolves its imports of older generations) and
writes one line per instruction, tab-separated:

    NAME  MASK  VALUE  LENGTH  ADDRESSES  ENGINES

MASK and VALUE (hex) match a command's first dword: the bits of every
dword-0 field with a default value except "DWord Length". LENGTH is the
fixed length in dwords ("n"), or the DWord Length field and bias as
"v:START:END:BIAS". ADDRESSES lists the command's own address fields (not
those of its groups) as "DWORD:LOW:HIGH:NAME" joined by ";", "-" if none.
ENGINES: the engines the instruction runs on ("render|video", ...), "all"
if genxml does not say (two instructions of different engines may share
their first dword: GPGPU_WALKER and MFX_AVC_WEIGHTOFFSET_STATE).
scripts/trace.sh analyze reads the table (rust/gmig_trace).
"""
import sys
import pathlib


def main():
    src, genxml, out = sys.argv[1:4]
    sys.path.insert(0, str(pathlib.Path(src) / 'src/intel/genxml'))
    import intel_genxml  # noqa: E402  Mesa's module, from its source

    g = intel_genxml.GenXml(genxml)
    g.flatten_imported()
    rows = []
    for ins in g.et.getroot().iter('instruction'):
        name = ins.get('name')
        mask = value = 0
        length = None
        addrs = []
        for f in ins.findall('field'):
            start, end = int(f.get('start')), int(f.get('end'))
            fname = f.get('name')
            if fname == 'DWord Length':
                length = 'v:%d:%d:%s' % (start, end, ins.get('bias', '2'))
                continue
            if end < 32 and f.get('default') is not None:
                bits = ((1 << (end - start + 1)) - 1) << start
                mask |= bits
                value |= (int(f.get('default'), 0) << start) & bits
            if f.get('type') == 'address':
                addrs.append('%d:%d:%d:%s' % (start // 32, start % 32, end - start // 32 * 32,
                                              fname.replace(';', ' ')))
        if length is None:
            length = str(int(ins.get('length', '1')))
        rows.append('%s\t%08x\t%08x\t%s\t%s\t%s' % (name, mask, value, length,
                                                     ';'.join(addrs) or '-',
                                                     ins.get('engine', 'all')))
    with open(out, 'w') as fh:
        fh.write('\n'.join(rows) + '\n')


if __name__ == '__main__':
    main()
