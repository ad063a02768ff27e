//! The web app: the page shell for every app URL (`/`, `/b/<id>`, `/u/<name>`, ...) and
//! its assets, embedded in the binary from `web/` at build time. Assets are served under
//! `/assets/<version>/`, where the version is a hash of all of them: a new build changes
//! every URL, so browsers and caches may keep each file for a year. Text assets are
//! gzipped once, at start. Every page carries a strict Content-Security-Policy (no inline
//! script or style) and `nosniff`.
//!
//! For working on the app, `LIVESCOPE_WEB_DIR=<folder>` serves the assets from that folder
//! instead, read on every request and never cached, so an edit shows on reload.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use sha2::{Digest, Sha256};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The page URLs the app routes itself (History API); each is answered with the shell.
const PAGES: &[&str] = &[
    "/",
    "/login",
    "/register",
    "/studio",
    "/studio/{id}",
    "/notifications",
    "/b/{id}",
    "/u/{name}",
];

/// The shell file, in which `__ASSETS__` stands for `/assets/<version>`.
const SHELL: &str = "index.html";
const ASSETS_MARK: &str = "__ASSETS__";

/// What pages may load: only this origin's own scripts, styles, media and connections
/// (the room WebSocket included), blob: for the players' MediaSource and hls.js's worker.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// A versioned asset never changes: a year, and browsers need not even revalidate it.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Text smaller than this is not worth compressing.
const MIN_GZIP_BYTES: usize = 1024;

/// One asset, with its gzipped form when that is smaller.
struct Asset {
    content_type: &'static str,
    plain: Bytes,
    gzip: Option<Bytes>,
}

/// The app's files and the shell that points at them.
pub struct Assets {
    version: String,
    files: HashMap<String, Asset>,
    shell: Bytes,
    /// Serve from this folder instead (development).
    dev_dir: Option<PathBuf>,
}

impl Assets {
    /// The embedded app (hashed and compressed once per process), or the folder
    /// `LIVESCOPE_WEB_DIR` names.
    pub fn load() -> Arc<Assets> {
        static EMBEDDED: std::sync::OnceLock<Arc<Assets>> = std::sync::OnceLock::new();
        match std::env::var_os("LIVESCOPE_WEB_DIR").map(PathBuf::from) {
            Some(dir) => {
                tracing::warn!("serving the web app from {} (development)", dir.display());
                Arc::new(Assets::from_files(embedded::WEB_FILES, Some(dir)))
            }
            None => EMBEDDED
                .get_or_init(|| Arc::new(Assets::from_files(embedded::WEB_FILES, None)))
                .clone(),
        }
    }

    fn from_files(files: &'static [(&'static str, &'static [u8])], dev_dir: Option<PathBuf>) -> Assets {
        let mut hash = Sha256::new();
        for (name, bytes) in files {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(bytes);
        }
        let digest = hash.finalize();
        let version = if dev_dir.is_some() {
            "dev".to_owned()
        } else {
            digest[..5].iter().map(|b| format!("{b:02x}")).collect()
        };
        let shell = files
            .iter()
            .find(|(name, _)| *name == SHELL)
            .map(|(_, bytes)| render_shell(bytes, &version))
            .unwrap_or_default();
        // In development every asset comes from the folder: nothing to compress.
        let embedded = if dev_dir.is_some() { &[][..] } else { files };
        let files = embedded
            .iter()
            .filter(|(name, _)| *name != SHELL)
            .map(|(name, bytes)| (name.to_string(), Asset::new(name, Bytes::from_static(bytes))))
            .collect();
        Assets {
            version,
            files,
            shell,
            dev_dir,
        }
    }

    /// The shell page, from the folder in development.
    fn shell(&self) -> Bytes {
        match &self.dev_dir {
            Some(dir) => std::fs::read(dir.join(SHELL))
                .map(|b| render_shell(&b, &self.version))
                .unwrap_or_default(),
            None => self.shell.clone(),
        }
    }
}

impl Asset {
    fn new(name: &str, plain: Bytes) -> Asset {
        let content_type = content_type(name);
        let compressible = content_type.starts_with("text/")
            || content_type.starts_with("application/javascript")
            || content_type.starts_with("application/json")
            || content_type.starts_with("image/svg");
        let gzip = (compressible && plain.len() >= MIN_GZIP_BYTES)
            .then(|| gzip(&plain))
            .filter(|z| z.len() < plain.len());
        Asset {
            content_type,
            plain,
            gzip,
        }
    }
}

