// Validates HLS playlists (multivariant or media, LL-HLS included): hls-parser in strict
// mode, plus RFC 8216bis rules hls-parser does not check (or checks only partly). Prints
// one JSON line per playlist, {url, ok, kind, errors, warnings}, and exits 1 if any
// playlist has an error (warnings never fail), 2 on bad usage or a fetch failure.
//
//   node validate.mjs http://127.0.0.1:8080/hls/<id>/index.m3u8 [<url>...]
//   node validate.mjs --follow <multivariant url>   # also every variant/rendition it names
//   node validate.mjs --text playlist.m3u8 [--text other.m3u8]
//
// hls-parser stops at its first complaint in strict mode; its verdict comes from a strict
// parse, and the rest of its complaints are gathered from a second, lenient parse.
import HLS from "hls-parser";
import { readFile } from "node:fs/promises";

const EPS = 1e-9; // attribute values are compared as written: no float slack needed
const MS = 0.0015; // slack for sums of durations and millisecond PROGRAM-DATE-TIMEs

/** hls-parser's complaints: [verdict error from strict mode, ...all lenient messages]. */
function hlsParserErrors(text) {
  const found = [];
  HLS.setOptions({ strictMode: true });
  try {
    HLS.parse(text);
  } catch (err) {
    found.push(err instanceof TypeError ? `crashed: ${err.message}` : err.message);
  }
  if (found.length === 0) return [];
  // Lenient mode reports each violation through console.error and carries on.
  const saved = console.error;
  console.error = (msg) => found.push(String(msg));
  HLS.setOptions({ strictMode: false, silent: false });
  try {
    HLS.parse(text);
  } catch (err) {
    found.push(`crashed: ${err.message}`);
  } finally {
    console.error = saved;
    HLS.setOptions({ strictMode: true });
  }
  return [...new Set(found)].map((m) => `hls-parser: ${m}`);
}

function attrs(list) {
  const out = {};
  for (const m of (list || "").matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
    out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
  }
  return out;
}

function tags(text) {
  const lines = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || (line.startsWith("#") && !line.startsWith("#EXT"))) continue;
    if (!line.startsWith("#")) {
      lines.push({ uri: line });
      continue;
    }
    const colon = line.indexOf(":");
    lines.push(colon < 0 ? { tag: line.slice(1) } : { tag: line.slice(1, colon), value: line.slice(colon + 1) });
  }
  return lines;
}

const num = (v) => (v === undefined || v === "" ? undefined : Number(v));
const fix = (x) => Math.round(x * 1e6) / 1e6;

function checkMultivariant(lines, errors, warnings) {
  let variants = 0;
  lines.forEach((l, i) => {
    if (l.tag === "EXT-X-STREAM-INF" || l.tag === "EXT-X-I-FRAME-STREAM-INF") {
      const a = attrs(l.value);
      const where = l.tag === "EXT-X-STREAM-INF" ? `${l.tag} ${variants++} (${lines[i + 1]?.uri ?? "no URI"})` : `${l.tag} (${a.URI})`;
      const bw = num(a.BANDWIDTH);
      if (!(bw > 0) || !Number.isInteger(bw)) errors.push(`${where}: BANDWIDTH must be an integer > 0 (got ${a.BANDWIDTH ?? "none"})`);
      if (a["AVERAGE-BANDWIDTH"] !== undefined && !(num(a["AVERAGE-BANDWIDTH"]) > 0)) errors.push(`${where}: AVERAGE-BANDWIDTH must be > 0`);
      if (!a.CODECS) errors.push(`${where}: CODECS missing`);
      if (l.tag === "EXT-X-STREAM-INF" && !lines[i + 1]?.uri) errors.push(`${where}: not followed by a URI line`);
      if (l.tag === "EXT-X-I-FRAME-STREAM-INF" && !a.URI) errors.push(`${where}: URI missing`);
    } else if (l.tag === "EXT-X-MEDIA") {
      const a = attrs(l.value);
      for (const k of ["TYPE", "GROUP-ID", "NAME"]) if (!a[k]) errors.push(`EXT-X-MEDIA ${a.NAME ?? ""}: ${k} missing`);
    }
  });
  if (variants === 0) errors.push("multivariant playlist has no EXT-X-STREAM-INF");
}

