//! Account keys over the API: a broadcaster registers the public half of the Ed25519 key
//! that signs their broadcasts (made with `livescope keygen`), and revokes it; profiles
//! show the keys in force with their fingerprints, so that viewers can pin them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ApiError, ErrorBody, json_body, rfc3339};
use crate::auth;
use crate::signing_key::PublicKey;
use crate::store::{AccountKey, MAX_KEYS, Registered};

/// What the signing keys' handlers use: the store, and the live checks to tell of a change.
#[derive(Clone)]
pub struct SigningKeys {
    pub store: crate::store::Store,
    pub key_changes: Arc<crate::integrity::KeyChanges>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// The Ed25519 public key, 32 bytes in standard base64.
    public_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The Ed25519 public key, 32 bytes in standard base64.
    pub public_key: String,
    /// `SHA256:` and the unpadded base64 SHA-256 of the key, as OpenSSH shows keys.
    pub fingerprint: String,
    pub created_at: String,
    /// When it stopped verifying; absent while in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<&AccountKey> for KeyView {
    fn from(k: &AccountKey) -> Self {
        let key = PublicKey(k.public_key);
        KeyView {
            public_key: key.to_base64(),
            fingerprint: key.fingerprint(),
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// Registers a public key on the caller's account.
#[utoipa::path(post, path = "/api/keys", tag = "accounts", request_body = NewKey,
    security(("session" = [])), responses(
    (status = 201, description = "The key, with its fingerprint", body = KeyView),
    (status = 400, description = "Malformed JSON", body = ErrorBody),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 409, description = "The key is registered already", body = ErrorBody),
    (status = 422, description = "Not an Ed25519 public key, or the account holds the most keys it may", body = ErrorBody),
))]
pub async fn add(State(api): State<SigningKeys>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let user = auth::require_user(&api.store, &headers).await?;
    let NewKey { public_key } = json_body(&body)?;
    let key = PublicKey::parse(&public_key)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_key", e.to_string()))?;
    let id = user.id;
    let (registered, keys) = api
        .store
        .call(move |db| Ok((db.add_key(id, key.0)?, db.keys(id, false)?)))
        .await?;
    match registered {
        Registered::Added => {
            api.key_changes.changed(id);
            let added = keys.iter().find(|k| k.public_key == key.0).map(KeyView::from);
            Ok((StatusCode::CREATED, Json(added)).into_response())
        }
        Registered::Taken => Err(ApiError::new(
            StatusCode::CONFLICT,
            "key_taken",
            "that key is registered already (a key names one account for good)",
        )),
        Registered::Full => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_keys",
            format!("an account holds at most {MAX_KEYS} keys: revoke one first"),
        )),
    }
}

/// The caller's keys, revoked ones too.
#[utoipa::path(get, path = "/api/keys", tag = "accounts", security(("session" = [])), responses(
    (status = 200, description = "The caller's keys, oldest first", body = Vec<KeyView>),
    (status = 401, description = "Not logged in", body = ErrorBody),
))]
pub async fn mine(State(api): State<SigningKeys>, headers: HeaderMap) -> Result<Json<Vec<KeyView>>, ApiError> {
    let id = auth::require_user(&api.store, &headers).await?.id;
    let keys = api.store.call(move |db| db.keys(id, true)).await?;
    Ok(Json(keys.iter().map(KeyView::from).collect()))
}

/// Revokes one of the caller's keys, named by its public key or its fingerprint: from now
/// on it verifies nothing.
#[utoipa::path(delete, path = "/api/keys/{key}", tag = "accounts",
    params(("key" = String, Path, description = "The public key (base64url, or base64 percent-encoded) or its fingerprint (percent-encoded)")),
    security(("session" = [])), responses(
    (status = 204, description = "Revoked"),
    (status = 401, description = "Not logged in", body = ErrorBody),
    (status = 404, description = "No such key in force on this account", body = ErrorBody),
))]
pub async fn revoke(
    State(api): State<SigningKeys>,
    headers: HeaderMap,
    Path(named): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = auth::require_user(&api.store, &headers).await?.id;
    let keys = api.store.call(move |db| db.keys(id, false)).await?;
    // A key in a URL path is often base64url ('-', '_' for '+', '/').
    let standard = named.replace('-', "+").replace('_', "/");
    let key = keys
        .iter()
        .map(|k| PublicKey(k.public_key))
        .find(|k| k.fingerprint() == named || PublicKey::parse(&standard).is_ok_and(|p| p == *k))
        .ok_or_else(|| ApiError::not_found("key"))?;
    let revoked = api.store.call(move |db| db.revoke_key(id, key.0)).await?;
    if revoked {
        api.key_changes.changed(id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("key"))
    }
}
