#!/usr/bin/env python3
"""mutants.py -- proves the Raft rule tests can fail: applies one small bug at a time to a copy of
src/raft/raft.c (mutants/<family>.json: name -> [original text, buggy text]), builds that
family's test_<family>.c against it and expects the test program to fail. Exits 1 when a mutant
survives. A mutant whose original text is no longer in raft.c is reported STALE (not an error):
update the json when the core changes.

    tests/raft/mutants.py                 # every family
    tests/raft/mutants.py replication     # one family

Not registered with ctest: it rebuilds the core once per mutant (about a minute in all).
"""
import json, os, shutil, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORE = os.path.join(ROOT, "src", "raft")


def run_family(family, work):
    mutants = json.load(open(os.path.join(HERE, "mutants", family + ".json")))
    original = open(os.path.join(CORE, "raft.c")).read()
    survived = 0
    for name, (old, new) in mutants.items():
        if original.count(old) != 1:
            print(f"STALE    {family}/{name}: original text not found once in raft.c")
            continue
        for f in os.listdir(CORE):
            if f.endswith((".c", ".h")):
                shutil.copy(os.path.join(CORE, f), work)
        open(os.path.join(work, "raft.c"), "w").write(original.replace(old, new))
        exe = os.path.join(work, "t")
        build = ["cc", "-std=c17", "-D_GNU_SOURCE", "-w", "-I" + work, "-I" + HERE,
                 os.path.join(HERE, f"test_{family}.c"), os.path.join(HERE, "fixture.c"),
                 os.path.join(work, "raft.c"), os.path.join(work, "raft_log.c"),
                 os.path.join(work, "raft_codec.c"), "-lcmocka", "-o", exe]
        if subprocess.run(build, capture_output=True).returncode != 0:
            print(f"NOBUILD  {family}/{name}")
            continue
        try:
            out = subprocess.run([exe], capture_output=True, text=True, timeout=120)
            code, text = out.returncode, out.stdout + out.stderr
        except subprocess.TimeoutExpired:
            code, text = 1, "timeout"
        failed = sorted({l.split()[-1] for l in text.splitlines()
                         if l.startswith("[  FAILED  ]") and "test(s)" not in l})
        if code == 0:
            survived += 1
            print(f"SURVIVED {family}/{name}")
        else:
            print(f"killed   {family}/{name}: {', '.join(failed) or 'crashed'}")
    return survived


def main():
    families = sys.argv[1:] or sorted(f[:-5] for f in os.listdir(os.path.join(HERE, "mutants")))
    with tempfile.TemporaryDirectory() as work:
        survived = sum(run_family(f, work) for f in families)
    print(f"{survived} mutant(s) survived")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
