"""``python -m tests.conformance``: run ONNX's backend test cases, print the pass table per
group, write the JSON report and check the record (exit status 1 if the gate fails).

    python -m tests.conformance                      # every group, 2 workers
    python -m tests.conformance -g node -k 'test_gather'
    python -m tests.conformance --list wrong,error   # also print the failing cases
    python -m tests.conformance --update-record      # set record.json to this run's counts
"""
from __future__ import annotations

import argparse
import json
import sys

from tests.conformance import harness


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-g", "--groups", default=",".join(harness.GROUPS),
                   help=f"comma-separated groups (default: all of {', '.join(harness.GROUPS)})")
    p.add_argument("-k", "--select", default=None, help="regex on '<group>/<case>' (run a subset)")
    p.add_argument("-j", "--jobs", type=int, default=harness.DEFAULT_JOBS, help="worker processes (default 2)")
    p.add_argument("--threads", type=int, default=1, help="engine threads per worker (default 1)")
    p.add_argument("--timeout", type=float, default=harness.CASE_TIMEOUT, help="seconds per case (default 60)")
    p.add_argument("--report", default=None, help="JSON report path (default: $DSL_CONFORMANCE_REPORT or "
                   "<cache_root>/conformance/report.json)")
    p.add_argument("--list", default="", help="comma-separated classes whose cases to print, or 'all-failures'")
    p.add_argument("--causes", action="store_true", help="print the failures grouped by cause")
    p.add_argument("--update-record", action="store_true", help="write this run's pass counts to record.json")
    p.add_argument("-v", "--verbose", action="store_true", help="print each case as it finishes")
    a = p.parse_args(argv)
    groups = [g.strip() for g in a.groups.split(",") if g.strip()]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    def progress(r):
        if a.verbose:
            first = (r.get("message") or "").splitlines()[:1]
            log(f"{r['class']:>14}  {r['group']}/{r['name']}  {r.get('seconds', 0):.2f}s  {first[0][:120] if first else ''}")

    out = harness.run_conformance(groups, jobs=a.jobs, threads=a.threads, timeout=a.timeout,
                                  report_path=a.report, select=a.select, log=log, progress=progress)
    wanted = set(harness.CLASSES[1:]) if a.list == "all-failures" else {c.strip() for c in a.list.split(",") if c.strip()}
    if wanted:
        for r in sorted(out.results, key=lambda r: (r["group"], r["class"], r["name"])):
            if r["class"] in wanted:
                msg = (r.get("message") or "").replace("\n", "\n        ")
                print(f"[{r['class']}] {r['group']}/{r['name']}: {msg}")
        print()
    if a.causes:
        for n, cls, key, names in harness.causes(out.results):
            more = f" (+{n - 3} more)" if n > 3 else ""
            print(f"{n:5d}  [{cls}] {key}\n         e.g. {', '.join(names[:3])}{more}")
        print()
    print(harness.format_table(out.summary))
    print(f"\n{len(out.results)} cases in {out.seconds:.1f} s ({a.jobs} workers); report: {out.report_path}")

    if a.select:
        return 0  # a subset says nothing about the record
    if a.update_record:
        rec = {}
        try:
            rec = harness.load_record()
        except (OSError, ValueError):
            pass
        for g in groups:
            if not out.summary[g].get("error"):
                rec[g] = out.summary[g]["passed"]
        with open(harness.RECORD_PATH, "w") as f:
            json.dump({g: rec[g] for g in harness.GROUPS if g in rec}, f, indent=1)
            f.write("\n")
        print(f"record written: {harness.RECORD_PATH}")
        return 0
    try:
        record = harness.load_record()
    except (OSError, ValueError) as exc:
        print(f"no usable record ({exc}); run with --update-record", file=sys.stderr)
        return 1
    failed = False
    for g in groups:
        fails, notes = harness.check_group(out.summary, out.results, g, record)
        for n in notes:
            print("NOTE:", n)
        for f in fails:
            print("FAIL:", f)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
