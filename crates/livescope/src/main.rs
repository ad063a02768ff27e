//! The `livescope` command: `serve` runs the server; `loadgen` measures any RTMP server.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use livescope::config::{Config, Settings};

#[derive(Parser)]
#[command(name = "livescope", version, about = "Self-hosted personal livestreaming")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: RTMP and HTTP ingest, RTMP and HTTP-FLV delivery, the API.
    Serve {
        /// A TOML file with the same settings as the flags; flags win.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Publish a generated clip and open many viewers against any RTMP server; report
    /// delivery latency, throughput, stalls and the server's CPU and memory.
    Loadgen(loadgen::Command),
    /// Fill a data folder with a broadcaster and many followers, for benchmarks.
    Seed(livescope::seed::Args),
    /// Go live from a file, a pipe or a capture device (ffmpeg encodes), signing every
    /// frame with your account key when given.
    Broadcast(livescope::broadcast::Args),
    /// Play a broadcast over RTMP or HTTP-FLV; with --verify, check its signatures against
    /// the broadcaster's keys and say whether it is theirs, unchanged.
    Watch(livescope::watch::Args),
    /// Replay arrival traces (or synthetic ones like the study's) through a model of a
    /// player: stall ratio, buffering delay and end-to-end delay for a chunk size, polling
    /// interval and pre-buffer, or a sweep of either.
    Sim(livescope::sim::Args),
    /// This deployment's usage, as the measurement study tabulated Periscope's: broadcasts
    /// per day, their length, viewers, hearts and comments per broadcast, followers against
    /// viewers; tables, and plots with --plot.
    Stats(livescope::stats::Args),
    /// Make an account key (Ed25519) for signing broadcasts: its secret half goes to a
    /// file readable by you only; register the public half it prints with `POST /api/keys`.
    Keygen {
        /// Where to write the secret key.
        #[arg(long, value_name = "FILE", default_value = "livescope.key")]
        out: PathBuf,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> anyhow::Result<()> {
    // glibc raises its mmap threshold to the size of the largest block freed, after which
    // blocks that size (argon2's 19 MiB per password check) come from the heap and stay
    // there: the process grew by about 10 MB per login. A fixed threshold keeps large
    // blocks in their own mappings, returned to the system when freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; nothing is allocated yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Serve { config, settings } => {
            let file = config
                .as_deref()
                .map(Settings::from_file)
                .transpose()?
                .unwrap_or_default();
            let config = Config::from(settings.over(file));
            tokio::runtime::Runtime::new()?.block_on(livescope::server::run(config))
        }
        Command::Loadgen(command) => loadgen::main(command),
        Command::Seed(args) => livescope::seed::run(args),
        Command::Broadcast(args) => livescope::broadcast::run(args),
        Command::Watch(args) => livescope::watch::run(args),
        Command::Sim(args) => livescope::sim::run(args),
        Command::Stats(args) => livescope::stats::run(args),
        Command::Keygen { out, force } => {
            let public = livescope::signing_key::generate(&out, force)?;
            println!("secret key written to {} (keep it there, secret)", out.display());
            println!("public key:  {}", public.to_base64());
            println!("fingerprint: {}", public.fingerprint());
            Ok(())
        }
    }
}
