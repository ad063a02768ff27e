"""Turns `livescope sim`'s CSV (on stdin) into a Markdown table (bench/sim.sh)."""
import csv
import sys

rows = list(csv.DictReader(sys.stdin))
print("| chunk | polling | pre-buffer P | policy | stall ratio | stalls | buffering delay | end-to-end delay | time off 1x |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    poll = "blocking" if r["poll_ms"] == "0" else "%g s" % (int(r["poll_ms"]) / 1000)
    prebuffer = "%g s" % (int(r["prebuffer_ms"]) / 1000)
    print("| %g s | %s | %s | %s | %.2f%% | %s | %.1f s | %.1f s | %.0f%% |" % (
        int(r["chunk_ms"]) / 1000, poll, prebuffer, r["policy"],
        float(r["stall_ratio"]) * 100, r["stalls"],
        int(r["buffering_delay_ms"]) / 1000, int(r["end_to_end_ms"]) / 1000,
        float(r["off_rate"]) * 100))
