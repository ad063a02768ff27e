// Checks a signed broadcast in the browser, as `livescope watch --verify` does: the same
// records (crates/signed) read from the SEI units of the video the player downloads, the
// same hashes over the coded frames, Ed25519 signatures checked with WebCrypto against the
// broadcaster's keys from their profile. The player hands over the bytes it fetched (CMAF
// init segments and parts from hls.js, the FLV stream from mpegts.js); nothing is fetched
// twice. Works where WebCrypto has Ed25519 and the page is a secure context (https, or
// localhost).

const enc = new TextEncoder();
const RECORD_CONTEXT = enc.encode("livescope signature record v1");
const CERTIFICATE_CONTEXT = enc.encode("livescope session certificate v1");
const UUID = Uint8Array.from([0x38, 0x10, 0x94, 0x88, 0x85, 0x7e, 0x49, 0x6c, 0x9a, 0x70, 0xd7, 0xed, 0xa4, 0x5a, 0xde, 0x11]);
const VERSION = 1;
const KIND_CERTIFICATE = 1;
const KIND_RECORD = 2;
const MAX_PAYLOAD = 4096;
/// The longest stretch a broadcaster's signer makes (integrity.rs MAX_STRETCH_FRAMES).
const MAX_STRETCH_FRAMES = 60;
const MAX_AUDIO_QUEUE = 1024;
const ALIGN_TRIES = 3;

// --- bytes ---

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function be32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

export function base64Bytes(text) {
  const s = atob(text);
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

// --- SEI (crates/signed/src/sei.rs) ---

function unescape(nal) {
  const out = [];
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) { zeros = 0; continue; }
    zeros = b === 0 ? zeros + 1 : 0;
    out.push(b);
  }
  return Uint8Array.from(out);
}

function isSei(nal, codec) {
  if (!nal.length) return false;
  return codec === "hevc" ? ((nal[0] >> 1) & 0x3f) === 39 : (nal[0] & 0x1f) === 6;
}

/// The payloads of livescope's messages in one NAL unit, and whether it carries others'.
function messages(nal, codec) {
  const found = [];
  let foreign = false;
  if (!isSei(nal, codec)) return { found, foreign };
  const rbsp = unescape(nal.subarray(codec === "hevc" ? 2 : 1));
  let at = 0;
  const ff = () => {
    let v = 0;
    for (;;) {
      if (at >= rbsp.length) return null;
      const b = rbsp[at++];
      v += b;
      if (b !== 0xff) return v;
    }
  };
  while (at < rbsp.length && !(at === rbsp.length - 1 && rbsp[at] === 0x80)) {
    const kind = ff();
    const size = kind === null ? null : ff();
    if (size === null || at + size > rbsp.length) { foreign = true; break; }
    const body = rbsp.subarray(at, at + size);
    at += size;
    if (kind === 5 && body.length >= 16 && equal(body.subarray(0, 16), UUID) && body.length - 16 <= MAX_PAYLOAD) {
      found.push(body.slice(16));
    } else {
      foreign = true;
    }
  }
  return { found, foreign };
}

function* nalUnits(sample, lengthSize) {
  if (![1, 2, 4].includes(lengthSize)) return;
  let at = 0;
  while (at + lengthSize <= sample.length) {
    let len = 0;
    for (let i = 0; i < lengthSize; i++) len = len * 256 + sample[at + i];
    at += lengthSize;
    if (at + len > sample.length) return;
    yield sample.subarray(at, at + len);
    at += len;
  }
}

// --- the messages (crates/signed/src/record.rs) ---

