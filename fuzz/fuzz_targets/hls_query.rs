//! LL-HLS delivery directives from hostile URLs, and playlists from hostile servers (as the
//! load generator and players read them): parsing never panics, and whatever parses can be
//! judged against a live window without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = hls::next_position(text);
    if let Ok(query) = hls::Query::parse(text) {
        let mut window = hls::Window::new(0.334, 2.0, 8);
        for i in 0..20 {
            window.push_part(hls::Part { duration: 0.334, independent: i % 6 == 0 }, 0);
            if i % 6 == 5 {
                window.finish_segment();
            }
        }
        let _ = window.readiness(&query);
        let _ = window.render(query.skip != hls::Skip::No);
    }
});
