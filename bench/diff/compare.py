#!/usr/bin/env python3
"""compare.py DIFFOSCOPE.json REPROBOX.json: do both tools find the same differences?

Both reports are reduced to the same vocabulary: the members (files inside
directories and archives) whose content differs, the members whose metadata
differs, and the ELF sections that differ, each as a path from the compared root.
diffoscope names ELF findings by the command it ran (readelf --hex-dump=.rodata,
objdump --section=.text...); those are mapped to section names.
"""
import json
import re
import sys

SECTION_CMD = re.compile(r"(?:--hex-dump=|--string-dump=|--section=)(\S+)")


def diffoscope_findings(path):
    doc = json.load(open(path))
    content, meta, sections, other = set(), set(), set(), set()

    def listing_names(diff):
        names = set()
        for line in diff.splitlines():
            if line[:1] in "+-" and not line.startswith(("+++", "---")):
                parts = line[1:].split()
                if parts:
                    names.add(parts[-1].rstrip("/").removeprefix("./"))
        return names

    top = doc.get("source1", "")

    def walk(node, members, root=False, parent=""):
        src = node.get("source1", "")
        # Members of a compared directory are named by their full path.
        if not root and top and src.startswith(top.rstrip("/") + "/"):
            src = src[len(top.rstrip("/")) + 1:]
        details = node.get("details", [])
        if src in ("file list", "stat {}") or src.startswith("stat "):
            meta.update("/".join(members + [n]) for n in listing_names(node.get("unified_diff") or ""))
            return
        m = SECTION_CMD.search(src)
        if m:
            sections.add("/".join(members + [m.group(1)]))
            return
        # Whole-file readelf views that correspond to one section.
        for opt, sec in (("--relocs", ".rela*"), ("--debug-dump=info", "[dwarf]"),
                         ("--notes", ".note*"), ("--symbols", "[symbols]")):
            if src.startswith("readelf --wide " + opt):
                sections.add("/".join(members + [sec]))
                return
        if " " in src and ("{}" in src or src.startswith(("readelf", "objdump", "strings", "xxd", "file"))):
            # Another command's output: a finding about the member itself.
            other.add("/".join(members) + " :: " + src.split(" {}")[0])
            content.add("/".join(members))
            return
        if root:
            name = []
        elif "." in parent and src == parent.rsplit("/", 1)[-1].rsplit(".", 1)[0]:
            name = []  # a decompressed layer (a.tar inside a.tar.gz), not a member
        else:
            name = [src.removeprefix("./")]
        here = members + name
        if node.get("unified_diff") and not details:
            content.add("/".join(here))
        if details and here:
            content.add("/".join(here))
        for d in details:
            walk(d, here, parent=src)

    walk(doc, [], root=True)
    content.discard("")
    # A listing line for a member whose content differs is not a metadata-only
    # difference.
    meta -= content
    return content, meta, {unhash(s) for s in sections}, other


def unhash(path):
    """Drops Rust symbol hashes, which diffoscope may cut short in names, and
    names every relocation section .rela*, as diffoscope shows them together."""
    path = re.sub(r"17h[0-9a-f]{0,16}E?$", "", path)
    path = re.sub(r"/\.note\.[^/]*$", "/.note*", path)
    # Debugging entries and symbols are compared decoded by both tools.
    path = re.sub(r"/\.debug_info$", "/[dwarf]", path)
    path = re.sub(r"/\.(symtab|dynsym)$", "/[symbols]", path)
    return re.sub(r"/\.rela?\.[^/]*$", "/.rela*", path)


KIND = {}  # reprobox section path -> kind and summary, for the explanations


def reprobox_findings(path):
    doc = json.load(open(path))
    content, meta, sections = set(), set(), set()
    root = doc["root"]
    if root is None:
        return content, meta, sections

    def rel(p):
        base = root["path"]
        if p == base:
            return ""
        return p[len(base) + 1:] if p.startswith(base + "/") else p

    def walk(node, in_elf):
        p, fmt = rel(node["path"]), node.get("format", "")
        synthetic = p.split("/")[-1].startswith("[")
        if in_elf:
            if not synthetic or p.endswith(("/[dwarf]", "/[symbols]")):
                sections.add(unhash(p))
                KIND[unhash(p)] = (node["kind"], node.get("summary", ""))
        elif node["kind"] == "metadata":
            meta.add(p)
        elif p and not synthetic:
            content.add(p)
        for c in node.get("children", []):
            walk(c, in_elf or fmt.startswith("elf"))

    walk(root, False)
    return content, meta, sections


def why(tool, path):
    """Explains a finding only one tool made."""
    name = path.rsplit("/", 1)[-1]
    if tool == "diffoscope" and name.startswith(".text"):
        return ("objdump --line-numbers output differs (it prints the source paths from DWARF); "
                "the section's bytes are identical, and reprobox reports the paths in .debug_str and [dwarf]")
    if tool == "reprobox" and KIND.get(path, ("", ""))[0] == "metadata":
        return "section renamed (" + KIND[path][1] + "); diffoscope shows it only in readelf --sections"
    if tool == "diffoscope" and path.endswith("/"):
        return "an archive's symbol table member; reprobox reports it as [symbol table]"
    return ""


def show(title, a, b, examples=4):
    both = a & b
    print(f"{title}: diffoscope {len(a)}, reprobox {len(b)}, both {len(both)}")
    for tool, only in (("diffoscope", a - b), ("reprobox", b - a)):
        groups = {}
        for x in sorted(only):
            groups.setdefault(why(tool, x), []).append(x)
        for reason, items in sorted(groups.items()):
            print(f"  only {tool} ({len(items)}){': ' + reason if reason else ''}")
            for x in items[:examples]:
                print(f"      {x}")
            if len(items) > examples:
                print(f"      ... and {len(items) - examples} more")


def main():
    dc, dm, ds, other = diffoscope_findings(sys.argv[1])
    rc, rm, rs = reprobox_findings(sys.argv[2])
    show("members with different content", dc, rc)
    show("members with different metadata", dm, rm)
    show("ELF sections that differ", ds, rs)
    if other:
        print(f"diffoscope whole-file views that differ: {len(other)} "
              "(readelf --file-header/--sections, strings, nm: consequences of the above)")


if __name__ == "__main__":
    main()