function decodeMessage(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  const take = (n) => {
    if (at + n > b.length) throw new Error("truncated message");
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  const u32 = () => { take(4); return v.getUint32(at - 4); };
  const u64 = () => { take(8); return v.getBigUint64(at - 8); };
  const [version, kind] = take(2);
  if (version !== VERSION) throw new Error(`unknown version ${version}`);
  let m;
  if (kind === KIND_CERTIFICATE) {
    const accountKey = take(32);
    const sessionKey = take(32);
    const len = take(1)[0];
    const broadcast = new TextDecoder("utf-8", { fatal: true }).decode(take(len));
    const notBefore = u64();
    const notAfter = u64();
    m = { kind: "certificate", accountKey, sessionKey, broadcast, notBefore, notAfter, signed: b.subarray(2, at), signature: take(64) };
  } else if (kind === KIND_RECORD) {
    const session = take(8);
    const sequence = u64();
    take(8); u32(); // start and duration: signed, not needed here
    const videoFrames = u32();
    const videoHash = take(32);
    const audioFrames = u32();
    const audioHash = take(32);
    const previous = take(32);
    m = { kind: "record", session, sequence, videoFrames, videoHash, audioFrames, audioHash, previous, signed: b.subarray(2, at), signature: take(64) };
  } else {
    throw new Error(`unknown message kind ${kind}`);
  }
  if (at !== b.length) throw new Error("malformed trailing bytes");
  m.bytes = b;
  return m;
}

async function ed25519(key, context, signed, signature) {
  try {
    const k = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, k, signature, concat([context, signed]));
  } catch {
    return false;
  }
}

