#!/usr/bin/env python3
"""Keeps docs/runbooks.md true: every name the engine exports to runbooks
is documented there, and every name documented there still exists.

What counts as exported is read from the code, by its patterns, never by
file names (files move and split):

  * modules: sandbox_add_module(sb, "NAME", opener, ...) in any C file;
  * their functions and values: the luaL_Reg tables the opener (or a
    function it calls) sets into the module (luaL_newlib, luaL_setfuncs),
    and the fields it sets with lua_setfield (json.null, pg.null, ...);
  * methods of userdata: a luaL_Reg table set inside a
    `if (luaL_newmetatable(L, META)) { ... }` block, named OBJECT:method
    where OBJECT is the last part of the metatable's name
    ("drctl.pg.connection" -> connection:query), and the metamethods set
    there that authors use (connection.__close, connection.__tostring);
  * the Lua part of a module: sandbox_extend_module(..., "=FILE.lua") in
    the opener; FILE.lua's `function mod.name(` and `mod.name = ...`;
  * the shared Lua library under lua/: each module's `function M.name(`
    and `M.name = ...` (drctl.common -> common.name);
  * the runbook format: the *_fields arrays (runbook.name, step.timeout,
    param.secret, retry.backoff) and the param types (type.path).

Documented names are read from docs/runbooks.md in two fixed forms:

  ### `dump.pg_dump{...}`        a heading (##, ### or ####) that starts
                                 with a backticked name; the name ends at
                                 the first '(', '{', '[' or blank
  | `step.timeout` | ...         a table row whose first cell is a
                                 backticked runbook./step./retry./param./
                                 type. name

For each C function, the option fields it reads (lua_getfield on an
argument, or a helper called as helper(L, "field", ...)) and the result
fields it sets (lua_setfield(L, -2, "field")), in its own body and in the
functions it calls (two levels), must appear in the function's section of
the document (from its heading to the next heading of the same level or
above).

Exit 0 when the document and the code agree, 1 with one line per
difference otherwise, 2 when the code cannot be read.

  api_names.py [--root DIR] [--doc FILE] [--list]
"""

import argparse
import glob
import os
import re
import sys

# Metamethods that are plumbing, not API: __index carries the methods,
# __gc frees the handle, __name and __metatable are the type's label.
PLUMBING_METAMETHODS = {"__index", "__gc", "__name", "__metatable", "__mode"}

# Library modules under lua/ that the engine uses and runbooks do not.
ENGINE_ONLY_LUA = {"drctl.drill": "drctl drill composes it around a scenario; runbooks never call it"}

# Folders that hold no engine code (tests, objects, tools of their own).
SKIPPED_DIRS = {".git", "tests", "bench", "demo", "node_modules"}

FIELD_KINDS = {"runbook", "step", "retry", "param", "type"}


# ---- reading C ------------------------------------------------------------

