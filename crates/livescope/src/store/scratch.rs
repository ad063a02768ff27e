//! A throwaway PostgreSQL server, for tests and benchmarks: Debian's `postgresql` package
//! run from a temporary folder on a free loopback port, with durability off (nothing in it
//! outlives the run), stopped and deleted when dropped or when this process ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running scratch server.
pub struct ScratchPostgres {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    databases: AtomicU64,
}

impl ScratchPostgres {
    /// Makes a cluster in a new temporary folder and starts its server.
    pub fn start() -> anyhow::Result<ScratchPostgres> {
        let bin = bin_dir()?;
        remove_orphans();
        // Tests of one process may start several at once.
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "livescope-pg-{}-{}-{}",
            std::process::id(),
            crate::store::now_ms(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("socket"))?;
        // PostgreSQL refuses to run as root: as root, it runs as the package's user.
        let owner = if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = postgres_user()?;
            for d in [&dir, &dir.join("socket")] {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))?;
            }
            Some((uid, gid))
        } else {
            None
        };
        let run = |program: &str| {
            let mut cmd = Command::new(bin.join(program));
            if let Some((uid, gid)) = owner {
                std::os::unix::process::CommandExt::uid(&mut cmd, uid);
                std::os::unix::process::CommandExt::gid(&mut cmd, gid);
            }
            cmd.current_dir(&dir);
            cmd
        };
        let initdb = run("initdb")
            .args([
                "-D",
                "data",
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .output()
            .context("running initdb (is Debian's postgresql package installed?)")?;
        anyhow::ensure!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let socket = dir.join("socket");
        let mut server = run("postgres");
        server
            .args(["-D", "data", "-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&socket)
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=64MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("server.log"))?));
        // Stop the server if this process dies without dropping it: PostgreSQL's immediate
        // shutdown, when the thread that started it ends. That thread lives as long as the
        // process, so a test that finishes does not take the shared server with it.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut server, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("scratch-postgres".into())
            .spawn(move || {
                let _ = tx.send(server.spawn());
                loop {
                    std::thread::park();
                }
            })?;
        let child = rx.recv()?.context("starting postgres")?;
        let pg = ScratchPostgres {
            child: Some(child),
            dir,
            port,
            databases: AtomicU64::new(0),
        };
        pg.wait_ready()?;
        Ok(pg)
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub fn create_database(&self) -> anyhow::Result<String> {
        let name = format!("livescope_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        let admin = self.url("postgres");
        let statement = format!("CREATE DATABASE {name}");
        // The driver blocks on a runtime of its own: keep it off any async caller's thread.
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)?;
            client.batch_execute(&statement)?;
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("creating a database panicked"))??;
        Ok(self.url(&name))
    }

    /// The server's log, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = self.url("postgres");
        loop {
            let url = url.clone();
            let ready = std::thread::spawn(move || postgres::Client::connect(&url, postgres::NoTls).is_ok())
                .join()
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "postgres did not start within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGQUIT);
            }
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes the folders of scratch servers whose process has ended (a shared server lives
/// in a static, which is never dropped).
fn remove_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("livescope-pg-"))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The newest PostgreSQL's programs, where Debian puts them.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .with_context(|| {
            format!(
                "no PostgreSQL in {} (install Debian's postgresql package)",
                root.display()
            )
        })?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .with_context(|| format!("no PostgreSQL server in {}", root.display()))
}

/// The uid and gid of the `postgres` account Debian's package makes.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres") && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
        .context("no postgres account (install Debian's postgresql package)")
}
