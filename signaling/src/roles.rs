//! Peer roles: a bit set (contract section 5).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A set of role bits. SUBSCRIBER 1, PUBLISHER 2, MODERATOR 4, SCREEN 8, OWNER 16.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Role(u32);

impl Role {
    /// No role at all.
    pub const NONE: Role = Role(0);
    /// May receive media.
    pub const SUBSCRIBER: Role = Role(1);
    /// May send media (`produce`).
    pub const PUBLISHER: Role = Role(2);
    /// May use the `moderator:*` requests.
    pub const MODERATOR: Role = Role(4);
    /// May share a screen.
    pub const SCREEN: Role = Role(8);
    /// Owns the room: may close it; can neither be given nor taken.
    pub const OWNER: Role = Role(16);
    /// Every bit the contract knows.
    pub const KNOWN: Role = Role(31);

    /// Builds a role from bits, or `None` when a bit is not one the contract knows.
    pub fn from_bits(bits: u64) -> Option<Role> {
        (bits & !u64::from(Self::KNOWN.0) == 0).then_some(Role(bits as u32))
    }

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `other` is set.
    pub fn contains(self, other: Role) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set.
    pub fn intersects(self, other: Role) -> bool {
        self.0 & other.0 != 0
    }

    /// The union.
    pub fn with(self, other: Role) -> Role {
        Role(self.0 | other.0)
    }

    /// `self` without the bits of `other`.
    pub fn without(self, other: Role) -> Role {
        Role(self.0 & !other.0)
    }

    /// True when no bit is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Role({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bits_only() {
        assert_eq!(Role::from_bits(31), Some(Role::KNOWN));
        assert_eq!(Role::from_bits(0), Some(Role::NONE));
        assert_eq!(Role::from_bits(32), None);
        assert_eq!(Role::from_bits(u64::MAX), None);
    }

    #[test]
    fn set_operations() {
        let r = Role::PUBLISHER.with(Role::MODERATOR);
        assert!(r.contains(Role::PUBLISHER));
        assert!(!r.contains(Role::OWNER));
        assert!(r.intersects(Role::MODERATOR.with(Role::OWNER)));
        assert_eq!(r.without(Role::PUBLISHER), Role::MODERATOR);
        assert!(Role::NONE.is_empty());
    }
}