function checkMedia(lines, errors, warnings) {
  const first = (name) => lines.find((l) => l.tag === name);
  const tdTag = first("EXT-X-TARGETDURATION");
  const td = num(tdTag?.value);
  if (!tdTag) errors.push("EXT-X-TARGETDURATION missing");
  else if (!Number.isInteger(td) || td <= 0) errors.push(`EXT-X-TARGETDURATION must be a positive decimal-integer (got ${tdTag.value})`);
  const partInf = first("EXT-X-PART-INF");
  const partTarget = num(attrs(partInf?.value)["PART-TARGET"]);
  if (partInf && !(partTarget > 0)) errors.push("EXT-X-PART-INF: PART-TARGET must be > 0");
  const control = attrs(first("EXT-X-SERVER-CONTROL")?.value);
  const endlist = lines.some((l) => l.tag === "EXT-X-ENDLIST");
  const hints = lines.filter((l) => l.tag === "EXT-X-PRELOAD-HINT").map((l) => attrs(l.value));
  let msn = num(first("EXT-X-MEDIA-SEQUENCE")?.value) ?? 0;

  // Walk the segments; a trailing group of EXT-X-PART tags with no URI line is the
  // in-progress (open) segment.
  const segments = [];
  let cur = { parts: [], msn };
  for (const l of lines) {
    if (l.uri !== undefined) {
      segments.push({ ...cur, uri: l.uri });
      cur = { parts: [], msn: cur.msn + 1 };
      continue;
    }
    switch (l.tag) {
      case "EXTINF": cur.duration = Number.parseFloat(l.value); break;
      case "EXT-X-PART": cur.parts.push(attrs(l.value)); break;
      case "EXT-X-DISCONTINUITY": cur.discontinuity = true; break;
      case "EXT-X-GAP": cur.gap = true; break;
      case "EXT-X-SKIP": cur.msn += num(attrs(l.value)["SKIPPED-SEGMENTS"]) || 0; cur.afterSkip = true; break;
      case "EXT-X-PROGRAM-DATE-TIME":
        if (cur.parts.length > 0) errors.push(`segment ${cur.msn}: EXT-X-PROGRAM-DATE-TIME after its first EXT-X-PART (must precede it)`);
        cur.pdt = Date.parse(l.value);
        if (Number.isNaN(cur.pdt)) errors.push(`segment ${cur.msn}: bad EXT-X-PROGRAM-DATE-TIME ${l.value}`);
        break;
    }
  }
  const open = cur.parts.length > 0 ? cur : null;
  const all = open ? [...segments, open] : segments;

  for (const s of segments) {
    if (s.duration === undefined || Number.isNaN(s.duration)) errors.push(`segment ${s.msn} (${s.uri}): EXTINF missing`);
    else if (td && Math.round(s.duration) > td) errors.push(`segment ${s.msn}: EXTINF ${s.duration} rounds to ${Math.round(s.duration)} > EXT-X-TARGETDURATION ${td}`);
  }

  const anyParts = all.some((s) => s.parts.length > 0);
  if (anyParts && !partInf) errors.push("EXT-X-PART present but EXT-X-PART-INF missing");
  if (partInf && control["PART-HOLD-BACK"] === undefined) errors.push("EXT-X-PART-INF present but EXT-X-SERVER-CONTROL has no PART-HOLD-BACK");
  if (partTarget > 0 && control["PART-HOLD-BACK"] !== undefined) {
    const phb = num(control["PART-HOLD-BACK"]);
    if (phb < 2 * partTarget - EPS) errors.push(`PART-HOLD-BACK ${phb} < 2 x PART-TARGET ${partTarget}`);
    else if (phb < 3 * partTarget - 1e-6) warnings.push(`PART-HOLD-BACK ${phb} < 3 x PART-TARGET ${partTarget} (SHOULD be at least 3x)`);
  }
  if (td && control["HOLD-BACK"] !== undefined && num(control["HOLD-BACK"]) < 3 * td) errors.push(`HOLD-BACK ${control["HOLD-BACK"]} < 3 x EXT-X-TARGETDURATION`);
  if (td && control["CAN-SKIP-UNTIL"] !== undefined && num(control["CAN-SKIP-UNTIL"]) < 6 * td) errors.push(`CAN-SKIP-UNTIL ${control["CAN-SKIP-UNTIL"]} < 6 x EXT-X-TARGETDURATION`);
  if (lines.some((l) => l.tag === "EXT-X-SKIP") && control["CAN-SKIP-UNTIL"] === undefined) errors.push("EXT-X-SKIP without CAN-SKIP-UNTIL");

  // Part durations: <= PART-TARGET always; >= 85% of it except INDEPENDENT/GAP parts, a
  // part followed by a GAP part, and the last part of a complete segment (§4.4.4.9).
  for (const s of all) {
    s.parts.forEach((p, i) => {
      const d = num(p.DURATION);
      const where = `segment ${s.msn} part ${i} (${p.URI})`;
      if (d === undefined || Number.isNaN(d)) return errors.push(`${where}: DURATION missing`);
      if (partTarget > 0 && d > partTarget + EPS) errors.push(`${where}: DURATION ${d} > PART-TARGET ${partTarget}`);
      const exempt = p.INDEPENDENT === "YES" || p.GAP === "YES" || s.parts[i + 1]?.GAP === "YES" || (s !== open && i === s.parts.length - 1);
      if (partTarget > 0 && !exempt && d < 0.85 * partTarget - EPS) errors.push(`${where}: DURATION ${d} < 85% of PART-TARGET ${partTarget}`);
    });
    if (s !== open && s.parts.length > 0 && s.duration > 0) {
      const sum = s.parts.reduce((t, p) => t + (num(p.DURATION) || 0), 0);
      if (Math.abs(sum - s.duration) > MS) warnings.push(`segment ${s.msn}: parts add up to ${fix(sum)} s but EXTINF is ${s.duration}`);
    }
  }

  // EXT-X-PART only within the last three target durations (§6.2.2: "SHOULD be removed
  // ... after they are greater than three Target Durations from the end of the
  // Playlist"; treated as an error here). A segment's parts may stay while the segment
  // *starts* no more than 3 x TARGETDURATION before the end of the playlist.
  const lengthOf = (s) => (s === open ? s.parts.reduce((t, p) => t + (num(p.DURATION) || 0), 0) : s.duration || 0);
  const total = all.reduce((t, s) => t + lengthOf(s), 0);
  if (td) {
    let start = 0;
    for (const s of all) {
      const age = total - start;
      if (s.parts.length > 0 && age > 3 * td + MS) {
        errors.push(`segment ${s.msn}: EXT-X-PART tags for a segment starting ${fix(age)} s before the end of the playlist (> 3 x TARGETDURATION = ${3 * td} s)`);
      }
      start += lengthOf(s);
    }
  }

  if (endlist && hints.length > 0) errors.push("EXT-X-PRELOAD-HINT together with EXT-X-ENDLIST");
  if (endlist && open) warnings.push(`EXT-X-ENDLIST with an incomplete segment ${open.msn} (EXT-X-PART tags with no EXTINF/URI after them)`);
  if (!endlist && partInf && !hints.some((h) => h.TYPE === "PART")) warnings.push("live LL-HLS playlist without EXT-X-PRELOAD-HINT:TYPE=PART");
  for (const h of hints) if (!h.TYPE || !h.URI) errors.push("EXT-X-PRELOAD-HINT needs TYPE and URI");

  // PROGRAM-DATE-TIMEs should follow the durations (players map times through them).
  let last = null; // {pdt, at} of the latest segment that carried one
  let start = 0;
  for (const s of all) {
    if (s.discontinuity || s.afterSkip) last = null;
    if (s.pdt !== undefined && !Number.isNaN(s.pdt)) {
      if (last) {
        const expected = last.pdt + (start - last.at) * 1000;
        if (Math.abs(s.pdt - expected) > MS * 1000) {
          warnings.push(`segment ${s.msn}: EXT-X-PROGRAM-DATE-TIME is ${fix((s.pdt - expected) / 1000)} s off the previous one plus the durations in between`);
        }
      }
      last = { pdt: s.pdt, at: start };
    }
    start += lengthOf(s);
  }
}

