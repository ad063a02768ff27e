//! `livescope loadgen`: load and latency benchmarks against livescope or any RTMP server.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
