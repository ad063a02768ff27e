//! Server configuration: one shape for the TOML file and the command-line flags, where a
//! flag overrides the file and the file overrides the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// Settings of `livescope serve`. Every field is optional here; [`Config`] fills defaults.
#[derive(Debug, Clone, Default, Args, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of the RTMP listener (publish and play) [default: 127.0.0.1:1935]
    #[arg(long, value_name = "ADDR")]
    pub rtmp: Option<SocketAddr>,
    /// Address of the HTTP listener (API, HTTP-FLV, HTTP ingest) [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Folder for the database and recordings [default: ./livescope-data]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Keep state in PostgreSQL (`postgres://user:password@host:port/database`), shared by
    /// every node of a cluster, instead of SQLite in the data folder [default: SQLite]
    #[arg(long, value_name = "URL", env = "LIVESCOPE_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
    /// Join the other nodes of the cluster through this NATS server, e.g.
    /// nats://10.0.0.9:4222 (with --database: the nodes share it)
    #[arg(long, value_name = "URL", requires = "database")]
    pub nats: Option<String>,
    /// This node's name among the nodes sharing the database (unique in the cluster)
    /// [default: the host name with --database, else local]
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// The URL other nodes and publishers reach this node's HTTP listener at, e.g.
    /// http://10.0.0.2:8080 [default: http://<the --http address>]
    #[arg(long, value_name = "URL")]
    pub advertise_http: Option<String>,
    /// The URL publishers reach this node's RTMP listener at, e.g. rtmp://10.0.0.2:1935
    /// [default: rtmp://<the --rtmp address>]
    #[arg(long, value_name = "URL")]
    pub advertise_rtmp: Option<String>,
    /// Where this node is (any name, e.g. eu-west), for sending publishers to a node
    /// near them
    #[arg(long, value_name = "NAME")]
    pub region: Option<String>,
    /// Host name put in the publish and watch URLs the API hands out
    /// [default: the Host header of the request]
    #[arg(long, value_name = "HOST")]
    pub public_host: Option<String>,
    /// Address of the RTMPS listener (publishing over TLS), when TLS is on
    /// [default: 127.0.0.1:1936]
    #[arg(long, value_name = "ADDR")]
    pub rtmps: Option<SocketAddr>,
    /// The IP address WebRTC publishers (WHIP) and viewers (WHEP) send media to: each
    /// peer connection gets a UDP port on it [default: the --http address's IP, or when
    /// that is unspecified, the address of the default route's interface]
    #[arg(long, value_name = "IP")]
    pub webrtc_ip: Option<std::net::IpAddr>,
    /// Certificate chain (PEM, leaf first) for HTTPS and RTMPS; with --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS and RTMPS with a self-signed certificate made at start (for
    /// development: clients must be told to accept it) [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tls_self_signed: Option<bool>,
    /// Most RTMP connections at once; more are refused [default: 20000]
    #[arg(long, value_name = "N")]
    pub max_rtmp_connections: Option<usize>,
    /// Most HTTP connections at once; more are refused [default: 20000]
    #[arg(long, value_name = "N")]
    pub max_http_connections: Option<usize>,
    /// Most connections from one client address to each listener; more are refused.
    /// Raise it when a proxy or CDN edge connects from one address [default: 256]
    #[arg(long, value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Milliseconds a frame may wait for the next ones so that each viewer gets them in
    /// one write: less CPU per viewer for at most this much more delay; 0 writes every
    /// frame at once [default: 10]
    #[arg(long, value_name = "MS")]
    pub push_batch_ms: Option<u64>,
    /// Send each frame to viewers at once (TCP_NODELAY) instead of letting TCP gather
    /// frames while earlier bytes await their acknowledgement: lower latency on long
    /// paths, more packets and CPU [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub tcp_nodelay: Option<bool>,
    /// Serve LL-HLS (`/hls/<id>/...`) [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub hls: Option<bool>,
    /// LL-HLS part target in milliseconds [default: 334]
    #[arg(long, value_name = "MS")]
    pub hls_part_ms: Option<u64>,
    /// LL-HLS segments are cut at the first keyframe after this many milliseconds, and
    /// EXT-X-TARGETDURATION is this rounded up to whole seconds [default: 2000]
    #[arg(long, value_name = "MS")]
    pub hls_segment_ms: Option<u64>,
    /// How far behind the live edge LL-HLS players should stay (PART-HOLD-BACK), in
    /// milliseconds; at least twice the part target [default: two part targets]
    #[arg(long, value_name = "MS")]
    pub hls_part_hold_back_ms: Option<u64>,
    /// Record broadcasts (LL-HLS segments in the data folder) so they stay watchable as
    /// replays [default: true]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub record: Option<bool>,
    /// Recordings older than this many hours are deleted [default: 168]
    #[arg(long, value_name = "HOURS")]
    pub retention_hours: Option<u64>,
}

