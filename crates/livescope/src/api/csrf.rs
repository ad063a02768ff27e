//! Cross-site request forgery: the API takes the session cookie a browser sends by itself,
//! so a page of another origin could make a logged-in visitor's browser post to it. The
//! session cookie is `SameSite=Lax`, which stops other sites but not other origins of the
//! same site (another port, another subdomain); this check stops those too. A browser says
//! where a request comes from (`Sec-Fetch-Site`, else `Origin`); a request that changes
//! something (any method but GET, HEAD and OPTIONS), or a cookie-carrying WebSocket
//! upgrade, from another origin is refused. Clients that are not browsers send neither
//! header and have no ambient cookie to abuse, and a bearer token is never sent ambiently.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::auth;

/// Refuses cross-origin requests that act with the visitor's cookie or change something.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    if must_be_same_origin(request.method(), request.headers()) && from_elsewhere(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "this request came from another site's page; make it from livescope's own pages",
        )
        .into_response();
    }
    next.run(request).await
}

fn must_be_same_origin(method: &Method, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.starts_with("Bearer "));
    if bearer {
        return false;
    }
    if headers.contains_key(header::UPGRADE) {
        // Anyone's page may open a room anonymously; only the cookie's identity is guarded.
        return auth::session_token(headers).is_some();
    }
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a browser says the request comes from a page of another origin.
fn from_elsewhere(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        // "none" is the person themselves: a typed URL or a bookmark.
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_changes_and_cookie_upgrades_from_other_origins_are_refused() {
        let cookie = ("cookie", "livescope_session=ses_x");
        let host = ("host", "127.0.0.1:8080");
        let refused =
            |m: Method, h: &[(&str, &str)]| must_be_same_origin(&m, &headers(h)) && from_elsewhere(&headers(h));
        // A form on another port of the same host: same site, other origin.
        assert!(refused(
            Method::POST,
            &[cookie, host, ("origin", "http://127.0.0.1:9999")]
        ));
        assert!(refused(Method::POST, &[cookie, host, ("sec-fetch-site", "same-site")]));
        assert!(refused(Method::DELETE, &[host, ("sec-fetch-site", "cross-site")]));
        assert!(refused(
            Method::GET,
            &[
                cookie,
                host,
                ("upgrade", "websocket"),
                ("origin", "http://evil.example")
            ]
        ));
        // The app's own pages, curl, a bearer token, reads and anonymous room joins pass.
        assert!(!refused(
            Method::POST,
            &[cookie, host, ("origin", "http://127.0.0.1:8080")]
        ));
        assert!(!refused(
            Method::POST,
            &[cookie, host, ("sec-fetch-site", "same-origin")]
        ));
        assert!(!refused(Method::POST, &[cookie, host]));
        assert!(!refused(
            Method::POST,
            &[("authorization", "Bearer t"), host, ("origin", "http://x")]
        ));
        assert!(!refused(Method::GET, &[cookie, host, ("origin", "http://x")]));
        assert!(!refused(
            Method::GET,
            &[host, ("upgrade", "websocket"), ("origin", "http://x")]
        ));
    }
}
