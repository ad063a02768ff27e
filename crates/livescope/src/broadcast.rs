//! `livescope broadcast`: go live from a file, a pipe or a capture device, signed. ffmpeg
//! encodes (H.264 and AAC in FLV on a pipe; or an FLV stream comes on stdin as it is),
//! each video frame gets the signature records due (`signed::Signer`, in SEI units of the
//! frame itself), and the stream is published over RTMP or RTMPS. The account key is read from the
//! file `livescope keygen` wrote and never leaves this machine; a fresh session key,
//! certified by it for this broadcast and a few hours, signs the frames.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use flv::{AvcConfig, HevcConfig, TagKind, VideoCodec, VideoPacket, VideoTag};
use rtmp::MediaKind;
use signed::sei::Codec;
use signed::{SessionKey, Signer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use loadgen::net::RtmpUrl;
use loadgen::publisher;

/// How long a session key may sign: longer than any broadcast, short enough that a key
/// that leaked from a broadcaster's machine is soon worth nothing.
const SESSION_LIFETIME: Duration = Duration::from_secs(48 * 3600);
/// A record at least this often, in frames, whatever the GOP (a second at 30 fps).
pub const RECORD_EVERY_FRAMES: u32 = 30;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to publish: rtmp://HOST:PORT/live/<stream key>, or rtmps:// (TLS; port 443
    /// unless given).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// For rtmps://: PEM certificates to trust besides the system's (a server with a
    /// certificate of its own making).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// What to send: a file or capture device ffmpeg reads (see --format), or `-` for an
    /// FLV stream on stdin, sent as it is.
    #[arg(long, value_name = "INPUT")]
    pub input: String,
    /// ffmpeg's input format, for capture devices (e.g. v4l2, alsa, avfoundation).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Read the input as fast as it comes instead of at its own pace (for devices and live
    /// pipes, which are paced already).
    #[arg(long)]
    pub no_realtime: bool,
    /// The account key (`livescope keygen`); without it the broadcast goes out unsigned.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The broadcast's public id (the session certificate names it); needed with --key.
    #[arg(long, value_name = "ID", requires = "key")]
    pub id: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(broadcast(args))
}

async fn broadcast(args: Args) -> anyhow::Result<()> {
    let url = RtmpUrl::parse(&args.to)?;
    let session = match (&args.key, &args.id) {
        (Some(path), Some(id)) => {
            let account = crate::signing_key::load(path)?;
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let now = now_ms();
            // A minute of slack for a broadcaster's clock behind the viewers'.
            Some(SessionKey::new(
                &account,
                seed,
                id,
                now.saturating_sub(60_000),
                SESSION_LIFETIME.as_millis() as u64,
            ))
        }
        (Some(_), None) => bail!("--key needs --id, the broadcast's id, which the signatures name"),
        _ => None,
    };
    let mut encoder = None;
    let input: Box<dyn AsyncRead + Unpin> = if args.input == "-" {
        Box::new(tokio::io::stdin())
    } else {
        let mut cmd = tokio::process::Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
        if !args.no_realtime {
            cmd.arg("-re");
        }
        if let Some(format) = &args.format {
            cmd.args(["-f", format]);
        }
        cmd.args(["-i", &args.input]);
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ]);
        cmd.args(["-c:a", "aac", "-b:a", "128k", "-f", "flv", "pipe:1"]);
        let mut child = cmd
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting ffmpeg (is it installed?)")?;
        let stdout = child.stdout.take().context("ffmpeg's output")?;
        encoder = Some(child);
        Box::new(stdout)
    };
    let sent = publish(&url, args.ca.as_deref(), input, session).await?;
    if let Some(mut child) = encoder {
        let status = child.wait().await?;
        if !status.success() {
            bail!("ffmpeg failed ({status})");
        }
    }
    eprintln!("sent {sent} frames");
    Ok(())
}