/// Whether this browser can check signatures at all.
export async function supported() {
  if (!globalThis.isSecureContext || !crypto?.subtle) return false;
  try {
    await crypto.subtle.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch (e) {
    return e?.name === "DataError"; // the algorithm is known; only that key was not a point
  }
}

// --- the verifier (crates/signed/src/stream.rs) ---

/// Hashes the video frames of one stretch (FrameHasher::video): decode time relative to
/// the first frame, composition offset, keyframe flag, length and coded data, all kept until
/// the record comes (WebCrypto hashes whole buffers only).
class VideoHash {
  parts = [];
  frames = 0;
  first = null;

  add(dts, cts, key, coded) {
    this.first ??= dts;
    const head = new Uint8Array(13);
    const v = new DataView(head.buffer);
    v.setUint32(0, (dts - this.first) >>> 0);
    v.setInt32(4, cts);
    head[8] = key ? 1 : 0;
    v.setUint32(9, coded.length);
    this.parts.push(head, coded);
    this.frames++;
  }

  async finish() {
    return [this.frames, await sha256(concat(this.parts))];
  }
}

/// One stream's signatures, checked in arrival order; `verdict` is
/// {state: "not_yet_verified"|"verified"|"unsigned"|"tampered", records, atMs, reason}.
export class Verifier {
  constructor({ trusted, broadcast, codec, lengthSize, live = true }) {
    Object.assign(this, { trusted, broadcast, codec, lengthSize, live });
    this.unsignedAfter = MAX_STRETCH_FRAMES * 2;
    this.session = null;
    this.video = new VideoHash();
    this.stretchStart = null;
    this.whole = false;
    this.last = null;
    this.audio = [];
    this.cursor = null;
    this.alignFailures = 0;
    this.searchedAt = 0;
    this.pending = [];
    this.framesWithoutRecord = 0;
    this.certified = null;
    this.verdict = { state: "not_yet_verified", records: 0 };
  }

  tampered(atMs, reason) {
    if (this.verdict.state !== "tampered") this.verdict = { state: "tampered", atMs, reason, records: this.verdict.records };
  }

  verified() {
    if (this.verdict.state === "tampered") return;
    this.verdict = { state: "verified", records: (this.verdict.state === "verified" ? this.verdict.records : 0) + 1 };
  }

  codedData(sample) {
    const parts = [];
    for (const unit of nalUnits(sample, this.lengthSize)) {
      const { found, foreign } = messages(unit, this.codec);
      if (found.length && !foreign) continue;
      parts.push(be32(unit.length), unit);
    }
    return concat(parts);
  }

  async certificate(c, dts, now) {
    let problem = null;
    if (!this.trusted.some((k) => equal(k, c.accountKey))) problem = "a certificate from a key the broadcaster has not registered (or revoked)";
    else if (c.broadcast !== this.broadcast) problem = "a certificate for another broadcast";
    else if (this.live && !(BigInt(now) >= c.notBefore && BigInt(now) <= c.notAfter)) problem = "a certificate outside its validity (or a clock far off)";
    else if (this.certified === hex(c.bytes)) problem = null;
    else if (!(await ed25519(c.accountKey, CERTIFICATE_CONTEXT, c.signed, c.signature))) problem = "a certificate with a bad signature";
    else this.certified = hex(c.bytes);
    if (problem) return this.tampered(dts, problem);
    if (!this.session || !equal(this.session, c.sessionKey)) {
      // A new session starts its own chain, and its first stretch at this frame.
      this.session = c.sessionKey;
      this.last = null;
      this.video = new VideoHash();
      this.stretchStart = null;
      this.realignAudio();
    }
  }

  async record(r, dts) {
    const video = await this.video.finish();
    this.video = new VideoHash();
    const start = this.stretchStart ?? dts;
    this.stretchStart = null;
    const whole = this.whole;
    this.whole = false;
    if (!this.session) return; // joined before a certificate
    if (this.verdict.state === "unsigned") return this.tampered(start, "unsigned for a while, then signed");
    const id = (await sha256(this.session)).subarray(0, 8);
    if (!equal(id, r.session)) {
      this.realignAudio();
      return this.tampered(start, "bad signature on the record (another session's)");
    }
    if (!(await ed25519(this.session, RECORD_CONTEXT, r.signed, r.signature))) {
      this.realignAudio();
      return this.tampered(start, "bad signature on the record");
    }
    if (this.last && (r.sequence !== this.last.sequence + 1n || !equal(r.previous, this.last.digest))) {
      // Records missing: the chain goes on from this one; never backwards (a replay).
      if (r.sequence > this.last.sequence) this.last = { sequence: r.sequence, digest: await sha256(r.bytes) };
      this.realignAudio();
      return this.tampered(start, "a record missing, repeated or out of order");
    }
    const anchored = this.last !== null;
    this.last = { sequence: r.sequence, digest: await sha256(r.bytes) };
    if (!whole && anchored) {
      this.realignAudio();
      return this.tampered(start, "a record that covers no frames seen whole");
    }
    if (!whole) return;
    const matched = r.videoFrames === video[0] && equal(r.videoHash, video[1]);
    // A record whose video did not match still places its audio run, unchecked.
    this.pending.push({ check: matched, start, audioFrames: r.audioFrames, audioHash: r.audioHash });
    await this.checkAudio();
    if (!matched) this.tampered(start, "video frames differ from what was signed");
  }

  realignAudio() {
    this.pending = [];
    this.cursor = null;
    this.searchedAt = 0;
    this.alignFailures = 0;
  }

  async runHash(from, n) {
    return sha256(concat(this.audio.slice(from, from + n)));
  }

  async checkAudio() {
    const empty = await sha256(new Uint8Array(0));
    while (this.pending.length) {
      const p = this.pending[0];
      const n = p.audioFrames;
      if (n === 0 && equal(p.audioHash, empty)) {
        if (this.pending.shift().check) this.verified();
        continue;
      }
      let start;
      if (this.cursor !== null) {
        if (this.audio.length < this.cursor + n) return; // not all arrived yet
        if (p.check && !equal(await this.runHash(this.cursor, n), p.audioHash)) {
          this.tampered(p.start, "audio frames differ from what was signed");
          this.realignAudio();
          return;
        }
        start = this.cursor;
      } else if (!p.check) {
        this.pending.shift();
        continue;
      } else {
        if (this.audio.length < n || this.audio.length < this.searchedAt + 8) return;
        this.searchedAt = this.audio.length;
        let found = null;
        let again = false;
        for (let s = 0; s + n <= this.audio.length && !again; s++) {
          if (equal(await this.runHash(s, n), p.audioHash)) {
            if (found === null) found = s;
            else again = true;
          }
        }
        if (again) {
          // Matches in more than one place (silence): it checks out; the next run that is
          // unique says where the runs are.
          this.pending.shift();
          this.searchedAt = 0;
          this.verified();
          continue;
        }
        if (found === null) {
          if (this.audio.length < n + 64) return;
          if (++this.alignFailures >= ALIGN_TRIES) {
            this.tampered(p.start, "audio frames differ from what was signed");
            this.realignAudio();
            return;
          }
          this.pending.shift();
          continue;
        }
        start = found;
      }
      this.audio.splice(0, start + n);
      this.cursor = 0;
      this.searchedAt = 0;
      if (this.pending.shift().check) this.verified();
    }
  }

  /// A video frame: decode time and composition offset in ms, its sample (NAL units behind
  /// lengths), at wall-clock `now` (ms).
  async videoFrame(dts, cts, key, sample, now = Date.now()) {
    const found = [];
    for (const unit of nalUnits(sample, this.lengthSize)) found.push(...messages(unit, this.codec).found);
    let records = 0;
    let certificates = 0;
    this.framesWithoutRecord++;
    for (const payload of found) {
      let m;
      try {
        m = decodeMessage(payload);
      } catch (e) {
        this.tampered(dts, `an unreadable signature message: ${e.message}`);
        continue;
      }
      if (m.kind === "certificate") {
        certificates++;
        await this.certificate(m, dts, now);
      }
      else if (++records > 1) this.tampered(dts, "two records in one frame");
      else {
        this.framesWithoutRecord = 0;
        await this.record(m, dts);
      }
    }
    if (key && records > 0 && certificates === 0) this.tampered(dts, "a keyframe without its certificate");
    if (this.framesWithoutRecord > this.unsignedAfter) {
      if (this.verdict.state === "not_yet_verified") this.verdict = { state: "unsigned", records: 0 };
      else if (this.verdict.state === "verified") this.tampered(dts, "signatures stopped");
    }
    if (this.stretchStart === null) {
      this.stretchStart = dts;
      this.whole = found.length > 0;
    }
    this.video.add(dts, cts, key, this.codedData(sample));
  }

  async audioFrame(coded) {
    this.audio.push(await sha256(coded));
    if (this.audio.length > MAX_AUDIO_QUEUE) {
      this.audio.shift();
      if (this.cursor !== null) this.cursor = Math.max(0, this.cursor - 1);
      this.searchedAt = Math.max(0, this.searchedAt - 1);
    }
    await this.checkAudio();
  }
}

// --- containers ---

/// ISO BMFF boxes of `b` from `at` to `end`: [type, start of body, end].
function* boxes(b, at = 0, end = b.length) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  while (at + 8 <= end) {
    let size = v.getUint32(at);
    const type = String.fromCharCode(b[at + 4], b[at + 5], b[at + 6], b[at + 7]);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > end) return;
      size = Number(v.getBigUint64(at + 8));
      body = at + 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < body - at || at + size > end) return;
    yield [type, body, at + size];
    at += size;
  }
}

