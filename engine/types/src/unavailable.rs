//! The first engine: no media at all, every media request answered with a clear failure.
//!
//! It lets the control plane keep its final shape (issue #3) until the media workers
//! (issue #4) replace it: commands that expect an answer get
//! [`EngineError::Unavailable`]; the others (closing things) have nothing to close.

use std::collections::VecDeque;

use crate::media_engine::{EngineCommand, EngineError, EngineEvent, MediaEngine};
use crate::ortc::{RtpCapabilities, router_rtp_capabilities};

/// Answers every media request with "media is not available yet".
pub struct UnavailableEngine {
    capabilities: RtpCapabilities,
    events: VecDeque<EngineEvent>,
}

impl Default for UnavailableEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl UnavailableEngine {
    /// A new engine offering the contract's router capabilities.
    pub fn new() -> Self {
        Self {
            capabilities: router_rtp_capabilities(),
            events: VecDeque::new(),
        }
    }
}

impl MediaEngine for UnavailableEngine {
    fn router_rtp_capabilities(&self) -> &RtpCapabilities {
        &self.capabilities
    }

    fn submit(&mut self, command: EngineCommand) {
        if let Some(tag) = command.tag() {
            self.events.push_back(EngineEvent::Reply {
                tag,
                result: Err(EngineError::Unavailable),
            });
        }
    }

    fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PeerId, RoomId};
    use crate::media_engine::RequestTag;

    #[test]
    fn answers_media_requests_with_unavailable() {
        let mut engine = UnavailableEngine::new();
        engine.submit(EngineCommand::CreateRouter {
            room: RoomId::random(),
        });
        assert!(engine.poll_event().is_none());
        engine.submit(EngineCommand::CreateWebRtcTransport {
            tag: RequestTag(7),
            room: RoomId::random(),
            peer: PeerId::random(),
            force_tcp: false,
            producing: true,
            consuming: false,
        });
        match engine.poll_event() {
            Some(EngineEvent::Reply { tag, result }) => {
                assert_eq!(tag, RequestTag(7));
                let err = result.unwrap_err();
                assert_eq!(err, EngineError::Unavailable);
                assert!(err.to_string().contains("not available yet"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(engine.poll_event().is_none());
    }
}
