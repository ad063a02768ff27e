//! The playlist a live stream produces, checked tag by tag against RFC 8216bis.

use hls::{Part, Query, Readiness, Skip, Window, format_date_time};

const T0: i64 = 1_764_000_000_000;

/// 2 s segments of six 1/3 s parts, the first of each independent.
fn window(segments: u64, extra_parts: usize) -> Window {
    let mut w = Window::new(1.0 / 3.0, 2.0, 20);
    for s in 0..segments {
        for p in 0..6 {
            w.push_part(
                Part {
                    duration: 1.0 / 3.0,
                    independent: p == 0,
                },
                T0 + s as i64 * 2000,
            );
        }
        w.finish_segment();
    }
    for p in 0..extra_parts {
        w.push_part(
            Part {
                duration: 1.0 / 3.0,
                independent: p == 0,
            },
            T0 + segments as i64 * 2000,
        );
    }
    w
}

#[test]
fn a_live_playlist_has_every_required_tag() {
    let text = window(4, 2).render(false);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    assert!(lines.contains(&"#EXT-X-VERSION:9"));
    assert!(lines.contains(&"#EXT-X-TARGETDURATION:2"));
    assert!(lines.contains(&"#EXT-X-MEDIA-SEQUENCE:0"));
    assert!(lines.contains(&"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.000"));
    assert!(lines.contains(&"#EXT-X-PART-INF:PART-TARGET=0.333"));
    assert!(lines.contains(&"#EXT-X-MAP:URI=\"init.mp4\""));
    assert!(lines.contains(&"#EXTINF:2.00000,"));
    assert!(lines.contains(&"seg3.m4s"));
    assert!(lines.contains(&"#EXT-X-PART:DURATION=0.33333,URI=\"part24.m4s\",INDEPENDENT=YES"));
    assert!(lines.contains(&"#EXT-X-PART:DURATION=0.33333,URI=\"part25.m4s\""));
    assert_eq!(lines.last(), Some(&"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part26.m4s\""));
    assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME:").count(), 5);
    assert!(text.contains(&format!("#EXT-X-PROGRAM-DATE-TIME:{}", format_date_time(T0))));
    // Parts only for segments that begin within the last three target durations (6 s of
    // the 8.67 s listed): not segments 0 and 1.
    assert!(
        !text.contains("\"part11.m4s") && text.contains("\"part12.m4s"),
        "{text}"
    );
    assert!(!text.contains("ENDLIST"));
}

#[test]
fn delta_updates_skip_what_is_older_than_can_skip_until() {
    let w = window(12, 1);
    let full = w.render(false);
    let delta = w.render(true);
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=6"), "{delta}");
    assert!(!delta.contains("\nseg5.m4s") && delta.contains("\nseg6.m4s"));
    assert!(full.contains("\nseg0.m4s") && !full.contains("EXT-X-SKIP"));
    // A short window has nothing old enough to skip.
    assert!(!window(3, 0).render(true).contains("EXT-X-SKIP"));
}

#[test]
fn blocking_requests_wait_for_their_part_and_refuse_the_far_future() {
    let w = window(2, 3); // segment 2 in progress with parts 0..=2
    let q = |msn: u64, part: Option<u32>| Query {
        msn: Some(msn),
        part,
        skip: Skip::No,
    };
    assert_eq!(w.readiness(&q(1, None)), Readiness::Ready);
    assert_eq!(w.readiness(&q(2, Some(2))), Readiness::Ready);
    assert_eq!(w.readiness(&q(2, Some(3))), Readiness::Wait);
    assert_eq!(
        w.readiness(&q(2, None)),
        Readiness::Wait,
        "a whole segment waits for its end"
    );
    assert_eq!(w.readiness(&q(4, Some(0))), Readiness::Wait);
    assert_eq!(w.readiness(&q(5, None)), Readiness::TooFar);
    assert_eq!(w.readiness(&Query::default()), Readiness::Ready);
}

#[test]
fn an_ended_stream_lists_its_segments_with_endlist_and_no_parts() {
    let mut w = window(2, 3);
    w.end();
    let text = w.render(false);
    assert!(text.ends_with("seg2.m4s\n#EXT-X-ENDLIST\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"));
    // Without parts, which leave memory soon after the end: the ended playlist stays true.
    assert!(!text.contains("#EXT-X-PART:"), "{text}");
    assert_eq!(
        w.readiness(&Query {
            msn: Some(99),
            part: None,
            skip: Skip::No
        }),
        Readiness::Ready
    );
}

#[test]
fn the_window_slides_and_dates_format() {
    let mut w = Window::new(0.5, 2.0, 3);
    for s in 0..5 {
        w.push_part(
            Part {
                duration: 2.0,
                independent: true,
            },
            T0,
        );
        let gone = w.finish_segment();
        assert_eq!(gone.map(|g| g.msn), (s >= 3).then(|| s - 3));
    }
    assert!(w.render(false).contains("#EXT-X-MEDIA-SEQUENCE:2"));
    assert_eq!(format_date_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_date_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
}

#[test]
fn parts_are_listed_on_the_last_three_segments_at_most() {
    // 1 s segments against a 2 s target: six of them begin within three target durations,
    // but only the last three entries (the one in progress counts) keep their parts.
    let mut w = Window::new(0.5, 2.0, 20);
    for s in 0..6 {
        for p in 0..2 {
            w.push_part(
                Part {
                    duration: 0.5,
                    independent: p == 0,
                },
                T0 + s * 1000,
            );
        }
        w.finish_segment();
    }
    w.push_part(
        Part {
            duration: 0.5,
            independent: true,
        },
        T0 + 6000,
    );
    let text = w.render(false);
    let with_parts: Vec<&str> = text
        .split("#EXTINF")
        .filter(|chunk| chunk.contains("#EXT-X-PART:"))
        .collect();
    assert_eq!(with_parts.len(), 3, "{text}");
    assert!(
        !text.contains("\"part7.m4s\"") && text.contains("\"part8.m4s\""),
        "{text}"
    );
}

#[test]
fn a_closing_stream_lists_its_last_parts_without_a_preload_hint() {
    let mut w = window(2, 3);
    w.closing = true;
    let text = w.render(false);
    assert!(text.contains("\"part14.m4s\""), "{text}");
    assert!(!text.contains("PRELOAD-HINT") && !text.contains("ENDLIST"), "{text}");
}
