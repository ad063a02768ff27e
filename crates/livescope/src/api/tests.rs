//! Route tests: the API's answers to requests handed straight to the router, no sockets.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::app::App;
use crate::config::{Config, Settings};

struct TestApp {
    app: Arc<App>,
    dir: std::path::PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn test_app(name: &str) -> TestApp {
    let dir = std::env::temp_dir().join(format!("livescope-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config::from(Settings::default());
    config.data = dir.clone();
    config.database = crate::store::testing::database_for_tests();
    let addr = "127.0.0.1:1".parse().unwrap();
    TestApp {
        app: Arc::new(App::open(config, addr, addr, None, crate::bus::Bus::single()).unwrap()),
        dir,
    }
}

impl TestApp {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let response = crate::http::router(self.app.clone())
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn login(&self, name: &str) -> String {
        let credentials = json!({"username": name, "password": "password1"}).to_string();
        let (status, _) = self.call("POST", "/api/users", None, &credentials).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, v) = self.call("POST", "/api/sessions", None, &credentials).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn registration_refuses_bad_input_with_4xx_json() {
    let t = test_app("register");
    for (body, status, code) in [
        ("{not json", 400, "invalid_json"),
        (r#"{"username":"al"}"#, 422, "missing_field"),
        (r#"{"username":"al","password":"password1"}"#, 422, "invalid_username"),
        (
            r#"{"username":"al ice","password":"password1"}"#,
            422,
            "invalid_username",
        ),
        (r#"{"username":"alice","password":"short"}"#, 422, "invalid_password"),
        (
            r#"{"username":"alice","password":"password1","admin":true}"#,
            400,
            "invalid_json",
        ),
    ] {
        let (s, v) = t.call("POST", "/api/users", None, body).await;
        assert_eq!((s.as_u16(), v["error"].as_str()), (status, Some(code)), "{body}: {v}");
        assert!(v["message"].is_string());
    }
    let long = json!({"username": "a".repeat(31), "password": "password1"}).to_string();
    assert_eq!(t.call("POST", "/api/users", None, &long).await.0, 422);
    t.login("alice").await;
    let (s, v) = t
        .call(
            "POST",
            "/api/users",
            None,
            r#"{"username":"ALICE","password":"password1"}"#,
        )
        .await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (409, Some("username_taken")));
    let huge = format!(r#"{{"username":"{}"}}"#, "x".repeat(100_000));
    let (s, v) = t.call("POST", "/api/users", None, &huge).await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (413, Some("body_too_large")), "{v}");
    let (s, v) = t.call("PATCH", "/api/users", None, "").await;
    assert_eq!(
        (s.as_u16(), v["error"].as_str()),
        (405, Some("method_not_allowed")),
        "{v}"
    );
    let (s, v) = t.call("GET", "/api/users/%FF", None, "").await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (400, Some("bad_request")), "{v}");
}

#[tokio::test]
async fn login_logout_and_the_limit_on_failed_logins() {
    let t = test_app("login");
    let token = t.login("bob").await;
    let (s, me) = t.call("GET", "/api/me", Some(&token), "").await;
    assert_eq!((s.as_u16(), me["username"].as_str()), (200, Some("bob")));
    assert!(!me.to_string().contains("password"), "no secret in answers: {me}");
    let (s, _) = t.call("DELETE", "/api/sessions", Some(&token), "").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = t.call("GET", "/api/me", Some(&token), "").await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (401, Some("invalid_session")));
    let (s, _) = t.call("DELETE", "/api/sessions", Some(&token), "").await;
    assert_eq!(
        s,
        StatusCode::NO_CONTENT,
        "an ended session can still log out (clearing a stale cookie)"
    );
    let (s, _) = t.call("DELETE", "/api/sessions", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let wrong = r#"{"username":"bob","password":"wrong-password"}"#;
    for _ in 0..crate::auth::LOGIN_ATTEMPTS {
        let (s, v) = t.call("POST", "/api/sessions", None, wrong).await;
        assert_eq!((s.as_u16(), v["error"].as_str()), (401, Some("invalid_credentials")));
    }
    let right = r#"{"username":"bob","password":"password1"}"#;
    let (s, v) = t.call("POST", "/api/sessions", None, right).await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (429, Some("too_many_attempts")));
    // Another account is not held back by bob's attempts.
    t.login("carol").await;
    let (s, _) = t
        .call(
            "POST",
            "/api/sessions",
            None,
            r#"{"username":"nobody","password":"password1"}"#,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn follows_profiles_and_pages() {
    let t = test_app("follows");
    let alice = t.login("alice").await;
    let mut fans = Vec::new();
    for i in 0..5 {
        let fan = t.login(&format!("fan{i}")).await;
        let (s, _) = t.call("PUT", "/api/users/alice/follow", Some(&fan), "").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        fans.push(fan);
    }
    let (s, v) = t.call("PUT", "/api/users/alice/follow", Some(&alice), "").await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (422, Some("cannot_follow_self")));
    let (s, _) = t.call("PUT", "/api/users/nobody/follow", Some(&alice), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.call("PUT", "/api/users/fan0/follow", None, "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    t.call("PUT", "/api/users/fan0/follow", Some(&alice), "").await;

    let (_, profile) = t.call("GET", "/api/users/alice", Some(&fans[0]), "").await;
    assert_eq!(
        (profile["followers"].as_u64(), profile["following"].as_u64()),
        (Some(5), Some(1))
    );
    assert_eq!(profile["followed_by_me"], true);

    let (_, page) = t.call("GET", "/api/users/alice/followers?limit=3", None, "").await;
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fan0", "fan1", "fan2"]);
    let next = page["next"].as_str().unwrap();
    let (_, page) = t
        .call(
            "GET",
            &format!("/api/users/alice/followers?limit=3&after={next}"),
            None,
            "",
        )
        .await;
    assert_eq!(page["users"].as_array().unwrap().len(), 2);
    assert!(page.get("next").is_none(), "the last page has no next: {page}");
    let (s, _) = t.call("GET", "/api/users/alice/followers?after=zz", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    t.call("DELETE", "/api/users/alice/follow", Some(&fans[4]), "").await;
    let (_, page) = t.call("GET", "/api/users/fan4/following", None, "").await;
    assert!(page["users"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn broadcasts_belong_to_their_creator_and_keys_are_shown_once() {
    let t = test_app("broadcasts");
    let (s, v) = t.call("POST", "/api/broadcasts", None, "{}").await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (401, Some("login_required")));
    let alice = t.login("alice").await;
    let bob = t.login("bob").await;
    let (s, created) = t
        .call("POST", "/api/broadcasts", Some(&alice), r#"{"title":"hi"}"#)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(created["owner"], "alice");
    let key = created["stream_key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let (_, shown) = t.call("GET", &format!("/api/broadcasts/{id}"), None, "").await;
    assert!(!shown.to_string().contains(key), "the key is shown once: {shown}");
    let hash = crate::store::hash_secret(key);
    // The database and its write-ahead log; in PostgreSQL, every broadcast's row.
    let db = match std::fs::read(t.dir.join("livescope.db")) {
        Ok(mut db) => {
            db.extend(std::fs::read(t.dir.join("livescope.db-wal")).unwrap_or_default());
            db
        }
        Err(_) => t
            .app
            .store
            .call(|db| db.table_text("broadcasts"))
            .await
            .unwrap()
            .into_bytes(),
    };
    assert!(
        !db.windows(key.len()).any(|w| w == key.as_bytes()),
        "the key is not stored"
    );
    assert!(db.windows(hash.len()).any(|w| w == hash.as_bytes()), "its hash is");

    let (s, v) = t
        .call("POST", &format!("/api/broadcasts/{id}/stream_key"), Some(&bob), "")
        .await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (403, Some("not_owner")));
    let (s, v) = t
        .call("POST", &format!("/api/broadcasts/{id}/stream_key"), Some(&alice), "")
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let new_key = v["stream_key"].as_str().unwrap().to_owned();
    let by_key = |key: &str| {
        let key = key.to_owned();
        t.app.store.call(move |db| db.by_stream_key(&key))
    };
    assert!(by_key(key).await.unwrap().is_none(), "the old key is revoked");
    assert!(by_key(&new_key).await.unwrap().is_some());
    let (s, _) = t
        .call("DELETE", &format!("/api/broadcasts/{id}/stream_key"), Some(&alice), "")
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(by_key(&new_key).await.unwrap().is_none());

    let (s, v) = t
        .call("POST", "/api/broadcasts", Some(&alice), r#"{"viewers":["nobody"]}"#)
        .await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (422, Some("unknown_user")));
    let (s, v) = t.call("GET", "/api/broadcasts?state=gone", None, "").await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (400, Some("bad_query")));
    let (s, _) = t.call("GET", "/api/broadcasts?sort=loudest", None, "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for query in ["limit=lots", "limit=-1", "colour=red"] {
        let (s, v) = t.call("GET", &format!("/api/broadcasts?{query}"), None, "").await;
        assert_eq!(
            (s.as_u16(), v["error"].as_str()),
            (400, Some("bad_query")),
            "{query}: {v}"
        );
    }
    let (s, _) = t.call("GET", "/api/nothing/here", None, "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_private_broadcast_is_hidden_from_strangers() {
    let t = test_app("private");
    let alice = t.login("alice").await;
    let bob = t.login("bob").await;
    let eve = t.login("eve").await;
    let (_, created) = t
        .call("POST", "/api/broadcasts", Some(&alice), r#"{"viewers":["bob"]}"#)
        .await;
    assert_eq!(created["private"], true);
    let id = created["id"].as_str().unwrap();
    let (s, v) = t.call("GET", &format!("/api/broadcasts/{id}"), Some(&bob), "").await;
    assert_eq!(s, StatusCode::OK);
    let hls = v["watch"]["hls"].as_str().unwrap();
    assert!(
        hls.contains("?token="),
        "the allowed viewer's URLs carry a token: {hls}"
    );
    for who in [Some(eve.as_str()), None] {
        let (s, v) = t.call("GET", &format!("/api/broadcasts/{id}"), who, "").await;
        assert_eq!((s.as_u16(), v["error"].as_str()), (403, Some("private_broadcast")));
        let (s, _) = t.call("GET", &format!("/api/broadcasts/{id}/stats"), who, "").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = t.call("GET", &format!("/hls/{id}/index.m3u8"), None, "").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "media without a token is refused");
    let token = hls.split("token=").nth(1).unwrap();
    let (s, _) = t
        .call("GET", &format!("/hls/{id}/index.m3u8?token={token}"), None, "")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "with the token: admitted (and not live yet)");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let t = test_app("openapi");
    let (status, doc) = t.call("GET", "/api/openapi.json", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/users",
        "/api/sessions",
        "/api/users/{name}/follow",
        "/api/broadcasts",
        "/api/broadcasts/{id}/stats",
        "/api/feed",
        "/api/me/events",
        "/api/me/notifications",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(doc["components"]["schemas"]["BroadcastView"].is_object());
    // Every documented operation is served, and what it answers an anonymous caller with
    // an empty body is one of its documented answers.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let uri = path.replace("{name}", "someone").replace("{id}", "someid");
            let (status, body) = t.call(&method.to_uppercase(), &uri, None, "").await;
            assert_ne!(body["message"], "no such endpoint", "{method} {uri}");
            let documented = operation["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(status.as_str()),
                "{method} {path} answered {status}, not among {:?}: {body}",
                documented.keys().collect::<Vec<_>>()
            );
        }
    }
    let (status, body) = t.call("GET", "/api/no/such/thing", None, "").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("no such endpoint"))
    );
}

#[tokio::test]
async fn feeds_notifications_and_broadcast_edits_check_who_asks() {
    let t = test_app("feeds");
    for path in ["/api/feed", "/api/me/notifications", "/api/me/events", "/api/me"] {
        let (s, v) = t.call("GET", path, None, "").await;
        assert_eq!(
            (s.as_u16(), v["error"].as_str()),
            (401, Some("login_required")),
            "{path}"
        );
        let (s, v) = t.call("GET", path, Some("ses_forged"), "").await;
        assert_eq!(
            (s.as_u16(), v["error"].as_str()),
            (401, Some("invalid_session")),
            "{path}"
        );
    }
    let alice = t.login("alice").await;
    let bob = t.login("bob").await;
    let (_, feed) = t.call("GET", "/api/feed", Some(&bob), "").await;
    assert_eq!(feed["broadcasts"], json!([]));
    let (_, notes) = t.call("GET", "/api/me/notifications?limit=5", Some(&bob), "").await;
    assert_eq!(notes["notifications"], json!([]));
    let (s, _) = t.call("GET", "/api/me/notifications?before=x", Some(&bob), "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    for (body, status, code) in [
        (r#"{"title":5}"#, 400, "invalid_json"),
        (r#"{"title":"x","extra":1}"#, 400, "invalid_json"),
        (r#"{"viewers":"bob"}"#, 400, "invalid_json"),
    ] {
        let (s, v) = t.call("POST", "/api/broadcasts", Some(&alice), body).await;
        assert_eq!((s.as_u16(), v["error"].as_str()), (status, Some(code)), "{body}");
    }
    let many = json!({ "viewers": vec!["bob"; 1001] }).to_string();
    let (s, v) = t.call("POST", "/api/broadcasts", Some(&alice), &many).await;
    assert_eq!((s.as_u16(), v["error"].as_str()), (422, Some("too_many_viewers")));

    let (_, created) = t.call("POST", "/api/broadcasts", Some(&alice), "{}").await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["private"], false);
    let path = format!("/api/broadcasts/{id}/viewers");
    let (s, _) = t.call("PUT", &path, Some(&bob), r#"{"viewers":["bob"]}"#).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = t.call("GET", &path, Some(&alice), "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"private": false, "viewers": []})));
    let (s, v) = t.call("PUT", &path, Some(&alice), r#"{"viewers":["bob"]}"#).await;
    assert_eq!((s, v["private"].as_bool()), (StatusCode::OK, Some(true)));
    let (s, v) = t.call("GET", &path, Some(&alice), "").await;
    assert_eq!((s, v), (StatusCode::OK, json!({"private": true, "viewers": ["bob"]})));
    let (s, _) = t.call("GET", &path, Some(&bob), "").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "only the owner sees the list");
    let (s, _) = t.call("GET", &format!("/api/broadcasts/{id}"), Some(&bob), "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t.call("PUT", &path, Some(&alice), r#"{"viewers":[]}"#).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t.call("GET", &format!("/api/broadcasts/{id}"), Some(&bob), "").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "taken off the list");
}

#[tokio::test]
async fn a_cookie_cannot_be_used_from_another_origin() {
    let t = test_app("csrf");
    let token = t.login("alice").await;
    let post = |origin: &'static str| {
        Request::post("/api/broadcasts")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, format!("livescope_session={token}"))
            .header(header::ORIGIN, origin)
            .body(Body::from(r#"{"title":"from a page"}"#))
            .unwrap()
    };
    let router = crate::http::router(t.app.clone());
    let refused = router.clone().oneshot(post("http://127.0.0.1:9999")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let bytes = axum::body::to_bytes(refused.into_body(), 1 << 20).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap()["error"],
        "cross_origin"
    );
    let accepted = router.oneshot(post("http://127.0.0.1:8080")).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::CREATED, "the app's own page");
    let (_, mine) = t.call("GET", "/api/me/broadcasts", Some(&token), "").await;
    let titles: Vec<_> = mine["broadcasts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["title"])
        .collect();
    assert_eq!(titles, ["from a page"], "only the same-origin post made one");
}

#[tokio::test]
async fn broadcasters_register_and_revoke_the_keys_their_profile_shows() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let t = test_app("keys");
    let alice = t.login("alice").await;
    let bob = t.login("bobby").await;
    let public = |seed: u8| {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    };
    let body = |key: &[u8]| json!({ "public_key": STANDARD.encode(key) }).to_string();

    let (s, _) = t.call("POST", "/api/keys", None, &body(&public(1))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, key) = t.call("POST", "/api/keys", Some(&alice), &body(&public(1))).await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let fingerprint = key["fingerprint"].as_str().unwrap().to_owned();
    assert!(fingerprint.starts_with("SHA256:"), "{key}");
    assert_eq!(key["public_key"], STANDARD.encode(public(1)));

    // Anyone sees it on the profile, to pin it.
    let (s, profile) = t.call("GET", "/api/users/alice", None, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        profile["signing_keys"][0]["fingerprint"],
        fingerprint.as_str(),
        "{profile}"
    );

    // A key names one account; a bad key is a clear error.
    let (s, v) = t.call("POST", "/api/keys", Some(&bob), &body(&public(1))).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("key_taken")));
    let (s, v) = t.call("POST", "/api/keys", Some(&bob), &body(&[1; 31])).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_key"))
    );
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let (s, v) = t.call("POST", "/api/keys", Some(&bob), &body(&identity)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a weak key: {v}");
    for seed in 2..=8 {
        let (s, _) = t.call("POST", "/api/keys", Some(&alice), &body(&public(seed))).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let (s, v) = t.call("POST", "/api/keys", Some(&alice), &body(&public(9))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many_keys"))
    );

    // Only its owner revokes it, by fingerprint or by the key itself (base64url in a path).
    // A fingerprint is standard base64: '/' and '+' are percent-encoded in a path.
    let path = format!("/api/keys/{}", fingerprint.replace('/', "%2F").replace('+', "%2B"));
    let (s, _) = t.call("DELETE", &path, Some(&bob), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.call("DELETE", &path, Some(&alice), "").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call("DELETE", &path, Some(&alice), "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "revoked already");
    let by_key = format!("/api/keys/{}", URL_SAFE_NO_PAD.encode(public(2)));
    let (s, _) = t.call("DELETE", &by_key, Some(&alice), "").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, profile) = t.call("GET", "/api/users/alice", None, "").await;
    let shown: Vec<&str> = profile["signing_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(shown.len(), 6);
    assert!(
        !shown.contains(&fingerprint.as_str()),
        "revoked keys verify nothing: {profile}"
    );
    // The owner still sees the revoked ones, marked.
    let (_, mine) = t.call("GET", "/api/keys", Some(&alice), "").await;
    let revoked = mine
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["revoked_at"].is_string())
        .count();
    assert_eq!(revoked, 2, "{mine}");
    // A revoked key stays taken: it cannot be registered again, by anyone.
    let (s, _) = t.call("POST", "/api/keys", Some(&alice), &body(&public(1))).await;
    assert_eq!(s, StatusCode::CONFLICT);
}