/// Publishes the FLV stream `input` to `url`, signing it with `session` if given; returns
/// the number of frames sent.
/// A connection to publish on: TCP, or TLS over it.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// Connects to the server `url` names: over TLS for rtmps://, checking its certificate
/// against the system's roots and `ca`.
async fn connect(url: &RtmpUrl, ca: Option<&Path>) -> anyhow::Result<Box<dyn Connection>> {
    let tcp = TcpStream::connect(&url.addr)
        .await
        .with_context(|| format!("connecting to {}", url.addr))?;
    tcp.set_nodelay(true)?;
    if !url.tls {
        return Ok(Box::new(tcp));
    }
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))? {
            roots
                .add(cert.with_context(|| format!("a certificate in {}", ca.display()))?)
                .context("a certificate to trust")?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(url.host.clone()).with_context(|| format!("{} as a TLS name", url.host))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with {}", url.addr))?;
    Ok(Box::new(tls))
}

async fn publish(
    url: &RtmpUrl,
    ca: Option<&Path>,
    mut input: Box<dyn AsyncRead + Unpin>,
    session: Option<SessionKey>,
) -> anyhow::Result<u64> {
    let (mut socket, mut rtmp) = publisher::start_on(connect(url, ca).await?, url).await?;
    let mut demuxer = flv::Demuxer::new(16 << 20);
    let mut session = session;
    let mut signer: Option<Signer> = None;
    let (mut chunk, mut answer) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    let mut sent = 0u64;
    loop {
        // Read the encoder's output, answering the server (acknowledgements, pings) meanwhile.
        let n = tokio::select! {
            n = input.read(&mut chunk) => n?,
            n = publisher::read(&mut socket, &mut answer) => {
                let n = n?;
                if n == 0 {
                    bail!("the server closed the connection");
                }
                rtmp.handle_input(&answer[..n])?;
                while rtmp.poll_event().is_some() {}
                while let Some(out) = rtmp.poll_transmit() {
                    socket.write_all(&out).await?;
                }
                socket.flush().await?;
                continue;
            }
        };
        if n == 0 {
            break;
        }
        demuxer.push(&chunk[..n]);
        while let Some(tag) = demuxer.next_tag()? {
            let mut body = tag.body.to_vec();
            match tag.kind {
                TagKind::Video => {
                    let video = VideoTag::parse(&body)?;
                    let payload = &body[video.header_len.min(body.len())..];
                    match video.packet {
                        VideoPacket::SequenceHeader => {
                            // The configuration says the codec and the NAL length size.
                            if let Some(session) = session.take() {
                                let (codec, length_size) = match video.codec {
                                    VideoCodec::Avc => {
                                        (Codec::Avc, AvcConfig::parse(&payload.to_vec().into())?.nal_length_size)
                                    }
                                    VideoCodec::Hevc => (
                                        Codec::Hevc,
                                        HevcConfig::parse(&payload.to_vec().into())?.nal_length_size,
                                    ),
                                };
                                signer = Some(Signer::new(
                                    session,
                                    codec,
                                    usize::from(length_size),
                                    RECORD_EVERY_FRAMES,
                                ));
                            }
                        }
                        VideoPacket::Frame => {
                            if let Some(signer) = signer.as_mut() {
                                let signed = signer.video(
                                    u64::from(tag.timestamp),
                                    video.composition_time,
                                    video.keyframe,
                                    payload,
                                );
                                body.truncate(video.header_len);
                                body.extend_from_slice(&signed);
                            }
                        }
                        _ => {}
                    }
                }
                TagKind::Audio => {
                    if let (Some(signer), Ok(audio)) = (signer.as_mut(), flv::AudioTag::parse(&body))
                        && !audio.sequence_header
                    {
                        signer.audio(&body[audio.header_len.min(body.len())..]);
                    }
                }
                TagKind::Script => {}
            }
            let kind = match tag.kind {
                TagKind::Audio => MediaKind::Audio,
                TagKind::Video => MediaKind::Video,
                TagKind::Script => MediaKind::Data,
            };
            rtmp.send_media(kind, tag.timestamp, &body);
            sent += 1;
            while let Some(out) = rtmp.poll_transmit() {
                socket.write_all(&out).await?;
            }
            // TLS keeps what it could not send yet until told to flush.
            socket.flush().await?;
        }
    }
    rtmp.unpublish(&url.name);
    while let Some(out) = rtmp.poll_transmit() {
        socket.write_all(&out).await?;
    }
    socket.flush().await?;
    socket.shutdown().await.ok();
    Ok(sent)
}