const child = (b, type, at, end) => {
  for (const box of boxes(b, at, end)) if (box[0] === type) return box;
  return null;
};

/// The tracks of a CMAF init segment: id → {kind: "video"|"audio", timescale, codec, lengthSize}.
export function initTracks(b) {
  const tracks = new Map();
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const moov = child(b, "moov");
  if (!moov) return tracks;
  for (const [type, at, end] of boxes(b, moov[1], moov[2])) {
    if (type !== "trak") continue;
    const tkhd = child(b, "tkhd", at, end);
    const mdia = child(b, "mdia", at, end);
    if (!tkhd || !mdia) continue;
    const id = v.getUint32(tkhd[1] + (b[tkhd[1]] === 1 ? 20 : 12));
    const mdhd = child(b, "mdhd", mdia[1], mdia[2]);
    const hdlr = child(b, "hdlr", mdia[1], mdia[2]);
    if (!mdhd || !hdlr) continue;
    const timescale = v.getUint32(mdhd[1] + (b[mdhd[1]] === 1 ? 20 : 12));
    const handler = String.fromCharCode(...b.subarray(hdlr[1] + 8, hdlr[1] + 12));
    const track = { kind: handler === "vide" ? "video" : handler === "soun" ? "audio" : "other", timescale };
    const minf = child(b, "minf", mdia[1], mdia[2]);
    const stbl = minf && child(b, "stbl", minf[1], minf[2]);
    const stsd = stbl && child(b, "stsd", stbl[1], stbl[2]);
    if (stsd && track.kind === "video") {
      // The first sample entry: 8 bytes of stsd header, then the entry; its children
      // follow 78 bytes of visual sample entry fields.
      for (const [entry, eAt, eEnd] of boxes(b, stsd[1] + 8, stsd[2])) {
        const config = entry === "avc1" || entry === "avc3" ? child(b, "avcC", eAt + 78, eEnd)
          : entry === "hvc1" || entry === "hev1" ? child(b, "hvcC", eAt + 78, eEnd) : null;
        if (!config) continue;
        track.codec = entry.startsWith("avc") ? "avc" : "hevc";
        const byte = track.codec === "avc" ? b[config[1] + 4] : b[config[1] + 21];
        track.lengthSize = (byte & 3) + 1;
        break;
      }
    }
    tracks.set(id, track);
  }
  return tracks;
}

