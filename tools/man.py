#!/usr/bin/env python3
"""The man pages' scdoc sources, made at build time from what they must agree with.

  man.py drctl DRCTL SHAREDIR IN OUT   drctl(1): IN with @COMMANDS@ replaced by each
                                       command's --help, as DRCTL prints it
  man.py neon-local NEON_LOCAL IN OUT  neon-local(1): @USAGE@ replaced by its --help
  man.py runbook DOCS_MD OUT           drctl-runbook(5): docs/runbooks.md in scdoc

The help texts and docs/runbooks.md stay the one source: the pages cannot say
other things than drctl does.
"""
import re
import subprocess
import sys


def literal(text):
    """A block scdoc prints as it is."""
    return "```\n" + text.rstrip("\n") + "\n```\n"


def help_of(program, *args):
    return subprocess.run([program, *args, "--help"], check=True, capture_output=True, text=True).stdout


def drctl_page(drctl, sharedir, source, out):
    commands = subprocess.run([drctl, "__complete", "1", "drctl", ""], check=True, capture_output=True,
                              text=True).stdout.split()
    if not commands:
        sys.exit("man.py: drctl __complete named no command")
    sections = ["## drctl %s\n\n%s" % (c, literal(help_of(drctl, c))) for c in commands]
    text = open(source).read().replace("@COMMANDS@", "\n".join(sections)).replace("@SHAREDIR@", sharedir)
    open(out, "w").write(text)


def neon_local_page(neon_local, source, out):
    text = open(source).read().replace("@USAGE@", literal(help_of(neon_local)))
    open(out, "w").write(text)


# ---- docs/runbooks.md to scdoc ----------------------------------------------------------

def escape(text):
    """Text with scdoc's markup characters taken literally."""
    return re.sub(r"([\\*_])", r"\\\1", text)


def inline(text):
    """Markdown's inline forms: `code` and **strong** bold, *emphasis*
    underlined, [text](link) its text."""
    out, pos = [], 0
    pattern = re.compile(r"``\s?(.+?)\s?``|`([^`]+)`|\*\*([^*]+)\*\*|(?<![*\w])\*([^*\s][^*]*?)\*(?![*\w])"
                         r"|\[([^\]]+)\]\(([^)]+)\)", re.S)
    for m in pattern.finditer(text):
        out.append(escape(text[pos:m.start()]))
        code, plain, strong, em, link = m.group(1), m.group(2), m.group(3), m.group(4), m.group(5)
        if code is not None or plain is not None or strong is not None:
            out.append("*" + escape(code or plain or strong) + "*")
        elif em is not None:
            out.append("_" + escape(em) + "_")
        else:
            out.append(escape(link))
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def table_rows(lines):
    """A markdown table as a list: each row's first cell, then the others."""
    rows = []
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        rows.append(cells)
    out = []
    for cells in rows[1:]:  # the header row names the columns
        first, rest = cells[0], [c for c in cells[1:] if c]
        out.append("- " + inline(first) + (": " + inline("; ".join(rest)) if rest else ""))
    return out


def runbook_page(docs, out):
    lines = open(docs).read().splitlines()
    body, para, i = [], [], 0

    def flush():
        # A paragraph or a list item whole, as markdown's inline forms may
        # run over its line breaks.
        if para:
            body.append(inline("\n".join(para)))
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i].replace("\t", "    "))
                i += 1
            body.append(literal("\n".join(block)).rstrip("\n"))
        elif line.startswith("|"):
            flush()
            table = []
            while i < len(lines) and lines[i].startswith("|"):
                table.append(lines[i])
                i += 1
            body.extend(table_rows(table))
            continue
        elif line.startswith("#"):
            flush()
            level, title = len(line) - len(line.lstrip("#")), line.lstrip("#").strip()
            if level == 2:
                body.append("# " + inline(title).upper())
            elif level >= 3:
                body.append("## " + inline(title))
        elif not line.strip():
            flush()
            body.append("")
        elif re.match(r"\d+\. ", line) or line.startswith("- "):
            flush()
            item = [re.sub(r"^(\d+\.|-) ", "", line)]
            # its continuation lines, indented, are part of it
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                item.append(lines[i].strip())
            body.append((". " if line[0].isdigit() else "- ") + inline("\n  ".join(item)))
        else:
            para.append(line.strip())
        i += 1
    flush()
    head = ("drctl-runbook(5)\n\n# NAME\n\ndrctl-runbook - the runbook format of drctl and the modules a "
            "runbook uses\n\n# DESCRIPTION\n\nThis page is docs/runbooks.md of drctl's sources.\n\n")
    text = head + "\n".join(body) + "\n\n# SEE ALSO\n\n*drctl*(1), *neon-local*(1)\n"
    open(out, "w").write(re.sub(r"\n{3,}", "\n\n", text))


def main(argv):
    if len(argv) == 6 and argv[1] == "drctl":
        drctl_page(*argv[2:])
    elif len(argv) == 5 and argv[1] == "neon-local":
        neon_local_page(*argv[2:])
    elif len(argv) == 4 and argv[1] == "runbook":
        runbook_page(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
