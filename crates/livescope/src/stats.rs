//! `livescope stats`: this deployment's version of the measurement study's usage tables and
//! figures (broadcasts per day, how long they last, viewers per broadcast, hearts and
//! comments per broadcast, followers against viewers), read from the database. Prints
//! Markdown tables; with `--plot DIR`, draws the figures as SVG and PNG.

use std::path::PathBuf;

use anyhow::Context;

use crate::store::BroadcastUsage;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server's data folder (it may be running: the database is opened read-only).
    #[arg(long, value_name = "DIR", default_value = "./livescope-data")]
    pub data: PathBuf,
    /// The server's PostgreSQL database, if it keeps its state there.
    #[arg(long, value_name = "URL", env = "LIVESCOPE_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Draw the figures into this folder, as SVG and PNG.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

const DAY_MS: i64 = 24 * 3600 * 1000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let at = crate::store::Location::new(args.database.as_deref(), &args.data)?;
    if args.database.is_none() && !args.data.join("livescope.db").exists() {
        anyhow::bail!("no livescope database in {}", args.data.display());
    }
    let usage = crate::store::usage_in(&at)?;
    print!("{}", tables(&usage));
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        figures(&usage, dir)?;
        eprintln!("plots in {}", dir.display());
    }
    Ok(())
}

/// Broadcasts started on each day (UTC), from the first day to the last, empty days too.
pub fn per_day(usage: &[BroadcastUsage]) -> Vec<(i64, u64)> {
    let (Some(first), Some(last)) = (usage.first(), usage.last()) else {
        return Vec::new();
    };
    let (first, last) = (first.started_ms.div_euclid(DAY_MS), last.started_ms.div_euclid(DAY_MS));
    let mut days: Vec<(i64, u64)> = (first..=last).map(|d| (d, 0)).collect();
    for u in usage {
        days[(u.started_ms.div_euclid(DAY_MS) - first) as usize].1 += 1;
    }
    days
}

/// The usual summary of a distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

pub fn summary(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |p: f64| sorted[((p * sorted.len() as f64) as usize).min(sorted.len() - 1)];
    Some(Summary {
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        median: at(0.5),
        p90: at(0.9),
        max: sorted[sorted.len() - 1],
    })
}

/// The empirical distribution function: (value, share of values at or below it).
fn cdf(values: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, (i + 1) as f64 / n * 100.0))
        .collect()
}