/// The samples of CMAF fragments: {track, dts, duration, cts (ticks), key, data}.
export function fragmentSamples(b) {
  const out = [];
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (const [type, mAt, mEnd] of boxes(b)) {
    if (type !== "moof") continue;
    const moofStart = mAt - 8;
    for (const [t, at, end] of boxes(b, mAt, mEnd)) {
      if (t !== "traf") continue;
      const tfhd = child(b, "tfhd", at, end);
      const tfdt = child(b, "tfdt", at, end);
      if (!tfhd || !tfdt) continue;
      const flags = v.getUint32(tfhd[1]) & 0xffffff;
      const track = v.getUint32(tfhd[1] + 4);
      let p = tfhd[1] + 8;
      if (flags & 0x1) continue; // explicit base offsets: not what livescope writes
      if (flags & 0x2) p += 4;
      const defDuration = flags & 0x8 ? v.getUint32((p += 4) - 4) : 0;
      const defSize = flags & 0x10 ? v.getUint32((p += 4) - 4) : 0;
      const defFlags = flags & 0x20 ? v.getUint32((p += 4) - 4) : 0;
      let dts = b[tfdt[1]] === 1 ? Number(v.getBigUint64(tfdt[1] + 4)) : v.getUint32(tfdt[1] + 4);
      for (const [rt, rAt, rEnd] of boxes(b, at, end)) {
        if (rt !== "trun") continue;
        const version = b[rAt];
        const rflags = v.getUint32(rAt) & 0xffffff;
        const count = v.getUint32(rAt + 4);
        let q = rAt + 8;
        if (!(rflags & 0x1)) continue;
        let data = moofStart + v.getInt32(q);
        q += 4;
        let first = null;
        if (rflags & 0x4) { first = v.getUint32(q); q += 4; }
        for (let i = 0; i < count && q <= rEnd; i++) {
          const duration = rflags & 0x100 ? v.getUint32((q += 4) - 4) : defDuration;
          const size = rflags & 0x200 ? v.getUint32((q += 4) - 4) : defSize;
          let sflags = rflags & 0x400 ? v.getUint32((q += 4) - 4) : defFlags;
          if (i === 0 && first !== null) sflags = first;
          const cts = rflags & 0x800 ? (version === 0 ? v.getUint32((q += 4) - 4) : v.getInt32((q += 4) - 4)) : 0;
          if (q > rEnd || data + size > b.length) break;
          out.push({ track, dts, duration, cts, key: (sflags & 0x10000) === 0, data: b.subarray(data, data + size) });
          data += size;
          dts += duration;
        }
      }
    }
  }
  return out;
}

