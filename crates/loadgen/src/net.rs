//! Just enough client-side HTTP/1.1 and URL parsing for the load generator: one JSON POST
//! to livescope's API, and long GETs of HTTP-FLV with chunked transfer decoding.

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `rtmp://host:port/app/name` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// rtmps://: RTMP over TLS.
    pub tls: bool,
    /// The host name, as TLS checks the certificate against it.
    pub host: String,
    pub addr: String,
    pub app: String,
    pub name: String,
    /// The URL without the stream name, as `connect` carries it.
    pub tc_url: String,
}

impl RtmpUrl {
    pub fn parse(url: &str) -> anyhow::Result<RtmpUrl> {
        let (tls, rest) = match (url.strip_prefix("rtmp://"), url.strip_prefix("rtmps://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            _ => bail!("{url} is not an rtmp:// or rtmps:// URL"),
        };
        let (host, path) = rest
            .split_once('/')
            .with_context(|| format!("{url} has no /app/name path"))?;
        let (app, name) = path
            .split_once('/')
            .with_context(|| format!("{url} has no stream name"))?;
        // RTMPS has no port of its own: 443, as the big services use.
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:{}", if tls { 443 } else { 1935 })
        };
        let name_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
        Ok(RtmpUrl {
            tls,
            host: name_only.trim_start_matches('[').trim_end_matches(']').to_owned(),
            addr,
            app: app.to_owned(),
            name: name.to_owned(),
            tc_url: format!("{}://{host}/{app}", if tls { "rtmps" } else { "rtmp" }),
        })
    }
}

/// `http://host:port/path` split into address and path.
pub fn parse_http(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Ok((addr, format!("/{path}")))
}

/// POSTs a JSON body (with a bearer token, if given) and returns the status and the
/// response body.
pub async fn post_json(url: &str, body: &str, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let (addr, path) = parse_http(url)?;
    let mut socket = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").context("response without a header end")?;
    let status = parse_status(head)?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut decoder = Chunked::default();
        let mut out = Vec::new();
        decoder.decode(body.as_bytes(), &mut out)?;
        String::from_utf8_lossy(&out).into_owned()
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// POSTs JSON to livescope's API and returns the answer, which must be 201 Created.
async fn create(api: &str, path: &str, body: &str, token: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let (status, answer) = post_json(&format!("{api}{path}"), body, token).await?;
    if status != 201 {
        bail!("{path} answered {status}: {answer}");
    }
    Ok(serde_json::from_str(&answer)?)
}

/// Logs in to livescope at `api`; returns the session token.
pub async fn log_in(api: &str, username: &str, password: &str) -> anyhow::Result<String> {
    let credentials = serde_json::json!({ "username": username, "password": password }).to_string();
    let session = create(api, "/api/sessions", &credentials, None).await?;
    session["token"]
        .as_str()
        .map(str::to_owned)
        .context("a session without a token")
}

/// Registers a fresh account named `prefix_<random>` and logs in; returns its name and token.
pub async fn register(api: &str, prefix: &str) -> anyhow::Result<(String, String)> {
    let name = format!("{prefix}_{}", crate::random_token(8));
    let password = crate::random_token(20);
    let credentials = serde_json::json!({ "username": name, "password": password }).to_string();
    create(api, "/api/users", &credentials, None).await?;
    let token = log_in(api, &name, &password).await?;
    Ok((name, token))
}

/// Creates a broadcast as the holder of `token`; returns the API's answer.
pub async fn create_broadcast(api: &str, token: &str) -> anyhow::Result<serde_json::Value> {
    create(api, "/api/broadcasts", r#"{"title":"loadgen"}"#, Some(token)).await
}

pub fn parse_status(head: &str) -> anyhow::Result<u16> {
    let line = head.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))
}

/// An incremental decoder of `Transfer-Encoding: chunked` bodies.
#[derive(Debug, Default)]
pub struct Chunked {
    /// Bytes left in the current chunk's data.
    remaining: usize,
    /// Bytes of a size line (or of the CRLF after data) not yet complete.
    line: Vec<u8>,
    after_data: bool,
    pub done: bool,
}

impl Chunked {
    /// Appends the body bytes contained in `input` to `out`.
    pub fn decode(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        while !input.is_empty() && !self.done {
            if self.remaining > 0 {
                let n = self.remaining.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.remaining -= n;
                input = &input[n..];
                if self.remaining == 0 {
                    self.after_data = true;
                }
                continue;
            }
            let Some(end) = input.iter().position(|&b| b == b'\n') else {
                self.line.extend_from_slice(input);
                if self.line.len() > 1024 {
                    bail!("chunk size line too long");
                }
                return Ok(());
            };
            self.line.extend_from_slice(&input[..end]);
            input = &input[end + 1..];
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if self.after_data {
                self.after_data = false;
                if !line.is_empty() {
                    bail!("missing CRLF after chunk data");
                }
                continue;
            }
            let size = line.split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size.trim(), 16).with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                self.done = true;
            }
            self.remaining = size;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = RtmpUrl::parse("rtmp://127.0.0.1:1936/live/abc?x=1").unwrap();
        assert_eq!(
            (u.addr.as_str(), u.app.as_str(), u.name.as_str()),
            ("127.0.0.1:1936", "live", "abc?x=1")
        );
        assert_eq!(u.tc_url, "rtmp://127.0.0.1:1936/live");
        assert_eq!(RtmpUrl::parse("rtmp://h/live/k").unwrap().addr, "h:1935");
        assert!(RtmpUrl::parse("http://h/live/k").is_err());
        assert_eq!(
            parse_http("http://h:8/live/x.flv").unwrap(),
            ("h:8".into(), "/live/x.flv".into())
        );
    }

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Chunked::default();
            let mut out = Vec::new();
            d.decode(&wire[..split], &mut out).unwrap();
            d.decode(&wire[split..], &mut out).unwrap();
            assert_eq!(out, b"hello, world", "split at {split}");
            assert!(d.done);
        }
    }
}
