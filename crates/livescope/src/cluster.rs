//! How a node keeps up with the others over the bus: it applies their access changes to
//! its own viewers, tells its connected users their go-live notices, and counts their
//! players in every viewer count it shows. Every node reports its players every
//! [`LOAD_INTERVAL`]; a report older than [`LOAD_KEPT`] no longer counts (its node died).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::admission::Admission;
use crate::bus::Bus;
use crate::notify::{Notified, Notifier};
use crate::players::Players;
use crate::room::Rooms;

/// How often a node reports its players.
pub const LOAD_INTERVAL: Duration = Duration::from_secs(1);
/// A node's report counts this long.
const LOAD_KEPT: Duration = Duration::from_secs(4);

/// Who may watch a broadcast changed (it went private, someone lost access, its key was
/// rotated or revoked): every node checks its viewers, and the origin its publisher.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessChanged {
    pub broadcast: String,
    /// The stream key changed: the publisher is cut off.
    pub evict_publisher: bool,
}

/// A node's players of each broadcast it serves.
#[derive(Debug, Serialize, Deserialize)]
struct Load {
    node: String,
    players: PlayerCounts,
}

/// Players of each broadcast, by broadcast id.
type PlayerCounts = HashMap<String, usize>;

/// The other nodes' players, by node, and when each reported.
#[derive(Default)]
pub struct Elsewhere {
    nodes: Mutex<HashMap<String, (PlayerCounts, Instant)>>,
}

impl Elsewhere {
    /// Players of broadcast `id` on the other nodes.
    pub fn players(&self, id: &str) -> usize {
        let nodes = self.nodes.lock().expect("elsewhere lock");
        nodes
            .values()
            .filter(|(_, at)| at.elapsed() < LOAD_KEPT)
            .map(|(players, _)| players.get(id).copied().unwrap_or(0))
            .sum()
    }

    fn update(&self, load: Load) {
        let mut nodes = self.nodes.lock().expect("elsewhere lock");
        nodes.retain(|_, (_, at)| at.elapsed() < LOAD_KEPT);
        nodes.insert(load.node, (load.players, Instant::now()));
    }
}

/// What a node's part in the cluster touches: the bus itself, and what the other nodes'
/// messages change here.
pub struct Parts {
    /// This node's name, in its reports.
    pub node: String,
    pub bus: Bus,
    pub admission: Admission,
    pub notifier: Arc<Notifier>,
    pub elsewhere: Arc<Elsewhere>,
    pub players: Players,
    pub rooms: Arc<Rooms>,
}

/// Starts listening to the other nodes, and reporting to them. Nothing on a single node.
pub async fn start(parts: Parts) -> anyhow::Result<()> {
    let Parts {
        node,
        bus,
        admission,
        notifier,
        elsewhere,
        players,
        rooms,
    } = parts;
    if !bus.clustered() {
        return Ok(());
    }
    if let Some(mut changes) = bus.subscribe("access").await? {
        tokio::spawn(async move {
            while let Some(message) = changes.next().await {
                let Some(change) = message.parse::<AccessChanged>() else {
                    continue;
                };
                if change.evict_publisher {
                    admission.evict_publisher_here(&change.broadcast);
                }
                if let Err(e) = admission.refresh(&change.broadcast).await {
                    tracing::warn!(broadcast = %change.broadcast, "cannot apply another node's access change: {e:#}");
                }
            }
        });
    }
    if let Some(mut notices) = bus.subscribe("notify").await? {
        tokio::spawn(async move {
            while let Some(message) = notices.next().await {
                if let Some(n) = message.parse::<Notified>()
                    && n.users.len() == n.ids.len()
                {
                    notifier.deliver_started(&n.users, &n.ids, &n.started);
                }
            }
        });
    }
    if let Some(mut loads) = bus.subscribe("load").await? {
        tokio::spawn(async move {
            while let Some(message) = loads.next().await {
                if let Some(load) = message.parse::<Load>() {
                    elsewhere.update(load);
                }
            }
        });
    }
    crate::room::cluster::serve_home(rooms).await?;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(LOAD_INTERVAL);
        loop {
            every.tick().await;
            let load = Load {
                node: node.clone(),
                players: players.here(),
            };
            bus.publish("load", &load).await;
        }
    });
    Ok(())
}
