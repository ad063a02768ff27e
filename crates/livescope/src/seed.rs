//! `livescope seed`: fills a data folder with a broadcaster and a large audience of
//! followers, for benchmarks. Followers get an unusable password (nobody can log in as
//! them); a sample of them gets sessions, whose tokens are written to a file so that a load
//! generator can hold their notification streams open.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::store::{Db, now_ms};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data folder of the server to be benchmarked (not running).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The server's PostgreSQL database, if it keeps its state there.
    #[arg(long, value_name = "URL", env = "LIVESCOPE_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// The broadcaster's name; the password is the name followed by "-password".
    #[arg(long, default_value = "star")]
    pub broadcaster: String,
    /// How many followers the broadcaster gets.
    #[arg(long, default_value_t = 10_000)]
    pub followers: usize,
    /// How many followers get a session (evenly spread, always including the last one the
    /// fan-out reaches).
    #[arg(long, default_value_t = 1_000)]
    pub sessions: usize,
    /// Where to write the sessions' tokens, one per line, in fan-out order.
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// Ended broadcasts (replays) the broadcaster gets, for the global list.
    #[arg(long, default_value_t = 0)]
    pub broadcasts: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // A tool of its own process: it uses the database directly.
    let store = Db::open_tool(&crate::store::Location::new(args.database.as_deref(), &args.data)?)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let hash = rt.block_on(crate::auth::hash_password(format!("{}-password", args.broadcaster)))?;
    let star = match store.create_user(&args.broadcaster, &hash)? {
        Some(user) => user,
        None => store
            .user_by_name(&args.broadcaster)?
            .context("the broadcaster exists")?,
    };
    let run = now_ms();
    // "!" is not a PHC string: no password verifies against it.
    let ids = store.create_users_unusable(&format!("f{run}_"), args.followers)?;
    for batch in ids.chunks(10_000) {
        store.follow_many(batch, star.id)?;
    }
    for i in 0..args.broadcasts {
        let id = format!("seed{run}x{i}");
        store.create_broadcast(
            &id,
            star.id,
            &crate::api::random_token(32),
            &format!("replay {i}"),
            None,
        )?;
        store.start(&id)?;
        store.end(&id)?;
    }
    let every = (args.followers / args.sessions.max(1)).max(1);
    let mut out = std::fs::File::create(&args.tokens).with_context(|| format!("creating {}", args.tokens.display()))?;
    let expires = now_ms() + 24 * 3600 * 1000;
    let chosen: Vec<i64> = ids
        .iter()
        .rev()
        .step_by(every)
        .take(args.sessions)
        .rev()
        .copied()
        .collect();
    for id in chosen {
        let token = format!("ses_{}", crate::api::random_token(40));
        store.create_session(id, &token, expires)?;
        writeln!(out, "{token}")?;
    }
    println!(
        "{} now has {} followers; {} sessions in {}",
        args.broadcaster,
        store.follow_counts(star.id)?.0,
        args.sessions.min(args.followers),
        args.tokens.display()
    );
    Ok(())
}