/// Reads an FLV byte stream as it arrives: calls `onTag(type, timestampMs, body)`.
export class FlvReader {
  buf = new Uint8Array(0);
  headerDone = false;

  constructor(onTag) {
    this.onTag = onTag;
  }

  push(chunk) {
    this.buf = this.buf.length ? concat([this.buf, chunk]) : chunk;
    let at = 0;
    if (!this.headerDone) {
      if (this.buf.length < 13) return;
      at = ((this.buf[5] << 24) | (this.buf[6] << 16) | (this.buf[7] << 8) | this.buf[8]) + 4;
      this.headerDone = true;
    }
    const b = this.buf;
    while (at + 11 <= b.length) {
      const size = (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
      if (at + 11 + size + 4 > b.length) break;
      const ts = ((b[at + 7] << 24) | (b[at + 4] << 16) | (b[at + 5] << 8) | b[at + 6]) >>> 0;
      this.onTag(b[at] & 0x1f, ts, b.subarray(at + 11, at + 11 + size));
      at += 11 + size + 4;
    }
    this.buf = b.slice(at);
  }
}

// --- a broadcast's check, fed by a player ---

/// Checks one broadcast as a player plays it. `keys`: the broadcaster's account keys in
/// force (base64); `onChange(verdict)` is told each change. Call `fmp4(bytes)` with every
/// init segment, part or segment hls.js loads, `flvStart()` and `flv(bytes)` with an FLV
/// stream. A jump in the media (a seek, hls.js skipping ahead to catch up) starts a fresh
/// check, as a viewer joining there would; a stretch once found tampered stays so.
export class BroadcastCheck {
  constructor({ keys, broadcast, live = true, onChange }) {
    this.trusted = keys.map(base64Bytes);
    Object.assign(this, { broadcast, live, onChange });
    this.tampered = null;
    this.verifier = null;
    this.queue = Promise.resolve();
    this.tracks = null;
    this.lastVideo = null; // {dts, duration} in ticks
    this.lastAudio = -Infinity;
    this.recent = new Map(); // decode time -> sample, of the last video frames checked
    this.shown = null;
  }

  get verdict() {
    // After a jump the fresh check says "checking" until its first whole record: what
    // comes after a jump has not been checked yet, whatever came before.
    return this.tampered ?? this.verifier?.verdict ?? { state: "not_yet_verified", records: 0 };
  }

  fresh(codec, lengthSize) {
    const old = this.verifier?.verdict;
    if (old?.state === "tampered") this.tampered ??= old;
    this.verifier = new Verifier({ trusted: this.trusted, broadcast: this.broadcast, codec, lengthSize, live: this.live });
  }

  /// Runs `work` after everything before it (WebCrypto answers asynchronously).
  run(work) {
    this.queue = this.queue.then(work).catch((e) => console.warn("signature check:", e)).then(() => this.tell());
  }

  tell() {
    const v = this.verdict;
    const key = `${v.state}/${v.records}/${v.atMs ?? ""}`;
    if (key !== this.shown) {
      this.shown = key;
      this.onChange?.(v);
    }
  }

