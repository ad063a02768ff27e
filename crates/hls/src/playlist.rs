//! The sliding window of one live rendition and its media playlist (RFC 8216bis 4.4).

use std::collections::VecDeque;
use std::fmt::Write;

/// A partial segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe: a player can begin here.
    pub independent: bool,
}

/// A media segment: complete, or the one in progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub msn: u64,
    /// Number of its first part. Parts are numbered across segments, so the next part's
    /// URI is known before anyone knows whether it will start a new segment.
    pub first_part: u64,
    /// Wall-clock time of its first sample, milliseconds since the Unix epoch.
    pub date_time_ms: i64,
    pub parts: Vec<Part>,
}

impl Segment {
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

/// The segments a live playlist lists, and the one being produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// EXT-X-PART-INF PART-TARGET, seconds.
    pub part_target: f64,
    /// PART-HOLD-BACK, seconds: at least twice the part target (three by default).
    pub part_hold_back: f64,
    /// EXT-X-TARGETDURATION, whole seconds: fixed for the life of the playlist (RFC
    /// 8216bis 6.2.1), so the producer cuts every segment to round to at most this.
    pub target_duration: u32,
    /// Complete segments, oldest first.
    pub segments: VecDeque<Segment>,
    /// The segment being produced, if it has a part yet.
    pub current: Option<Segment>,
    /// No more segments will come (EXT-X-ENDLIST).
    pub ended: bool,
    /// No more parts will come, but the end is not announced yet: the playlist lists the
    /// last parts without a preload hint. Players (hls.js) that see the last media in one
    /// update and EXT-X-ENDLIST in the next play to the very end and fire `ended`; given
    /// both at once, they stop short of it.
    pub closing: bool,
    /// Complete segments kept in the playlist.
    pub max_segments: usize,
    next_msn: u64,
    next_part: u64,
}

/// The URI of the init segment, relative to the playlist.
pub const INIT_URI: &str = "init.mp4";

pub fn segment_uri(msn: u64) -> String {
    format!("seg{msn}.m4s")
}

/// Parts are named by their number across the whole stream.
pub fn part_uri(number: u64) -> String {
    format!("part{number}.m4s")
}

impl Window {
    /// `segment_target` is the shortest segment the producer cuts, in seconds.
    pub fn new(part_target: f64, segment_target: f64, max_segments: usize) -> Window {
        Window {
            part_target,
            part_hold_back: 3.0 * part_target,
            target_duration: segment_target.ceil().max(1.0) as u32,
            segments: VecDeque::new(),
            current: None,
            ended: false,
            closing: false,
            max_segments: max_segments.max(1),
            next_msn: 0,
            next_part: 0,
        }
    }

    /// The sequence number of the segment in progress (or the next one).
    pub fn next_msn(&self) -> u64 {
        self.current.as_ref().map_or(self.next_msn, |s| s.msn)
    }

    /// Appends a part to the segment in progress, starting one if needed; returns the
    /// part's number.
    pub fn push_part(&mut self, part: Part, date_time_ms: i64) -> u64 {
        let (msn, first_part) = (self.next_msn, self.next_part);
        self.current
            .get_or_insert_with(|| Segment {
                msn,
                first_part,
                date_time_ms,
                parts: Vec::new(),
            })
            .parts
            .push(part);
        self.next_part += 1;
        self.next_part - 1
    }

    /// The number the next part will have (the preload hint's).
    pub fn next_part(&self) -> u64 {
        self.next_part
    }

    /// Completes the segment in progress. Returns the segment that left the window, if any.
    pub fn finish_segment(&mut self) -> Option<Segment> {
        let segment = self.current.take()?;
        self.next_msn = segment.msn + 1;
        self.segments.push_back(segment);
        (self.segments.len() > self.max_segments)
            .then(|| self.segments.pop_front())
            .flatten()
    }

    /// Ends the stream: completes the segment in progress and adds EXT-X-ENDLIST.
    pub fn end(&mut self) {
        self.finish_segment();
        self.ended = true;
    }