fn render_shell(bytes: &[u8], version: &str) -> Bytes {
    String::from_utf8_lossy(bytes)
        .replace(ASSETS_MARK, &format!("/assets/{version}"))
        .into()
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory").into()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt" | "md") | Some("LICENSE") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The page shell at every app URL and the assets under `/assets/`.
pub fn routes<S: Clone + Send + Sync + 'static>(assets: Arc<Assets>) -> Router<S> {
    let mut router = Router::new();
    for page in PAGES {
        router = router.route(page, get(shell));
    }
    router.route("/assets/{version}/{*path}", get(asset)).with_state(assets)
}

/// Headers every page and asset carries.
fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

async fn shell(State(assets): State<Arc<Assets>>) -> Response {
    let body = assets.shell();
    if body.is_empty() {
        return (StatusCode::NOT_FOUND, "this build has no web app").into_response();
    }
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The shell names the current asset version, so it must not outlive a restart.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response();
    secure(&mut response);
    response
}

async fn asset(
    State(assets): State<Arc<Assets>>,
    Path((version, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such asset").into_response();
    if let Some(dir) = &assets.dev_dir {
        // Plain names only: no `..`, no hidden files, no Windows separators or drives.
        if path
            .split('/')
            .any(|c| c.is_empty() || c.starts_with('.') || c.contains(['\\', ':']))
        {
            return not_found();
        }
        let Ok(bytes) = tokio::fs::read(dir.join(&path)).await else {
            return not_found();
        };
        let mut response = (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response();
        secure(&mut response);
        return response;
    }
    let Some(file) = assets.files.get(&path) else {
        return not_found();
    };
    // A page from before an upgrade may still ask for its old version: it gets today's file,
    // which no cache may keep under the old URL.
    let cache = if version == assets.version {
        IMMUTABLE
    } else {
        "no-store"
    };
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.trim().split(';').next() == Some("gzip"));
    let gzip = file.gzip.as_ref().filter(|_| accepts_gzip);
    let mut response = (
        [
            (header::CONTENT_TYPE, file.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        gzip.unwrap_or(&file.plain).clone(),
    )
        .into_response();
    if gzip.is_some() {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if file.gzip.is_some() {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    secure(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const SHELL_HTML: &[u8] = b"<script type=module src=\"__ASSETS__/app.js\"></script>";

    fn app(files: &'static [(&'static str, &'static [u8])]) -> (Router, String) {
        let assets = Arc::new(Assets::from_files(files, None));
        let version = assets.version.clone();
        (routes(assets), version)
    }

    async fn get(router: &Router, uri: &str, gzip: bool) -> Response {
        let mut request = Request::get(uri);
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "br, gzip");
        }
        router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> Bytes {
        axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()
    }

    #[tokio::test]
    async fn pages_get_the_shell_with_versioned_asset_urls_and_a_strict_policy() {
        static FILES: &[(&str, &[u8])] = &[("index.html", SHELL_HTML), ("app.js", b"export {};")];
        let (router, version) = app(FILES);
        assert_eq!(version.len(), 10);
        for page in ["/", "/b/abc123", "/u/ana", "/studio", "/studio/x", "/login"] {
            let response = get(&router, page, false).await;
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"));
            assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let html = body(response).await;
            assert_eq!(
                String::from_utf8_lossy(&html),
                format!("<script type=module src=\"/assets/{version}/app.js\"></script>")
            );
        }
        let response = get(&router, &format!("/assets/{version}/app.js"), false).await;
        assert_eq!(response.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/javascript")
        );
        assert_eq!(body(response).await.as_ref(), b"export {};");
        let stale = get(&router, "/assets/0000000000/app.js", false).await;
        assert_eq!(stale.headers()[header::CACHE_CONTROL], "no-store");
        for missing in ["/assets/x/nope.js", "/assets/x/index.html", "/assets/x/../Cargo.toml"] {
            assert_eq!(
                get(&router, missing, false).await.status(),
                StatusCode::NOT_FOUND,
                "{missing}"
            );
        }
    }

    #[tokio::test]
    async fn text_assets_are_gzipped_for_browsers_that_accept_it() {
        static BIG: [u8; 8192] = [b'a'; 8192];
        static FILES: &[(&str, &[u8])] = &[("index.html", SHELL_HTML), ("big.css", &BIG)];
        let (router, version) = app(FILES);
        let url = format!("/assets/{version}/big.css");
        let zipped = get(&router, &url, true).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        let compressed = body(zipped).await;
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut plain).unwrap();
        assert_eq!(plain, BIG);
        let unzipped = get(&router, &url, false).await;
        assert!(unzipped.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(unzipped).await.len(), BIG.len());
    }
}