function validate(text) {
  const errors = [];
  const warnings = [];
  const parserErrors = hlsParserErrors(text);
  const lines = tags(text);
  if (lines[0]?.tag !== "EXTM3U") errors.push("first line is not #EXTM3U");
  const multivariant = lines.some((l) => ["EXT-X-STREAM-INF", "EXT-X-I-FRAME-STREAM-INF", "EXT-X-MEDIA"].includes(l.tag));
  (multivariant ? checkMultivariant : checkMedia)(lines, errors, warnings);
  // hls-parser's 85% floor exempts only the last part of a segment, not INDEPENDENT=YES
  // or GAP parts as §4.4.4.9 does; its complaint stands only if the exact check agrees.
  for (const e of parserErrors) {
    if (e.includes("at least 85% of PART-TARGET") && !errors.some((m) => m.includes("< 85% of PART-TARGET"))) {
      warnings.push(`${e} (not an RFC 8216bis error: the short parts are exempt)`);
    } else errors.unshift(e);
  }
  return { kind: multivariant ? "multivariant" : "media", errors: [...new Set(errors)], warnings, lines };
}

const args = process.argv.slice(2);
const jobs = [];
let follow = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--follow") follow = true;
  else if (args[i] === "--text") {
    if (!args[i + 1]) { console.error("--text needs a file"); process.exit(2); }
    jobs.push({ file: args[++i] });
  } else if (args[i].startsWith("-")) { console.error(`unknown option ${args[i]}`); process.exit(2); }
  else jobs.push({ url: args[i] });
}
if (jobs.length === 0) {
  console.error("usage: node validate.mjs [--follow] <url>... | --text <file.m3u8>...");
  process.exit(2);
}