    /// Whether the playlist holds segment `msn` and, if given, its part `part`.
    pub fn contains(&self, msn: u64, part: Option<u32>) -> bool {
        match &self.current {
            Some(cur) if msn == cur.msn => part.is_some_and(|p| (p as usize) < cur.parts.len()),
            Some(cur) => msn < cur.msn,
            None => msn < self.next_msn,
        }
    }

    /// A complete or in-progress segment by number.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        self.segments.iter().chain(&self.current).find(|s| s.msn == msn)
    }

    /// CAN-SKIP-UNTIL: six target durations, the least the spec allows.
    pub fn skip_until(&self) -> f64 {
        f64::from(self.target_duration) * 6.0
    }

    /// The media playlist; with `skip`, a delta update (EXT-X-SKIP) of it.
    pub fn render(&self, skip: bool) -> String {
        let mut out = String::with_capacity(1024);
        let first_msn = self.segments.front().map_or(self.next_msn(), |s| s.msn);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n",
            self.target_duration
        );
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.1},PART-HOLD-BACK={:.3}",
            self.skip_until(),
            self.part_hold_back.max(2.0 * self.part_target)
        );
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", self.part_target);
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{INIT_URI}\"");

        let total: f64 = self.segments.iter().chain(&self.current).map(Segment::duration).sum();
        // Parts are listed only for segments that begin within the last three target
        // durations (RFC 8216bis 6.2.2: older parts SHOULD go), with a millisecond's
        // grace for the sum of printed durations, and only on the last three segments
        // (the one in progress counts), which is how strict parsers read that rule.
        let parts_from = total - 3.0 * f64::from(self.target_duration) - 0.001;
        let listed = self.segments.len() + usize::from(self.current.is_some());
        let mut skipped = 0;
        let mut start = 0.0;
        for (index, segment) in self.segments.iter().enumerate() {
            // Only segments wholly older than the skip boundary (CAN-SKIP-UNTIL before the
            // end of the playlist) may be skipped.
            if skip && total - (start + segment.duration()) >= self.skip_until() {
                skipped += 1;
                start += segment.duration();
                continue;
            }
            if skipped > 0 {
                let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
                skipped = 0;
            }
            let end = start + segment.duration();
            // An ended playlist lists no parts: a replay needs only segments, and the ended
            // playlist must stay valid after the parts are gone from memory.
            let recent = start >= parts_from && listed - index <= 3;
            self.render_segment(&mut out, segment, !self.ended && recent);
            let _ = write!(
                out,
                "#EXTINF:{:.5},\n{}\n",
                segment.duration(),
                segment_uri(segment.msn)
            );
            start = end;
        }
        if let Some(current) = &self.current {
            self.render_segment(&mut out, current, true);
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        } else if !self.closing {
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                part_uri(self.next_part)
            );
        }
        out
    }

    fn render_segment(&self, out: &mut String, segment: &Segment, with_parts: bool) {
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            format_date_time(segment.date_time_ms)
        );
        if !with_parts {
            return;
        }
        for (i, part) in segment.parts.iter().enumerate() {
            let _ = write!(
                out,
                "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
                part.duration,
                part_uri(segment.first_part + i as u64)
            );
            out.push_str(if part.independent { ",INDEPENDENT=YES\n" } else { "\n" });
        }
    }
}

/// ISO 8601 UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants.
pub fn format_date_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Where a player following a live playlist goes next: the number of the part the preload
/// hint names, and the position (media sequence number, part index) a blocking request
/// asks for to see that part listed. `None` without a preload hint.
pub fn next_position(playlist: &str) -> Option<(u64, u64, u64)> {
    let hint = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))?;
    let number = hint
        .split("URI=\"part")
        .nth(1)?
        .trim_end_matches(".m4s\"")
        .parse()
        .ok()?;
    let first: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))?
        .trim()
        .parse()
        .ok()?;
    let lines: Vec<&str> = playlist.lines().collect();
    let complete = lines.iter().filter(|l| l.starts_with("seg")).count() as u64;
    // Parts listed after the last complete segment belong to the one in progress.
    let after = lines.iter().rposition(|l| l.starts_with("seg")).map_or(0, |i| i + 1);
    let parts = lines[after..].iter().filter(|l| l.starts_with("#EXT-X-PART:")).count() as u64;
    Some((number, first + complete, parts))
}
