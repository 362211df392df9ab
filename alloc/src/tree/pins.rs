//! Pins: page-level reference counts. A pin on a node counts on the node and on every ancestor
//! up to its LoRA, so a pinned KV block keeps its LoRA pinned, and pinned nodes never move.
//!
//! Two ways to hold one: a [`PinId`] (copyable; released with [`Tree::unpin`], and a second
//! release is a typed error), or a [`PinGuard`] that releases itself when dropped. A dropped
//! guard cannot reach the tree, so it leaves its id on a ledger that the tree settles at the
//! start of its next mutation (and in [`Tree::settle`]); until then the pin still counts.

use std::cell::RefCell;
use std::rc::Rc;

use super::{PinRecord, ROOT, Tree};
use crate::error::{AllocError, Busy, Result};
use crate::ids::{NodeId, PinId};
use crate::tier::Tier;

/// A pin that releases itself when dropped (or explicitly with [`Tree::release`]).
#[derive(Debug)]
#[must_use = "dropping the guard releases the pin"]
pub struct PinGuard {
    pin: PinId,
    node: NodeId,
    ledger: Rc<RefCell<Vec<PinId>>>,
    armed: bool,
}

impl PinGuard {
    /// The pin's id.
    pub fn id(&self) -> PinId {
        self.pin
    }

    /// The pinned node.
    pub fn node(&self) -> NodeId {
        self.node
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.armed {
            self.ledger.borrow_mut().push(self.pin);
        }
    }
}

impl Tree {
    /// Pins `id`: it and its ancestors must be resident in HBM and not moving.
    pub fn pin(&mut self, id: NodeId) -> Result<PinId> {
        self.settle();
        self.get(id)?;
        let mut slot = id.key;
        while slot != ROOT {
            let node = &self.nodes[slot as usize];
            let node_id = self.id_of(slot);
            if node.tier != Tier::Hbm {
                return Err(AllocError::NotInHbm {
                    node: node_id,
                    tier: node.tier,
                });
            }
            if node.flight.is_some() {
                return Err(AllocError::NodeBusy {
                    node: node_id,
                    reason: Busy::InFlight,
                });
            }
            slot = node.parent;
        }
        if self.pins.len() as u32 >= self.config.max_pins {
            return Err(AllocError::TableFull {
                table: "pin",
                capacity: self.config.max_pins,
            });
        }
        let serial = self.next_pin_serial;
        self.next_pin_serial = self.next_pin_serial.wrapping_add(1).max(1);
        let key = self.pins.insert(PinRecord {
            serial,
            slot: id.key,
        }) as u32;
        self.add_pins(id.key, true);
        Ok(PinId { key, serial })
    }

    /// Pins `id` and returns a guard that unpins on drop.
    pub fn pin_guard(&mut self, id: NodeId) -> Result<PinGuard> {
        let pin = self.pin(id)?;
        Ok(PinGuard {
            pin,
            node: id,
            ledger: Rc::clone(&self.released),
            armed: true,
        })
    }

    /// Releases a pin now. A pin released twice is [`AllocError::UnknownPin`].
    pub fn unpin(&mut self, pin: PinId) -> Result<()> {
        self.settle();
        self.unpin_now(pin)
    }

    /// Moves a live pin from its node down to `to`, a descendant (or the node itself), in
    /// O(distance) instead of unpinning and re-pinning the whole path. `to` and the nodes
    /// between must sit in HBM. On error nothing changes.
    pub fn move_pin_down(&mut self, pin: PinId, to: NodeId) -> Result<()> {
        self.settle();
        self.get(to)?;
        let from = match self.pins.get(pin.key as usize) {
            Some(record) if record.serial == pin.serial => record.slot,
            _ => return Err(AllocError::UnknownPin { pin }),
        };
        let mut slot = to.key;
        while slot != from {
            if slot == ROOT {
                return Err(AllocError::NotBelow {
                    node: to,
                    pinned: self.id_of(from),
                });
            }
            let node = &self.nodes[slot as usize];
            if node.tier != Tier::Hbm {
                return Err(AllocError::NotInHbm {
                    node: self.id_of(slot),
                    tier: node.tier,
                });
            }
            if node.flight.is_some() {
                return Err(AllocError::NodeBusy {
                    node: self.id_of(slot),
                    reason: Busy::InFlight,
                });
            }
            slot = node.parent;
        }
        let mut slot = to.key;
        while slot != from {
            let node = &mut self.nodes[slot as usize];
            node.pins += 1;
            let parent = node.parent;
            if node.pins == 1 {
                self.pinned_nodes += 1;
                self.sync_candidates(slot);
            }
            slot = parent;
        }
        self.pins[pin.key as usize].slot = to.key;
        Ok(())
    }

    /// Releases a guard's pin now.
    pub fn release(&mut self, mut guard: PinGuard) -> Result<()> {
        guard.armed = false;
        self.unpin(guard.pin)
    }

    /// The node a live pin holds.
    pub fn pinned_node(&self, pin: PinId) -> Result<NodeId> {
        match self.pins.get(pin.key as usize) {
            Some(record) if record.serial == pin.serial => Ok(self.id_of(record.slot)),
            _ => Err(AllocError::UnknownPin { pin }),
        }
    }

    /// Live pins (records not yet released, guards dropped but not yet settled included).
    pub fn live_pins(&self) -> usize {
        self.pins.len()
    }

    /// Releases the pins of guards that were dropped since the last mutation.
    pub fn settle(&mut self) {
        if self.released.borrow().is_empty() {
            return;
        }
        let mut released = std::mem::take(&mut *self.released.borrow_mut());
        for pin in released.drain(..) {
            // A guard whose pin was already released through its id finds it gone; the serial
            // check keeps it from touching a newer pin in the same slot.
            let _already_released = self.unpin_now(pin).is_err();
        }
        *self.released.borrow_mut() = released;
    }

    fn unpin_now(&mut self, pin: PinId) -> Result<()> {
        match self.pins.get(pin.key as usize) {
            Some(record) if record.serial == pin.serial => {
                let slot = record.slot;
                self.pins.remove(pin.key as usize);
                self.add_pins(slot, false);
                Ok(())
            }
            _ => Err(AllocError::UnknownPin { pin }),
        }
    }

    fn add_pins(&mut self, mut slot: u32, up: bool) {
        while slot != ROOT {
            let node = &mut self.nodes[slot as usize];
            let parent = node.parent;
            if up {
                node.pins += 1;
                if node.pins == 1 {
                    self.pinned_nodes += 1;
                    self.sync_candidates(slot);
                }
            } else {
                node.pins -= 1;
                if node.pins == 0 {
                    self.pinned_nodes -= 1;
                    self.sync_candidates(slot);
                }
            }
            slot = parent;
        }
    }
}