let failed = false;
let broken = false;
const seen = new Set();
while (jobs.length > 0) {
  const job = jobs.shift();
  const name = job.url ?? job.file;
  if (seen.has(name)) continue;
  seen.add(name);
  let text;
  const fetchErrors = [];
  const warnings = [];
  try {
    if (job.file) text = await readFile(job.file, "utf8");
    else {
      const res = await fetch(job.url, { signal: AbortSignal.timeout(15000) });
      if (!res.ok) fetchErrors.push(`HTTP ${res.status}`);
      const type = res.headers.get("content-type") || "";
      if (!/^(application\/vnd\.apple\.mpegurl|audio\/mpegurl)\b/i.test(type)) warnings.push(`Content-Type ${type || "missing"} (want application/vnd.apple.mpegurl)`);
      text = await res.text();
    }
  } catch (err) {
    fetchErrors.push(`cannot read: ${err.message}`);
  }
  if (fetchErrors.length > 0) {
    broken = true;
    console.log(JSON.stringify({ url: name, ok: false, errors: fetchErrors, warnings }));
    continue;
  }
  const r = validate(text);
  const ok = r.errors.length === 0;
  failed ||= !ok;
  console.log(JSON.stringify({ url: name, ok, kind: r.kind, errors: r.errors, warnings: [...warnings, ...r.warnings] }));
  if (follow && job.url && r.kind === "multivariant") {
    r.lines.forEach((l, i) => {
      const uri = l.tag === "EXT-X-STREAM-INF" ? r.lines[i + 1]?.uri : ["EXT-X-MEDIA", "EXT-X-I-FRAME-STREAM-INF"].includes(l.tag) ? attrs(l.value).URI : undefined;
      if (uri) jobs.push({ url: new URL(uri, job.url).href });
    });
  }
}
process.exit(broken ? 2 : failed ? 1 : 0);