  fmp4(bytes) {
    this.run(async () => {
      const tracks = initTracks(bytes);
      if (tracks.size) {
        const video = [...tracks.values()].find((t) => t.kind === "video" && t.codec);
        if (video && (!this.verifier || this.verifier.codec !== video.codec || this.verifier.lengthSize !== video.lengthSize)) {
          this.fresh(video.codec, video.lengthSize);
          this.lastVideo = null;
          this.lastAudio = -Infinity;
        }
        this.tracks = tracks;
        return;
      }
      if (!this.tracks || !this.verifier) return;
      const samples = fragmentSamples(bytes);
      const first = samples.find((s) => this.tracks.get(s.track)?.kind === "video");
      if (first && this.lastVideo && first.dts > this.lastVideo.dts + this.lastVideo.duration) {
        // Media skipped: what comes next is checked as by a viewer joining there.
        this.fresh(this.verifier.codec, this.verifier.lengthSize);
        this.lastAudio = -Infinity;
      }
      for (const s of samples) {
        const track = this.tracks.get(s.track);
        if (track?.kind === "video") {
          if (this.lastVideo && s.dts <= this.lastVideo.dts) {
            // Loaded twice (a part, then its segment): the same frame, or a forgery that
            // the player may put in place of the one checked.
            const seen = this.recent.get(s.dts);
            if (seen && !equal(seen, s.data)) {
              this.tampered ??= { state: "tampered", atMs: Math.trunc((s.dts * 1000) / track.timescale), reason: "a frame sent again with other contents", records: this.verdict.records };
            }
            continue;
          }
          this.recent.set(s.dts, s.data);
          if (this.recent.size > 600) this.recent.delete(this.recent.keys().next().value);
          this.lastVideo = { dts: s.dts, duration: s.duration };
          const ms = (t) => Math.trunc((t * 1000) / track.timescale);
          await this.verifier.videoFrame(ms(s.dts), ms(s.cts), s.key, s.data);
        } else if (track?.kind === "audio") {
          if (s.dts <= this.lastAudio) continue;
          this.lastAudio = s.dts;
          await this.verifier.audioFrame(s.data);
        }
      }
    });
  }

  /// A new FLV stream begins (a player connecting or reconnecting).
  flvStart() {
    const reader = new FlvReader((type, ts, body) => this.flvTag(type, ts, body));
    // A new connection starts at a keyframe of its own: checked as a viewer joining there.
    this.run(() => { this.flvReader = reader; this.flvFresh = true; });
  }

  flv(bytes) {
    this.run(() => this.flvReader?.push(bytes));
    // Tags are checked in order behind the reader; see flvTag.
  }

  flvTag(type, ts, body) {
    // Called synchronously by the reader inside run(): queue each tag's check in order.
    const b = body.slice();
    this.queue = this.queue.then(async () => {
      if (type === 9 && b.length > 1) {
        const ex = b[0] & 0x80;
        const frameType = (b[0] >> 4) & 7;
        let codec, packet, cts = 0, data;
        if (ex) {
          const fourcc = String.fromCharCode(b[1], b[2], b[3], b[4]);
          codec = fourcc === "avc1" ? "avc" : fourcc === "hvc1" ? "hevc" : null;
          packet = b[0] & 0x0f;
          if (packet === 1) { cts = ((b[5] << 16) | (b[6] << 8) | b[7]) << 8 >> 8; data = b.subarray(8); }
          else if (packet === 3) { data = b.subarray(5); packet = 1; }
          else if (packet === 0) data = b.subarray(5);
        } else {
          codec = (b[0] & 0x0f) === 7 ? "avc" : (b[0] & 0x0f) === 12 ? "hevc" : null;
          packet = b[1];
          cts = ((b[2] << 16) | (b[3] << 8) | b[4]) << 8 >> 8;
          data = b.subarray(5);
        }
        if (!codec || !data) return;
        if (packet === 0 && (!this.verifier || this.flvFresh)) {
          const byte = codec === "avc" ? data[4] : data[21];
          if (byte !== undefined) this.fresh(codec, (byte & 3) + 1);
          this.flvFresh = false;
        } else if (packet === 1 && this.verifier) {
          await this.verifier.videoFrame(ts, cts, frameType === 1, data);
        }
      } else if (type === 8 && b.length > 1 && this.verifier && b[0] >> 4 === 10 && b[1] === 1) {
        // AAC raw frames: the only audio livescope relays.
        await this.verifier.audioFrame(b.subarray(2));
      }
    }).catch((e) => console.warn("signature check:", e)).then(() => this.tell());
  }
}
