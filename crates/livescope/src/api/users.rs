//! Accounts, login sessions, profiles and follows.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::broadcasts::{BroadcastView, Views};
use super::{ApiError, ApiQuery, ErrorBody, json_body, limit, random_token, rfc3339};
use crate::auth::{self, LoginLimiter, SESSION_COOKIE, SESSION_TTL};
use crate::store::{Store, User, now_ms};

/// What the accounts' handlers use: the store, the login limits, and how to show a
/// profile's broadcasts.
#[derive(Clone)]
pub struct Accounts {
    pub store: Store,
    pub logins: Arc<LoginLimiter>,
    pub views: Views,
}

pub const MIN_USERNAME: usize = 3;
pub const MAX_USERNAME: usize = 30;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 256;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    fn take(self) -> Result<(String, String), ApiError> {
        let missing = |field: &str| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_field",
                format!("{field} is required"),
            )
        };
        Ok((
            self.username.ok_or_else(|| missing("username"))?,
            self.password.ok_or_else(|| missing("password"))?,
        ))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub username: String,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            username: u.username.clone(),
            created_at: rfc3339(u.created_at),
        }
    }
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let len = name.chars().count();
    if !(MIN_USERNAME..=MAX_USERNAME).contains(&len) || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_username",
            format!("a username is {MIN_USERNAME} to {MAX_USERNAME} letters, digits or underscores"),
        ));
    }
    Ok(())
}

/// Registers an account.
#[utoipa::path(post, path = "/api/users", tag = "accounts", request_body = Credentials, responses(
    (status = 201, description = "The account", body = UserView),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 409, description = "The name is taken", body = ErrorBody),
    (status = 422, description = "A field is missing or invalid", body = ErrorBody),
    (status = 503, description = "Busy hashing other passwords; try again", body = ErrorBody),
))]
pub async fn register(State(api): State<Accounts>, body: Bytes) -> Result<Response, ApiError> {
    let (username, password) = json_body::<Credentials>(&body)?.take()?;
    check_username(&username)?;
    let len = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_password",
            format!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    if api.store.user_by_name(&username).await?.is_some() {
        return Err(taken(&username));
    }
    let hash = auth::hash_password(password).await?;
    let name = username.clone();
    let user = api
        .store
        .call(move |db| db.create_user(&name, &hash))
        .await?
        .ok_or_else(|| taken(&username))?;
    tracing::info!(user = %user.username, "account created");
    Ok((StatusCode::CREATED, Json(UserView::from(&user))).into_response())
}

fn taken(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "username_taken",
        format!("the username {name:?} is taken"),
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SessionView {
    /// The bearer token; also set as an HttpOnly cookie. Shown only in this answer.
    token: String,
    username: String,
    expires_at: String,
}

/// Logs in: a bearer token, also set as an HttpOnly cookie.
#[utoipa::path(post, path = "/api/sessions", tag = "accounts", request_body = Credentials, responses(
    (status = 201, description = "The session", body = SessionView),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Wrong username or password", body = ErrorBody),
    (status = 422, description = "A field is missing", body = ErrorBody),
    (status = 429, description = "Too many attempts for this account from this address, or from this address", body = ErrorBody),
    (status = 503, description = "Busy checking other passwords; try again", body = ErrorBody),
))]
pub async fn login(
    State(api): State<Accounts>,
    peer: Option<Extension<ConnectInfo<crate::peer::Peer>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (username, password) = json_body::<Credentials>(&body)?.take()?;
    if username.len() > 4 * MAX_USERNAME || password.len() > 4 * MAX_PASSWORD {
        return Err(bad_credentials());
    }
    let address = peer.map_or_else(String::new, |Extension(ConnectInfo(p))| p.addr.ip().to_string());
    if let Err(wait) = api.logins.attempt(&username, &address) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many failed logins; try again in {} s", wait.as_secs() + 1),
        )
        .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&(wait.as_secs() + 1).to_string()).expect("digits"),
        );
        return Ok(response);
    }
    let name = username.clone();
    let found = api.store.call(move |db| db.user_and_password(&name)).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let user = match (auth::verify_password(password, hash).await?, user) {
        (true, Some(user)) => user,
        _ => return Err(bad_credentials()),
    };
    api.logins.succeeded(&username, &address);
    let token = format!("ses_{}", random_token(40));
    let expires_at = now_ms() + SESSION_TTL.as_millis() as i64;
    let (id, session) = (user.id, token.clone());
    api.store
        .call(move |db| db.create_session(id, &session, expires_at))
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax{}; Max-Age={}",
        api.views.urls.secure_cookie(),
        SESSION_TTL.as_secs()
    );
    let body = SessionView {
        token,
        username: user.username,
        expires_at: rfc3339(expires_at),
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".into())],
        Json(body),
    )
        .into_response())
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "wrong username or password",
    )
}

