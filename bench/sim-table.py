"""Turns `livescope sim`'s CSV (on stdin) into a Markdown table (bench/sim.sh)."""
import csv
import sys

rows = list(csv.DictReader(sys.stdin))
print("| chunk | polling | pre-buffer | stall ratio | stalls | buffering delay | end-to-end delay |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    poll = "blocking" if r["poll_ms"] == "0" else "%g s" % (int(r["poll_ms"]) / 1000)
    prebuffer = "adaptive" if r["prebuffer_ms"] == "adaptive" else "%g s" % (int(r["prebuffer_ms"]) / 1000)
    print("| %g s | %s | %s | %.2f%% | %s | %.1f s | %.1f s |" % (
        int(r["chunk_ms"]) / 1000, poll, prebuffer,
        float(r["stall_ratio"]) * 100, r["stalls"],
        int(r["buffering_delay_ms"]) / 1000, int(r["end_to_end_ms"]) / 1000))
