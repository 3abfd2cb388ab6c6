#!/usr/bin/env python3
"""bench/check/table.py [TAG:]RESULTS.tsv...: the markdown tables of README.md.

A TAG (the commit of the "after" binary, say) is shown beside that file's
"after" cells; a later file's row replaces an earlier one's.

One row per fixture: builds, wall seconds and verdict of reprobox before
(--repeats 9, the default at 7cca756), reprobox after (the sequential test,
default --bound 0.001) and reprotest --auto-build; then the nondeterministic
fixture's extra checks (fixture names with a #N suffix).
"""
import csv
import sys

rows = {}
order = []
nondet = []
for arg in sys.argv[1:]:
    tag, _, path = arg.rpartition(":")
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            r["tag"] = tag
            name = r["fixture"]
            if "#" in name:
                nondet.append(r)
                continue
            if name not in rows:
                rows[name] = {}
                order.append(name)
            rows[name][r["tool"]] = r

# The fixture each crate is sensitive to, as TestCheckFixtures has it.
want = {
    "reproducible": "none", "two_factors": "hostname, home", "dist": "time, umask, user",
    "nondeterministic": "nondeterministic", "dep_build_path": "build_path",
    "sysgen": "nondeterministic", "two_quiet": "umask, num_cpus",
    "locale_case": "locale", "locale_sort": "locale", "locale_printf": "locale",
    "pid": "pid", "pid_shell": "pid",
}


def cell(r):
    if r is None:
        return "–"
    s = "%s / %s s / %s" % (r["builds"], r["wall_s"], r["verdict"])
    if r["tag"] and r["tool"] == "reprobox-after":
        s += " [%s]" % r["tag"]
    return s


print("| fixture (sensitive to) | before: builds / wall / verdict | after: builds / wall / verdict | reprotest --auto-build: builds / wall / verdict | load 1-min |")
print("|---|---|---|---|---|")
for name in order:
    t = rows[name]
    loads = [float(x["load_before"].split()[0]) for x in t.values()] + [float(x["load_after"].split()[0]) for x in t.values()]
    print("| %s (%s) | %s | %s | %s | %.1f–%.1f |" % (
        name, want.get(name, name), cell(t.get("reprobox-before")), cell(t.get("reprobox-after")),
        cell(t.get("reprotest")), min(loads), max(loads)))


def total(tools):
    n, b, w = 0, dict.fromkeys(tools, 0), dict.fromkeys(tools, 0.0)
    for name in order:
        t = rows[name]
        if all(k in t and t[k]["builds"].isdigit() for k in tools):
            n += 1
            for k in tools:
                b[k] += int(t[k]["builds"])
                w[k] += float(t[k]["wall_s"])
    return n, b, w


n, b, w = total(["reprobox-before", "reprobox-after"])
print("| **%d fixtures with both** | **%d builds, %.0f s** | **%d builds, %.0f s** | | |" % (
    n, b["reprobox-before"], w["reprobox-before"], b["reprobox-after"], w["reprobox-after"]))
n, b, w = total(["reprobox-before", "reprobox-after", "reprotest"])
print("| **%d fixtures with all three** | **%d builds, %.0f s** | **%d builds, %.0f s** | **%d builds, %.0f s** | |" % (
    n, b["reprobox-before"], w["reprobox-before"], b["reprobox-after"], w["reprobox-after"], b["reprotest"], w["reprotest"]))

if nondet:
    print()
    print("| check (seed) | binary | exit | builds | wall s | verdict |")
    print("|---|---|---|---|---|---|")
    for r in nondet:
        print("| %s | %s | %s | %s | %s | %s |" % (r["fixture"], r["tag"], r["rc"], r["builds"], r["wall_s"], r["verdict"]))
    v = [r["verdict"] for r in nondet]
    b = [int(r["builds"]) for r in nondet if r["builds"].isdigit()]
    print()
    print("%d checks: %d nondeterministic, %d reproducible, %d blamed a factor, %d other; builds %d–%d, mean %.1f" % (
        len(v), v.count("nondeterministic"), v.count("reproducible"),
        sum(1 for x in v if x not in ("nondeterministic", "reproducible", "undecided", "?", "no-json")),
        sum(1 for x in v if x in ("undecided", "?", "no-json")), min(b), max(b), sum(b) / len(b)))