/// Logs out: ends the session the request carries. A session that already ended is
/// logged out too: its cookie is cleared, so a browser holding a stale one is not stuck
/// with answers of `invalid_session`.
#[utoipa::path(delete, path = "/api/sessions", tag = "accounts", security(("session" = [])), responses(
    (status = 204, description = "Logged out"),
    (status = 401, description = "Not logged in", body = ErrorBody),
))]
pub async fn logout(State(api): State<Accounts>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = auth::session_token(&headers)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "login_required", "log in first"))?;
    api.store.call(move |db| db.delete_session(&token)).await?;
    let expired = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax{}; Max-Age=0",
        api.views.urls.secure_cookie()
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, expired)]).into_response())
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/me", tag = "accounts", security(("session" = [])), responses(
    (status = 200, body = UserView),
    (status = 401, description = "Not logged in", body = ErrorBody),
))]
pub async fn me(State(api): State<Accounts>, headers: HeaderMap) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(&auth::require_user(&api.store, &headers).await?)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    #[serde(flatten)]
    user: UserView,
    followers: u64,
    following: u64,
    /// Whether the caller follows this user (absent when not logged in).
    #[serde(skip_serializing_if = "Option::is_none")]
    followed_by_me: Option<bool>,
    /// The newest broadcasts the caller may see, live and ended.
    broadcasts: Vec<BroadcastView>,
    /// The keys in force that sign this user's broadcasts, with their fingerprints.
    signing_keys: Vec<super::keys::KeyView>,
}

async fn find_user(store: &Store, name: &str) -> Result<User, ApiError> {
    store
        .user_by_name(name)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// A profile: follower and following counts and recent broadcasts.
#[utoipa::path(get, path = "/api/users/{name}", tag = "accounts", params(("name" = String, Path)), responses(
    (status = 200, body = Profile),
    (status = 404, description = "No such user", body = ErrorBody),
))]
pub async fn profile(
    State(api): State<Accounts>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Profile>, ApiError> {
    let me = auth::current_user(&api.store, &headers).await?;
    let user = find_user(&api.store, &name).await?;
    let (id, me_id) = (user.id, me.as_ref().map(|m| m.id));
    let ((followers, following), followed_by_me, owned, keys) = api
        .store
        .call(move |db| {
            let followed_by_me = me_id.map(|me| db.is_following(me, id)).transpose()?;
            Ok((
                db.follow_counts(id)?,
                followed_by_me,
                db.by_owner(id, me_id, 10)?,
                db.keys(id, false)?,
            ))
        })
        .await?;
    let host = api.views.urls.host(&headers);
    let broadcasts = owned.iter().map(|b| api.views.view(b, &host)).collect();
    Ok(Json(Profile {
        user: UserView::from(&user),
        followers,
        following,
        followed_by_me,
        broadcasts,
        signing_keys: keys.iter().map(super::keys::KeyView::from).collect(),
    }))
}

/// The caller follows `name` (following twice is following once).
#[utoipa::path(put, path = "/api/users/{name}/follow", tag = "follows", params(("name" = String, Path)),
    security(("session" = [])), responses(
    (status = 204, description = "Following"),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 404, description = "No such user", body = ErrorBody),
    (status = 422, description = "Following oneself", body = ErrorBody),
))]
pub async fn follow(
    State(api): State<Accounts>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let user = find_user(&api.store, &name).await?;
    if user.id == me.id {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot_follow_self",
            "you cannot follow yourself",
        ));
    }
    let (me_id, id) = (me.id, user.id);
    api.store.call(move |db| db.follow(me_id, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller stops following `name`.
#[utoipa::path(delete, path = "/api/users/{name}/follow", tag = "follows", params(("name" = String, Path)),
    security(("session" = [])), responses(
    (status = 204, description = "Not following"),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 404, description = "No such user", body = ErrorBody),
))]
pub async fn unfollow(
    State(api): State<Accounts>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let me = auth::require_user(&api.store, &headers).await?;
    let user = find_user(&api.store, &name).await?;
    let (me_id, id) = (me.id, user.id);
    api.store.call(move |db| db.unfollow(me_id, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FollowEntry {
    username: String,
    since: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FollowPage {
    users: Vec<FollowEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Who follows `name`, a page at a time.
#[utoipa::path(get, path = "/api/users/{name}/followers", tag = "follows", params(("name" = String, Path), Page),
    responses((status = 200, body = FollowPage), (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn followers(
    State(api): State<Accounts>,
    Path(name): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<FollowPage>, ApiError> {
    follow_list(&api, &name, true, page).await
}

/// Whom `name` follows, a page at a time.
#[utoipa::path(get, path = "/api/users/{name}/following", tag = "follows", params(("name" = String, Path), Page),
    responses((status = 200, body = FollowPage), (status = 404, description = "No such user", body = ErrorBody)))]
pub async fn following(
    State(api): State<Accounts>,
    Path(name): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<FollowPage>, ApiError> {
    follow_list(&api, &name, false, page).await
}

async fn follow_list(api: &Accounts, name: &str, followers: bool, page: Page) -> Result<Json<FollowPage>, ApiError> {
    let user = find_user(&api.store, name).await?;
    let after = match page.after.as_deref() {
        None => 0,
        Some(cursor) => cursor.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "after is not a cursor from `next`",
            )
        })?,
    };
    let limit = limit(page.limit, 50, 1000);
    let id = user.id;
    let rows = api
        .store
        .call(move |db| db.follow_page(id, followers, after, limit))
        .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|(u, _)| u.id.to_string()))
        .flatten();
    Ok(Json(FollowPage {
        users: rows
            .into_iter()
            .map(|(u, since)| FollowEntry {
                username: u.username,
                since: rfc3339(since),
            })
            .collect(),
        next,
    }))
}