def mask_c(text):
    """The text with comments blanked and the insides of string and
    character literals replaced by blanks (quotes kept), same length, so
    that braces and parentheses can be matched on it."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            for k in range(i, end):
                if out[k] != "\n":
                    out[k] = " "
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            for k in range(i, end):
                out[k] = " "
            i = end
        elif c in "\"'":
            k = i + 1
            while k < n and text[k] != c and text[k] != "\n":
                if text[k] == "\\":
                    out[k] = " "
                    k += 1
                out[k] = " "
                k += 1
            i = k + 1
        else:
            i += 1
    return "".join(out)


def match_brace(masked, open_at):
    depth = 0
    for k in range(open_at, len(masked)):
        if masked[k] == "{":
            depth += 1
        elif masked[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(masked) - 1


FUNCTION_START = re.compile(r"^[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\(([^;{}]*?)\)\s*\{", re.M | re.S)


class CSource:
    def __init__(self, path):
        self.path = path
        with open(path, encoding="utf-8", errors="replace") as f:
            self.text = f.read()
        self.masked = mask_c(self.text)
        self.macros = dict(re.findall(r'^#define\s+(\w+)\s+"([^"]*)"', self.text, re.M))
        self.functions = {}
        for m in FUNCTION_START.finditer(self.masked):
            name = m.group(1)
            if name in ("if", "for", "while", "switch", "return", "sizeof"):
                continue
            open_at = m.end() - 1
            close_at = match_brace(self.masked, open_at)
            self.functions.setdefault(name, (open_at, close_at))

    def body(self, name):
        start, end = self.functions[name]
        return self.text[start:end + 1], self.masked[start:end + 1]


class Code:
    """Every C file of the engine, and where each function is defined."""

    def __init__(self, root):
        self.root = root
        self.sources = []
        for path in sorted(glob.glob(os.path.join(root, "**", "*.c"), recursive=True)):
            rel = os.path.relpath(path, root)
            if rel.split(os.sep)[0] in SKIPPED_DIRS or rel.split(os.sep)[0].startswith(("build", "bin")):
                continue
            self.sources.append(CSource(path))
        self.where = {}
        for src in self.sources:
            for name in src.functions:
                self.where.setdefault(name, src)

    def body(self, name, near=None):
        """A function's source, text and masked text. A static function is
        private to its file, so the definition in `near` (the file that
        refers to it) comes first."""
        src = near if near is not None and name in near.functions else self.where.get(name)
        if not src:
            return None, None, None
        text, masked = src.body(name)
        return src, text, masked


LUAL_REG = re.compile(r"\bluaL_Reg\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", re.S)
REG_ENTRY = re.compile(r'\{\s*"(\w+)"\s*,\s*(\w+)\s*\}')
SETFIELD = re.compile(r'\blua_setfield\s*\(\s*\w+\s*,\s*-?\d+\s*,\s*"([^"\n]*)"\s*\)')
SETFUNCS = re.compile(r"\bluaL_(?:setfuncs|newlib)\s*\(\s*\w+\s*,\s*(\w+)")
NEWMETA = re.compile(r"\bluaL_newmetatable\s*\(\s*\w+\s*,\s*(\w+|\"[^\"]*\")\s*\)")
EXTEND = re.compile(r'\bsandbox_extend_module\s*\([^;]*?"=([\w.-]+\.lua)"')
ADD_MODULE = re.compile(r'\bsandbox_add_module\s*\(\s*\w+\s*,\s*"([\w.]+)"\s*,\s*(\w+)')
CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
# A C function given to Lua to call (a protected body): it runs as part of the caller.
PUSHED = re.compile(r"\blua_pushc(?:function|closure)\s*\(\s*\w+\s*,\s*([A-Za-z_]\w*)")


def registers_names(masked):
    return "luaL_Reg" in masked or "luaL_newlib" in masked or "luaL_setfuncs" in masked


class Export:
    def __init__(self, name, c_function=None, where="", source=None):
        self.name = name
        self.c_function = c_function   # the C function behind it, for its fields
        self.where = where
        self.source = source           # the file whose table names it


def metatable_regions(text, masked):
    """(start, end, metatable name expression) of each
    `if (luaL_newmetatable(...)) { ... }` block in a body."""
    regions = []
    for m in NEWMETA.finditer(masked):
        brace = masked.find("{", m.end())
        semicolon = masked.find(";", m.end())
        if brace < 0 or (0 <= semicolon < brace):
            continue  # not the condition of a block: nothing set on it is recognised
        regions.append((brace, match_brace(masked, brace), text[m.start(1):m.end(1)]))
    return regions


def object_name(expr, src):
    value = expr.strip('"') if expr.startswith('"') else src.macros.get(expr, expr)
    return value.split(".")[-1]


def module_exports(code, module, opener, near=None, seen=None):
    """The names a module's opener (and what it calls) puts on the module."""
    seen = seen if seen is not None else set()
    if opener in seen:
        return [], []
    seen.add(opener)
    src, text, masked = code.body(opener, near)
    if src is None:
        return [], []
    exports, lua_files = [], []
    tables = {}
    for m in LUAL_REG.finditer(masked):
        entries = REG_ENTRY.findall(text[m.start(2):m.end(2)])
        tables[m.group(1)] = entries
    regions = metatable_regions(text, masked)

    def region_of(pos):
        for start, end, expr in regions:
            if start <= pos <= end:
                return object_name(expr, src)
        return None

    where = os.path.relpath(src.path, code.root)
    for m in SETFUNCS.finditer(masked):
        obj = region_of(m.start())
        for lua_name, c_name in tables.get(m.group(1), []):
            name = f"{obj}:{lua_name}" if obj else f"{module}.{lua_name}"
            exports.append(Export(name, c_name, where, src))
    for m in SETFIELD.finditer(masked):
        field = text[m.start(1):m.end(1)]
        obj = region_of(m.start())
        if obj:
            if field not in PLUMBING_METAMETHODS:
                exports.append(Export(f"{obj}.{field}", None, where))
        elif not field.startswith("__"):
            exports.append(Export(f"{module}.{field}", None, where))
    for m in EXTEND.finditer(text):
        lua_files.append(m.group(1))
    for m in CALL.finditer(masked):
        callee = m.group(1)
        if callee in code.where and callee != opener:
            _, _, callee_masked = code.body(callee, src)
            if registers_names(callee_masked):
                more, more_lua = module_exports(code, module, callee, src, seen)
                exports += more
                lua_files += more_lua
    return exports, lua_files


