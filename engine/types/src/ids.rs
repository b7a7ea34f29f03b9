//! Typed identifiers of the engine's objects.
//!
//! Every id is a UUID v4, the format the contract's HTTP API and mediasoup v3 hand to
//! clients (section 3: `{"id":"<uuid v4>"}`). Inside the server ids are never bare strings:
//! a `PeerId` cannot be passed where a `RoomId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// The id as a UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            /// Parses the hyphenated form a client sends back; anything else is an error.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }
    };
}

uuid_id!(
    /// A room (contract section 3: `POST /meetmedia/api/sessions`).
    RoomId
);
uuid_id!(
    /// A peer of a room (contract section 3: `POST .../sessions/<id>/connection`).
    PeerId
);
uuid_id!(
    /// A WebRTC or plain transport.
    TransportId
);
uuid_id!(
    /// A producer (an incoming media source).
    ProducerId
);
uuid_id!(
    /// A consumer (an outgoing copy of a producer for one peer).
    ConsumerId
);
uuid_id!(
    /// A router (one per room per worker).
    RouterId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = RoomId::random();
        let parsed: RoomId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
        assert_eq!(id.to_string().len(), 36);
    }

    #[test]
    fn rejects_garbage() {
        assert!("room1".parse::<PeerId>().is_err());
        assert!("".parse::<PeerId>().is_err());
    }

    #[test]
    fn serializes_as_plain_string() {
        let id = PeerId::random();
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    }
}