/// Pearson's correlation, or None when either side does not vary.
pub fn correlation(pairs: &[(f64, f64)]) -> Option<f64> {
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

struct Columns {
    minutes: Vec<f64>,
    viewers: Vec<f64>,
    hearts: Vec<f64>,
    comments: Vec<f64>,
    followers_viewers: Vec<(f64, f64)>,
}

fn columns(usage: &[BroadcastUsage]) -> Columns {
    Columns {
        minutes: usage
            .iter()
            .filter_map(|u| u.duration_ms)
            .map(|d| d as f64 / 60_000.0)
            .collect(),
        viewers: usage.iter().map(|u| u.viewers as f64).collect(),
        hearts: usage.iter().map(|u| u.hearts as f64).collect(),
        comments: usage.iter().map(|u| u.comments as f64).collect(),
        followers_viewers: usage.iter().map(|u| (u.followers as f64, u.viewers as f64)).collect(),
    }
}

/// The tables, in Markdown.
pub fn tables(usage: &[BroadcastUsage]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let c = columns(usage);
    let days = per_day(usage);
    let _ = writeln!(out, "# Usage\n");
    let _ = writeln!(
        out,
        "{} broadcasts went live over {} days ({} ended, {:.1} hours of broadcast).\n",
        usage.len(),
        days.len(),
        c.minutes.len(),
        c.minutes.iter().sum::<f64>() / 60.0
    );
    let _ = writeln!(out, "| per broadcast | mean | median | 90th percentile | most |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (name, values) in [
        ("length (minutes)", &c.minutes),
        ("viewers", &c.viewers),
        ("hearts", &c.hearts),
        ("comments", &c.comments),
    ] {
        if let Some(s) = summary(values) {
            let _ = writeln!(
                out,
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
                s.mean, s.median, s.p90, s.max
            );
        }
    }
    if let Some(r) = correlation(&c.followers_viewers) {
        let _ = writeln!(
            out,
            "\nFollowers against viewers: Pearson's r = {r:.2} over {} broadcasts.",
            usage.len()
        );
    }
    let _ = writeln!(out, "\n| day (UTC) | broadcasts |\n|---|---|");
    for (day, count) in &days {
        let _ = writeln!(out, "| {} | {count} |", date(*day));
    }
    out
}

/// A day number since 1970 as YYYY-MM-DD (UTC).
fn date(day: i64) -> String {
    let mut text = ::hls::format_date_time(day * DAY_MS);
    text.truncate(10);
    text
}

/// The study's figures for this deployment.
fn figures(usage: &[BroadcastUsage], dir: &std::path::Path) -> anyhow::Result<()> {
    use crate::plot::{draw, scatter};
    let c = columns(usage);
    let days = per_day(usage);
    let first = days.first().map_or(0, |d| d.0);
    draw(
        dir,
        "broadcasts-per-day",
        "Broadcasts per day",
        &format!("day (0: {})", date(first)),
        "broadcasts",
        &[(
            "broadcasts".to_owned(),
            days.iter().map(|&(d, n)| ((d - first) as f64, n as f64)).collect(),
        )],
    )?;
    draw(
        dir,
        "length",
        "How long broadcasts last",
        "length (minutes)",
        "broadcasts at or below (%)",
        &[("broadcasts".to_owned(), cdf(&c.minutes))],
    )?;
    draw(
        dir,
        "audience",
        "Viewers, hearts and comments per broadcast",
        "per broadcast",
        "broadcasts at or below (%)",
        &[
            ("viewers".to_owned(), cdf(&c.viewers)),
            ("hearts".to_owned(), cdf(&c.hearts)),
            ("comments".to_owned(), cdf(&c.comments)),
        ],
    )?;
    scatter(
        dir,
        "followers-viewers",
        "Followers against viewers",
        "the broadcaster's followers",
        "viewers of the broadcast",
        &[("broadcasts".to_owned(), c.followers_viewers.clone())],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_and_the_summaries() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_788), "2026-12-01");
        assert_eq!(date(11_016), "2000-02-29");
        let s = summary(&[1.0, 2.0, 3.0, 4.0, 10.0]).unwrap();
        assert_eq!((s.mean, s.median, s.max), (4.0, 3.0, 10.0));
        assert!(summary(&[]).is_none());
        assert!((correlation(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.5)]).unwrap() - 1.0).abs() < 0.01);
        assert!(correlation(&[(1.0, 2.0), (1.0, 3.0)]).is_none());
    }

    #[test]
    fn usage_is_read_from_the_database_and_drawn() {
        use crate::store::DeliveryPath;
        for t in crate::store::testing::temp_stores("usage") {
            let store = &t.db;
            let star = store.create_user("star", "!").unwrap().unwrap();
            let quiet = store.create_user("quiet", "!").unwrap().unwrap();
            let fans = store.create_users_unusable("fan", 5).unwrap();
            store.follow_many(&fans, star.id).unwrap();
            for (id, owner) in [("b1", star.id), ("b2", quiet.id), ("b3", star.id)] {
                store
                    .create_broadcast(id, owner, &format!("key-{id}"), id, None)
                    .unwrap();
            }
            store.start("b1").unwrap();
            store.start("b2").unwrap();
            store.end("b2").unwrap();
            // b3 never went live: not a broadcast the study would count.
            store.join("b1", Some(fans[0]), "1.1.1.1", DeliveryPath::Hls);
            store.join("b1", Some(fans[0]), "1.1.1.1", DeliveryPath::Flv);
            store.join("b1", None, "2.2.2.2", DeliveryPath::Rtmp);
            store.flush_views();
            store.add_hearts("b1", &[(1, Some(1), 7), (2, None, 3)]).unwrap();
            store.add_comment(1, "b1", fans[1], "hi", Some(5), 1).unwrap();
            let usage = store.usage().unwrap();
            assert_eq!(usage.len(), 2, "{usage:?}");
            // Read-only from the folder, as `livescope stats` reads a running server's: the
            // same rows, and the live broadcast stays live.
            assert_eq!(crate::store::usage_in(&t.at).unwrap(), usage);
            assert_eq!(store.get("b1").unwrap().unwrap().state, crate::store::State::Live);
            let b1 = usage.iter().find(|u| u.duration_ms.is_none()).unwrap();
            assert_eq!((b1.viewers, b1.hearts, b1.comments, b1.followers), (2, 10, 1, 5));
            let b2 = usage.iter().find(|u| u.duration_ms.is_some()).unwrap();
            assert_eq!((b2.viewers, b2.hearts, b2.comments, b2.followers), (0, 0, 0, 0));
            let text = tables(&usage);
            assert!(text.contains("2 broadcasts went live over 1 days"), "{text}");
            assert!(text.contains("| viewers | 1.0 |"), "{text}");
            let plots = std::env::temp_dir().join(format!("livescope-usage-plots-{}", std::process::id()));
            std::fs::create_dir_all(&plots).unwrap();
            figures(&usage, &plots).unwrap();
            for name in ["broadcasts-per-day", "length", "audience", "followers-viewers"] {
                let png = std::fs::read(plots.join(format!("{name}.png"))).unwrap();
                assert!(png.starts_with(b"\x89PNG"), "{name}");
                assert!(plots.join(format!("{name}.svg")).exists(), "{name}");
            }
            std::fs::remove_dir_all(&plots).unwrap();
        }
    }
}