# ---- reading Lua ----------------------------------------------------------

def lua_toplevel_exports(path, table_var):
    """`function T.name(` and `T.name = ` at the start of a line."""
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"function\s+%s\.([A-Za-z_]\w*)\s*\(" % re.escape(table_var), line) or \
                re.match(r"%s\.([A-Za-z_]\w*)\s*=(?!=)" % re.escape(table_var), line)
            if m:
                names.append(m.group(1))
    return names


def lua_module_var(path):
    """The name a module chunk gives its table: `local neon = ...` (an
    engine extension) or `local M = {}` ... `return M` (a library)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^local\s+(\w+)\s*=\s*\.\.\.\s*$", text, re.M)
    if m:
        return m.group(1)
    m = re.search(r"^return\s+(\w+)\s*$", text, re.M)
    return m.group(1) if m else None


def find_lua_file(root, file_name):
    for path in sorted(glob.glob(os.path.join(root, "**", file_name), recursive=True)):
        rel = os.path.relpath(path, root)
        top = rel.split(os.sep)[0]
        if top in SKIPPED_DIRS or top in ("lua", "runbooks"):
            continue
        return path
    return None


def library_exports(root):
    exports = []
    for path in sorted(glob.glob(os.path.join(root, "lua", "**", "*.lua"), recursive=True)):
        rel = os.path.relpath(path, os.path.join(root, "lua"))
        module = rel[:-4].replace(os.sep, ".")
        if module in ENGINE_ONLY_LUA:
            continue
        var = lua_module_var(path)
        if not var:
            continue
        short = module.split(".")[-1]
        for name in lua_toplevel_exports(path, var):
            if not name.startswith("_"):
                exports.append(Export(f"{short}.{name}", None, os.path.relpath(path, root)))
    return exports


# ---- the runbook format -----------------------------------------------------

FIELDS_ARRAY = re.compile(r"\bchar\s*\*\s*const\s+(\w+)_fields\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", re.S)
TYPE_NAMES = re.compile(r"\bchar\s*\*\s*const\s+type_names\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", re.S)


def format_exports(code):
    exports = []
    for src in code.sources:
        where = os.path.relpath(src.path, code.root)
        for m in FIELDS_ARRAY.finditer(src.masked):
            kind = m.group(1)
            if kind not in FIELD_KINDS:
                continue
            for field in re.findall(r'"(\w+)"', src.text[m.start(2):m.end(2)]):
                exports.append(Export(f"{kind}.{field}", None, where))
        for m in TYPE_NAMES.finditer(src.masked):
            for t in re.findall(r'"(\w+)"', src.text[m.start(1):m.end(1)]):
                exports.append(Export(f"type.{t}", None, where))
    return exports


# ---- fields of a function's arguments and results ------------------------------

GETFIELD_ARG = re.compile(r'\blua_getfield\s*\(\s*\w+\s*,\s*[1-9]\s*,\s*"([^"\n]*)"\s*\)')
GETFIELD_VAR = re.compile(r'\blua_getfield\s*\(\s*\w+\s*,\s*[1-9]\s*,\s*[A-Za-z_]\w*\s*\)')
RESULT_FIELD = re.compile(r'\blua_setfield\s*\(\s*\w+\s*,\s*-2\s*,\s*"([^"\n]*)"\s*\)')
HELPER_FIELD = re.compile(r'\b(\w+)\s*\(\s*\w+\s*,\s*"([^"\n]*)"')


def function_fields(code, c_function, near=None, depth=2, seen=None):
    seen = seen if seen is not None else set()
    src, text, masked = code.body(c_function, near)
    if src is None or (src.path, c_function) in seen:
        return set()
    seen.add((src.path, c_function))
    fields = set()
    for pattern in (GETFIELD_ARG, RESULT_FIELD):
        for m in pattern.finditer(masked):
            fields.add(text[m.start(1):m.end(1)])
    for m in HELPER_FIELD.finditer(masked):
        helper = m.group(1)
        if helper in code.where:
            _, _, helper_masked = code.body(helper, src)
            if GETFIELD_VAR.search(helper_masked):
                fields.add(text[m.start(2):m.end(2)])
    if depth > 0:
        for m in list(CALL.finditer(masked)) + list(PUSHED.finditer(masked)):
            callee = m.group(1)
            if callee in code.where and callee != c_function:
                fields |= function_fields(code, callee, src, depth - 1, seen)
    return fields


# ---- the document ---------------------------------------------------------------

HEADING = re.compile(r"^(#{2,4})\s+`([^`]+)`")
TABLE_NAME = re.compile(r"^\|\s*`([a-z]+\.[A-Za-z_]\w*)`\s*\|")


def heading_name(text):
    return re.split(r"[({\[ ]", text, 1)[0]


class Doc:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        self.names = {}      # name -> line number
        self.sections = {}   # name -> the text of its section
        headings = []
        for i, line in enumerate(self.lines):
            m = HEADING.match(line)
            if m:
                name = heading_name(m.group(2))
                headings.append((i, len(m.group(1)), name))
                self.names.setdefault(name, i + 1)
                continue
            m = re.match(r"^(#{1,4})\s", line)
            if m:
                headings.append((i, len(m.group(1)), None))
            m = TABLE_NAME.match(line)
            if m and m.group(1).split(".")[0] in FIELD_KINDS:
                self.names.setdefault(m.group(1), i + 1)
        for k, (i, level, name) in enumerate(headings):
            if not name:
                continue
            end = len(self.lines)
            for j, other_level, _ in headings[k + 1:]:
                if other_level <= level:
                    end = j
                    break
            text = "\n".join(self.lines[i:end])
            self.sections[name] = self.sections[name] + "\n" + text if name in self.sections else text


# ---- comparing -----------------------------------------------------------------

def exported(code, root):
    exports = []
    for src in code.sources:
        for m in ADD_MODULE.finditer(src.text):
            if src.masked[m.start()] == " ":
                continue  # inside a comment
            module, opener = m.group(1), m.group(2)
            names, lua_files = module_exports(code, module, opener, src)
            exports += names
            for file_name in lua_files:
                path = find_lua_file(root, file_name)
                if not path:
                    raise SystemExit(f"api_names: {module}'s Lua part {file_name} is not found under {root}")
                var = lua_module_var(path)
                for name in lua_toplevel_exports(path, var):
                    exports.append(Export(f"{module}.{name}", None, os.path.relpath(path, root)))
    exports += library_exports(root)
    exports += format_exports(code)
    # Names that begin with '_' are the engine's own (pg._connect, wrapped by pg.connect).
    by_name = {}
    for e in exports:
        if e.name.split(".")[-1].split(":")[-1].startswith("_") and not e.name.split(".")[-1].startswith("__"):
            continue
        by_name.setdefault(e.name, e)
    return by_name


def compare(root, doc_path, listing=False):
    code = Code(root)
    exports = exported(code, root)
    if not exports:
        print(f"api_names: no module found in the C files under {root} (sandbox_add_module)", file=sys.stderr)
        return 2
    doc = Doc(doc_path)
    doc_rel = os.path.relpath(doc_path, root) if doc_path.startswith(root) else doc_path
    if listing:
        for name in sorted(exports):
            print(name)
        return 0
    problems = []
    for name in sorted(exports):
        if name not in doc.names:
            problems.append(f"{name} is exported ({exports[name].where}) but not documented in {doc_rel}")
    for name, line in sorted(doc.names.items(), key=lambda item: item[1]):
        if name in exports:
            continue
        problems.append(f"{name} is documented ({doc_rel}:{line}) but the code exports no such name")
    for name in sorted(exports):
        e = exports[name]
        if not e.c_function or name not in doc.sections:
            continue
        section = doc.sections[name]
        for field in sorted(function_fields(code, e.c_function, e.source)):
            if not re.search(r"\b%s\b" % re.escape(field), section):
                problems.append(f"{name} takes or returns the field '{field}' ({e.where}, {e.c_function}), "
                                f"which its section of {doc_rel} (line {doc.names[name]}) does not mention")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} difference(s) between the code and {doc_rel}: document what is exported, "
              f"and remove what no longer is")
        return 1
    print(f"{doc_rel} documents the {len(exports)} names the code exports")
    return 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    parser.add_argument("--doc", default=None, help="the document (default: ROOT/docs/runbooks.md)")
    parser.add_argument("--list", action="store_true", help="only list the exported names")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    doc = args.doc or os.path.join(root, "docs", "runbooks.md")
    if not os.path.exists(doc):
        print(f"api_names: {doc} does not exist", file=sys.stderr)
        return 2
    return compare(root, os.path.abspath(doc), args.list)


if __name__ == "__main__":
    sys.exit(main())
