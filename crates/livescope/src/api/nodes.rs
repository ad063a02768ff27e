//! The nodes of the service, and which one a broadcaster should publish to: the least
//! busy, or the least busy in the region asked for.

use axum::Json;
use axum::extract::{Query, State};

use super::{ApiError, ErrorBody};
use crate::store::{NodeInfo, Store};

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct IngestQuery {
    /// Prefer a node in this region (as the nodes' `--region` names them).
    region: Option<String>,
}

/// Where to publish.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Ingest {
    pub node: String,
    /// Publish here with the stream key: `<rtmp>/live/<key>`.
    pub rtmp: String,
    /// Or over HTTP: `<http>/ingest/<key>.flv`.
    pub http: String,
    pub region: Option<String>,
}

#[utoipa::path(get, path = "/api/nodes", tag = "nodes", responses(
    (status = 200, description = "The nodes heard from in the last 15 s, the least busy first", body = [NodeInfo]),
))]
pub async fn list(State(store): State<Store>) -> Result<Json<Vec<NodeInfo>>, ApiError> {
    Ok(Json(store.call(|db| db.nodes()).await?))
}

#[utoipa::path(get, path = "/api/ingest", tag = "nodes", params(IngestQuery), responses(
    (status = 200, description = "The node to publish to: the one with the fewest broadcasts and viewers, in the region asked for if one is there", body = Ingest),
    (status = 503, description = "No node is alive", body = ErrorBody),
))]
pub async fn ingest(State(store): State<Store>, Query(q): Query<IngestQuery>) -> Result<Json<Ingest>, ApiError> {
    let nodes = store.call(|db| db.nodes()).await?;
    let pick = pick(&nodes, q.region.as_deref()).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_node",
            "no node is alive to publish to",
        )
    })?;
    Ok(Json(Ingest {
        node: pick.name.clone(),
        rtmp: pick.rtmp_url.clone(),
        http: pick.http_url.clone(),
        region: pick.region.clone(),
    }))
}

/// The node to publish to: among those in `region` if any is, the least busy (fewest
/// publishers, then fewest viewers; `nodes` comes in that order).
fn pick<'a>(nodes: &'a [NodeInfo], region: Option<&str>) -> Option<&'a NodeInfo> {
    region
        .and_then(|r| nodes.iter().find(|n| n.region.as_deref() == Some(r)))
        .or_else(|| nodes.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, region: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            http_url: String::new(),
            rtmp_url: String::new(),
            region: Some(region.into()),
            seen_at: 0,
            publishers: 0,
            viewers: 0,
        }
    }

    #[test]
    fn the_least_busy_node_in_the_region_or_else_anywhere() {
        let nodes = [node("a", "us"), node("b", "eu"), node("c", "eu")];
        assert_eq!(pick(&nodes, Some("eu")).unwrap().name, "b");
        assert_eq!(pick(&nodes, Some("asia")).unwrap().name, "a");
        assert_eq!(pick(&nodes, None).unwrap().name, "a");
        assert!(pick(&[], None).is_none());
    }
}
