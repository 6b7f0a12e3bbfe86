#!/usr/bin/env python3
"""Builds a book page from its template and the output its recording
script saved. Usage: assemble.py TEMPLATE OUT_DIR PAGE

Markers, each alone on a line of the template:

  @@snip:NAME@@               OUT_DIR/NAME.txt, whole
  @@file:PATH@@               a file, whole (configurations, examples)
  @@lines:FILE:MAX:REGEX@@    the first MAX lines of OUT_DIR/FILE that
                              match REGEX (the last -MAX if MAX is
                              negative), verbatim, in order

Every program output on a generated page comes through these markers:
edit the template and the script, never the page."""
import re
import sys

if len(sys.argv) != 4:
    sys.exit(__doc__)
template, out, page = sys.argv[1:]
result = []
for line in open(template).read().split("\n"):
    m = re.fullmatch(r"@@(snip|file|lines):(.*)@@", line)
    if not m:
        result.append(line)
        continue
    kind, arg = m.groups()
    if kind == "snip":
        text = open(f"{out}/{arg}.txt").read()
    elif kind == "file":
        text = open(arg).read()
    else:
        name, most, regex = arg.split(":", 2)
        matching = [l for l in open(f"{out}/{name}").read().split("\n") if re.search(regex, l)]
        n = int(most)
        picked = matching[:n] if n > 0 else matching[n:]
        if not picked:
            sys.exit(f"{template}: no line of {name} matches {regex!r}")
        text = "\n".join(picked)
    result.append(text.rstrip("\n"))
open(page, "w").write("\n".join(result))
