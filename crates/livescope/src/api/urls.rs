//! Where this node is reached, as the API writes it into publish and watch URLs and
//! session cookies.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

/// The listeners' ports, the configured public host and whether HTTP speaks TLS.
#[derive(Clone)]
pub struct Urls {
    /// `--public-host`, when set; else the request's Host header names the host.
    public_host: Option<String>,
    /// Where HTTP was bound: the host of last resort.
    http_ip: IpAddr,
    http_port: u16,
    rtmp_port: u16,
    rtmps_port: Option<u16>,
    tls: bool,
}

impl Urls {
    pub fn new(
        public_host: Option<String>,
        http: SocketAddr,
        rtmp: SocketAddr,
        rtmps: Option<SocketAddr>,
        tls: bool,
    ) -> Urls {
        Urls {
            public_host,
            http_ip: http.ip(),
            http_port: http.port(),
            rtmp_port: rtmp.port(),
            rtmps_port: rtmps.map(|a| a.port()),
            tls,
        }
    }

    /// The host name for URLs: configured, else the request's Host header without its port.
    pub fn host(&self, headers: &HeaderMap) -> String {
        if let Some(host) = &self.public_host {
            return host.clone();
        }
        let from_header = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|h| {
            match h.rsplit_once(':') {
                // Keep IPv6 literals whole: "[::1]:8080" -> "[::1]".
                Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_owned(),
                _ => h.to_owned(),
            }
        });
        from_header
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c)))
            .unwrap_or_else(|| self.http_ip.to_string())
    }

    /// `https` when the HTTP listener speaks TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// A cookie's `Secure` attribute, when HTTP speaks TLS.
    pub fn secure_cookie(&self) -> &'static str {
        if self.tls { "; Secure" } else { "" }
    }

    /// `rtmp://host:port/<path>`.
    pub fn rtmp(&self, host: &str, path: &str) -> String {
        format!("rtmp://{host}:{}/{path}", self.rtmp_port)
    }

    /// `rtmps://host:port/<path>`, when RTMPS is served.
    pub fn rtmps(&self, host: &str, path: &str) -> Option<String> {
        self.rtmps_port.map(|port| format!("rtmps://{host}:{port}/{path}"))
    }

    /// `http[s]://host:port/<path>`.
    pub fn http(&self, host: &str, path: &str) -> String {
        format!("{}://{host}:{}/{path}", self.scheme(), self.http_port)
    }
}