impl Settings {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Settings in `self` win over those in `base`.
    pub fn over(self, base: Settings) -> Settings {
        Settings {
            rtmp: self.rtmp.or(base.rtmp),
            http: self.http.or(base.http),
            data: self.data.or(base.data),
            database: self.database.or(base.database),
            nats: self.nats.or(base.nats),
            node: self.node.or(base.node),
            advertise_http: self.advertise_http.or(base.advertise_http),
            advertise_rtmp: self.advertise_rtmp.or(base.advertise_rtmp),
            region: self.region.or(base.region),
            public_host: self.public_host.or(base.public_host),
            rtmps: self.rtmps.or(base.rtmps),
            webrtc_ip: self.webrtc_ip.or(base.webrtc_ip),
            tls_cert: self.tls_cert.or(base.tls_cert),
            tls_key: self.tls_key.or(base.tls_key),
            tls_self_signed: self.tls_self_signed.or(base.tls_self_signed),
            max_rtmp_connections: self.max_rtmp_connections.or(base.max_rtmp_connections),
            max_http_connections: self.max_http_connections.or(base.max_http_connections),
            max_connections_per_address: self.max_connections_per_address.or(base.max_connections_per_address),
            push_batch_ms: self.push_batch_ms.or(base.push_batch_ms),
            tcp_nodelay: self.tcp_nodelay.or(base.tcp_nodelay),
            hls: self.hls.or(base.hls),
            hls_part_ms: self.hls_part_ms.or(base.hls_part_ms),
            hls_segment_ms: self.hls_segment_ms.or(base.hls_segment_ms),
            hls_part_hold_back_ms: self.hls_part_hold_back_ms.or(base.hls_part_hold_back_ms),
            record: self.record.or(base.record),
            retention_hours: self.retention_hours.or(base.retention_hours),
        }
    }
}

/// Ten milliseconds of batching halve the writes of a typical 30 fps + AAC stream (73
/// frames a second become about 47 writes) and, measured, nearly halve the server's CPU per
/// viewer, while p99 delivery stays under 20 ms: invisible next to any player's buffer.
pub const DEFAULT_PUSH_BATCH_MS: u64 = 10;

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    pub data: PathBuf,
    /// A PostgreSQL URL; `None` keeps state in SQLite in `data`.
    pub database: Option<String>,
    /// The NATS server the cluster's nodes talk through.
    pub nats: Option<String>,
    /// This node's name, and the URLs it advertises (`None`: its listeners' addresses).
    pub node: String,
    pub advertise_http: Option<String>,
    pub advertise_rtmp: Option<String>,
    pub region: Option<String>,
    pub public_host: Option<String>,
    pub rtmps: SocketAddr,
    /// Where WebRTC media is received and sent; `None`: chosen from the HTTP listener.
    pub webrtc_ip: Option<std::net::IpAddr>,
    /// Where the TLS certificate comes from; `None` serves plain HTTP and RTMP only.
    pub tls: Option<crate::tls::Source>,
    pub max_rtmp_connections: usize,
    pub max_http_connections: usize,
    pub max_connections_per_address: usize,
    pub push_batch: std::time::Duration,
    pub tcp_nodelay: bool,
    /// LL-HLS settings; `None` when LL-HLS is off.
    pub hls: Option<crate::hls::Config>,
    pub record: bool,
    pub retention: std::time::Duration,
}

