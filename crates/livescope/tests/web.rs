//! The web app, used the way people use it: Playwright drives Debian's Chromium (desktop
//! and phone viewports) through scripts/browser/webapp.mjs while ffmpeg publishes for real.
//! People register and log in through the pages, a broadcaster creates a broadcast in the
//! dashboard and goes live with the key it shows, viewers watch near the live edge, heart,
//! comment and vote, the broadcaster moderates, a follower is told, and the replay plays
//! with its comments at their moments. Screenshots of every page are saved under
//! `<cargo target tmp>/webapp/`.

mod common;

use std::process::Command;

use common::{Server, Tracks, clip};

fn run_flow(viewport: &str) -> serde_json::Value {
    let server = Server::start();
    // Long enough for the whole flow: the script stops the publisher itself.
    let clip = clip(Tracks::AudioVideo, 20, 800);
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("webapp");
    std::fs::create_dir_all(&out).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/browser/webapp.mjs");
    let result = Command::new("node")
        .arg(script)
        .args(["--base", &format!("http://{}", server.http)])
        .arg("--clip")
        .arg(&clip)
        .arg("--out")
        .arg(&out)
        .args(["--viewport", viewport])
        .output()
        .expect("node is installed (scripts/test.sh installs the browser check's packages)");
    assert!(
        result.status.success(),
        "the {viewport} flow failed:\n{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON report");
    serde_json::from_str(last).expect("the report is JSON")
}

/// Both viewports in one test, one after the other: two browsers with three contexts each
/// and two publishers at once would share two cores and blur the latency the flow checks.
#[test]
fn people_go_live_watch_react_and_replay_in_a_real_browser() {
    for viewport in ["desktop", "phone"] {
        let report = run_flow(viewport);
        eprintln!("{viewport}: {report}");
    }
}
