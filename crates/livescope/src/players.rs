//! How many players each broadcast has: RTMP and HTTP-FLV connections and LL-HLS viewers on
//! this node, plus what the other nodes last reported of theirs.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Elsewhere;
use crate::hls::Registry;
use crate::hub::Hub;

/// A read-only view of every delivery path's audience, for viewer counts.
#[derive(Clone)]
pub struct Players {
    hub: Arc<Hub>,
    hls: Arc<Registry>,
    elsewhere: Arc<Elsewhere>,
}

impl Players {
    pub fn new(hub: Arc<Hub>, hls: Arc<Registry>, elsewhere: Arc<Elsewhere>) -> Players {
        Players { hub, hls, elsewhere }
    }

    /// Players of broadcast `id` now, on every node.
    pub fn of(&self, id: &str) -> usize {
        self.hub.get(id).map_or(0, |s| s.viewers())
            + self.hls.get(id).map_or(0, |r| r.audience.len())
            + self.elsewhere.players(id)
    }

    /// This node's players of each broadcast it serves, for the other nodes.
    pub fn here(&self) -> HashMap<String, usize> {
        let mut players = self.hub.viewers_by_stream();
        for (id, n) in self.hls.audiences() {
            *players.entry(id).or_default() += n;
        }
        players.retain(|_, n| *n > 0);
        players
    }
}