impl From<Settings> for Config {
    fn from(s: Settings) -> Config {
        Config {
            rtmp: s
                .rtmp
                .unwrap_or_else(|| "127.0.0.1:1935".parse().expect("valid address")),
            http: s
                .http
                .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid address")),
            data: s.data.unwrap_or_else(|| PathBuf::from("livescope-data")),
            database: s.database.clone(),
            nats: s.nats,
            // Nodes sharing a database need distinct names: by default, the machine's.
            node: s.node.unwrap_or_else(|| match &s.database {
                Some(_) => std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_owned())
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "local".into()),
                None => "local".into(),
            }),
            advertise_http: s.advertise_http,
            advertise_rtmp: s.advertise_rtmp,
            region: s.region,
            rtmps: s
                .rtmps
                .unwrap_or_else(|| "127.0.0.1:1936".parse().expect("valid address")),
            tls: match (s.tls_cert, s.tls_key, s.tls_self_signed) {
                (Some(cert), Some(key), _) => Some(crate::tls::Source::Files { cert, key }),
                (_, _, Some(true)) => Some(crate::tls::Source::SelfSigned {
                    names: vec![
                        // The name without a port.
                        s.public_host
                            .as_deref()
                            .and_then(|h| h.split(':').next())
                            .unwrap_or("localhost")
                            .to_owned(),
                        "localhost".into(),
                        "127.0.0.1".into(),
                    ],
                }),
                _ => None,
            },
            public_host: s.public_host,
            webrtc_ip: s.webrtc_ip,
            max_rtmp_connections: s.max_rtmp_connections.unwrap_or(20_000),
            max_http_connections: s.max_http_connections.unwrap_or(20_000),
            max_connections_per_address: s.max_connections_per_address.unwrap_or(256),
            push_batch: std::time::Duration::from_millis(s.push_batch_ms.unwrap_or(DEFAULT_PUSH_BATCH_MS)),
            tcp_nodelay: s.tcp_nodelay.unwrap_or(false),
            hls: s.hls.unwrap_or(true).then(|| {
                let part_target = s.hls_part_ms.map_or(crate::hls::DEFAULT_PART_TARGET, |ms| {
                    std::time::Duration::from_millis(ms.clamp(100, 2000))
                });
                crate::hls::Config {
                    part_target,
                    segment_target: s.hls_segment_ms.map_or(crate::hls::DEFAULT_SEGMENT_TARGET, |ms| {
                        std::time::Duration::from_millis(ms.clamp(500, 10_000))
                    }),
                    // RFC 8216bis 4.4.3.8: PART-HOLD-BACK is at least twice the part target.
                    part_hold_back: s
                        .hls_part_hold_back_ms
                        .map_or(part_target * crate::hls::DEFAULT_PART_HOLD_BACK_PARTS, |ms| {
                            std::time::Duration::from_millis(ms).max(part_target * 2)
                        }),
                }
            }),
            record: s.record.unwrap_or(true),
            retention: std::time::Duration::from_secs(s.retention_hours.unwrap_or(168) * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn a_flag_overrides_the_file_which_overrides_the_default() {
        let file: Settings = toml::from_str("rtmp = \"0.0.0.0:1936\"\nhttp = \"0.0.0.0:8081\"").unwrap();
        let flags = Cli::parse_from(["livescope", "--http", "127.0.0.1:9000"]).settings;
        let config = Config::from(flags.over(file));
        assert_eq!(config.rtmp, "0.0.0.0:1936".parse().unwrap());
        assert_eq!(config.http, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.data, PathBuf::from("livescope-data"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        assert!(toml::from_str::<Settings>("rmtp = \"0.0.0.0:1\"").is_err());
    }
}
