//! What must reach every node of a cluster: access changes, go-live notices, each node's
//! audience, and the rooms' traffic. Over NATS (`--nats`) when nodes share a database; on
//! a single node there is no one else to tell, and nothing is sent.
//!
//! Messages are JSON. A node does not hear its own messages (NATS `no_echo`): it has acted
//! on them already, the way a single node does. Whoever can publish on the NATS server is
//! trusted as a node: keep it on the nodes' private network (or give it credentials).

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every subject starts with this, so that livescope can share a NATS server.
const PREFIX: &str = "livescope";

/// How long a node waits for another node to answer a request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a message may wait to be handed to the NATS client. While NATS is unreachable
/// the client's queue fills; past this a message is dropped (and logged), so that a NATS
/// outage never holds up a room's ticker or an API call.
const SEND_TIMEOUT: Duration = Duration::from_millis(200);

/// A node's link to the others.
#[derive(Clone, Default)]
pub struct Bus {
    nats: Option<async_nats::Client>,
}

impl Bus {
    /// A single node's: nothing to tell anyone.
    pub fn single() -> Bus {
        Bus::default()
    }

    /// Joins the cluster at the NATS server `url` as `node`.
    pub async fn connect(url: &str, node: &str) -> anyhow::Result<Bus> {
        let nats = async_nats::ConnectOptions::new()
            .name(format!("livescope node {node}"))
            .no_echo()
            .request_timeout(Some(REQUEST_TIMEOUT))
            // Messages wait here while NATS is unreachable, up to this many; past it a
            // publish waits, and gives up after SEND_TIMEOUT.
            .client_capacity(8192)
            .connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url}"))?;
        tracing::info!("joined the cluster over NATS at {url}");
        Ok(Bus { nats: Some(nats) })
    }

    /// Whether other nodes may be listening.
    pub fn clustered(&self) -> bool {
        self.nats.is_some()
    }

    /// Sends `message` to every node listening on `subject`.
    pub async fn publish<T: Serialize>(&self, subject: &str, message: &T) {
        let Some(nats) = &self.nats else { return };
        let payload = Bytes::from(serde_json::to_vec(message).expect("messages serialize"));
        match tokio::time::timeout(SEND_TIMEOUT, nats.publish(format!("{PREFIX}.{subject}"), payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(subject, "cannot publish to the cluster: {e}"),
            Err(_) => tracing::warn!(subject, "the cluster's NATS is not taking messages: one dropped"),
        }
    }

    /// Messages to `subject` from other nodes (none on a single node).
    pub async fn subscribe(&self, subject: &str) -> anyhow::Result<Option<Subscription>> {
        let Some(nats) = &self.nats else { return Ok(None) };
        let inner = tokio::time::timeout(REQUEST_TIMEOUT, nats.subscribe(format!("{PREFIX}.{subject}")))
            .await
            .context("NATS did not take a subscription")??;
        Ok(Some(Subscription {
            inner,
            nats: nats.clone(),
        }))
    }

    /// Asks the node listening on `subject` and waits for its answer.
    pub async fn request<T: Serialize, R: DeserializeOwned>(&self, subject: &str, message: &T) -> anyhow::Result<R> {
        let nats = self.nats.as_ref().context("not in a cluster")?;
        let payload = Bytes::from(serde_json::to_vec(message).expect("messages serialize"));
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, nats.request(format!("{PREFIX}.{subject}"), payload))
            .await
            .context("no answer in time")??;
        serde_json::from_slice(&answer.payload).context("a node's answer")
    }
}

/// Messages from other nodes on one subject.
pub struct Subscription {
    inner: async_nats::Subscriber,
    nats: async_nats::Client,
}

/// One message from another node, and how to answer it if it is a request.
pub struct Incoming {
    pub payload: Bytes,
    reply: Option<async_nats::Subject>,
    nats: async_nats::Client,
}

impl Subscription {
    /// The next message; `None` when the link to NATS is closed for good.
    pub async fn next(&mut self) -> Option<Incoming> {
        use futures_util::StreamExt;
        let message = self.inner.next().await?;
        Some(Incoming {
            payload: message.payload,
            reply: message.reply,
            nats: self.nats.clone(),
        })
    }

    /// Stops listening.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.inner.unsubscribe()).await;
    }
}

impl Incoming {
    /// The message as a `T`; a malformed one is logged and skipped.
    pub fn parse<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.payload)
            .inspect_err(|e| tracing::warn!("a malformed message from another node: {e}"))
            .ok()
    }

    /// Answers a request.
    pub async fn reply<T: Serialize>(&self, answer: &T) {
        let Some(to) = self.reply.clone() else { return };
        let payload = Bytes::from(serde_json::to_vec(answer).expect("answers serialize"));
        match tokio::time::timeout(SEND_TIMEOUT, self.nats.publish(to, payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot answer another node: {e}"),
            Err(_) => tracing::warn!("the cluster's NATS is not taking messages: an answer dropped"),
        }
    }
}
