//! Admitting viewers: who may watch a broadcast now (its gate's word, or the store's when
//! nobody holds a gate), whether a given viewer is let in, and telling this node's open
//! connections, its rooms and the other nodes when that changes.

use std::sync::Arc;

use crate::access::{Access, Credentials, Gate, Gates};
use crate::bus::Bus;
use crate::playback::PlaybackKeys;
use crate::room::Rooms;
use crate::store::Store;

/// A handle on who may watch what, for every path that admits a viewer.
#[derive(Clone)]
pub struct Admission {
    store: Store,
    gates: Arc<Gates>,
    playback: Arc<PlaybackKeys>,
    bus: Bus,
    rooms: Arc<Rooms>,
}

impl Admission {
    pub fn new(store: Store, playback: Arc<PlaybackKeys>, bus: Bus, rooms: Arc<Rooms>) -> Admission {
        Admission {
            store,
            gates: Arc::default(),
            playback,
            bus,
            rooms,
        }
    }

    /// The key that signs and checks playback tokens.
    pub fn playback(&self) -> &PlaybackKeys {
        &self.playback
    }

    /// Who may watch broadcast `id` now: its gate's word when someone holds one, else the
    /// store's; `None` when there is no such broadcast.
    pub async fn access(&self, id: &str) -> anyhow::Result<Option<Access>> {
        match self.gates.get(id) {
            Some(gate) => Ok(Some(gate.access())),
            None => self.store.access(id).await,
        }
    }

    /// The gate of broadcast `id`, made from the store if nobody holds it.
    pub async fn gate(&self, id: &str) -> anyhow::Result<Option<Arc<Gate>>> {
        if let Some(gate) = self.gates.get(id) {
            return Ok(Some(gate));
        }
        Ok(self.store.access(id).await?.map(|access| self.gates.open(id, access)))
    }

    /// Whether a viewer may watch broadcast `id` under `access`: it is public, or the viewer
    /// holds a playback token of the current access epoch, or is logged in as someone it
    /// is shared with.
    pub fn admits(&self, id: &str, access: &Access, viewer: &Credentials) -> bool {
        !access.private
            || viewer
                .token
                .as_deref()
                .is_some_and(|t| self.playback.verify(id, access.epoch, t, crate::playback::now_secs()))
            || (viewer.user.is_some() && access.allows_user(viewer.user))
    }

    /// Tells broadcast `id`'s open connections, here and on every other node, that the
    /// store changed who may watch it: those no longer allowed are disconnected by their
    /// own paths.
    pub async fn changed(&self, id: &str) -> anyhow::Result<()> {
        self.refresh(id).await?;
        self.tell_others(id, false).await;
        Ok(())
    }

    /// Ends the publishing session of broadcast `id`, on whichever node it is, after its
    /// stream key changed: whoever publishes with the old key is off the air at once.
    pub async fn evict_publisher(&self, id: &str) {
        self.evict_publisher_here(id);
        self.tell_others(id, true).await;
    }

    /// Ends the publishing session of broadcast `id` if it is on this node.
    pub fn evict_publisher_here(&self, id: &str) {
        if let Some(gate) = self.gates.get(id) {
            gate.evict_publisher();
        }
    }

    /// Tells this node's open connections of broadcast `id` who may watch it now.
    pub async fn refresh(&self, id: &str) -> anyhow::Result<()> {
        if let Some(gate) = self.gates.get(id)
            && let Some(access) = self.store.access(id).await?
        {
            gate.set(access);
        }
        if let Some(room) = self.rooms.get(id) {
            room.access_changed();
        }
        Ok(())
    }

    async fn tell_others(&self, id: &str, evict_publisher: bool) {
        let change = crate::cluster::AccessChanged {
            broadcast: id.to_owned(),
            evict_publisher,
        };
        self.bus.publish("access", &change).await;
    }
}
