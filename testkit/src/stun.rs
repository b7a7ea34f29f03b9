//! ICE Binding requests (RFC 8445 §7.1.1, RFC 8489) built with stun-rs the way a
//! controlling browser builds them, with switches to leave attributes out or get them
//! wrong, for the ICE-lite tests, the worker harness and the fuzz seeds.

use stun_rs::attributes::ice::{IceControlled, IceControlling, Priority, UseCandidate};
use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
use stun_rs::methods::BINDING;
use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder};

/// The PRIORITY a browser gives a host candidate (type preference 126).
pub const HOST_PRIORITY: u32 = 1_845_501_695;

/// One Binding request. [`BindingRequest::new`] gives a valid check of a controlling
/// agent; clear or set fields to make it otherwise.
#[derive(Debug, Clone, Copy)]
pub struct BindingRequest<'a> {
    /// USERNAME (`<server ufrag>:<browser ufrag>`), or none.
    pub username: Option<&'a str>,
    /// The server's ICE password, the MESSAGE-INTEGRITY key.
    pub pwd: &'a str,
    /// Carry USE-CANDIDATE (nominate this pair).
    pub nominate: bool,
    /// Claim the controlled role (ICE-CONTROLLED) instead of ICE-CONTROLLING.
    pub controlled: bool,
    /// Carry PRIORITY.
    pub priority: bool,
    /// Carry MESSAGE-INTEGRITY.
    pub integrity: bool,
    /// Carry FINGERPRINT.
    pub fingerprint: bool,
}

impl<'a> BindingRequest<'a> {
    /// A valid, non-nominating check with `username` and `pwd`.
    pub fn new(username: &'a str, pwd: &'a str) -> Self {
        BindingRequest {
            username: Some(username),
            pwd,
            nominate: false,
            controlled: false,
            priority: true,
            integrity: true,
            fingerprint: true,
        }
    }

    /// The same request with USE-CANDIDATE.
    pub fn nominating(self) -> Self {
        BindingRequest {
            nominate: true,
            ..self
        }
    }

    /// The request on the wire. Panics on a username or password stun-rs refuses (test
    /// input, not network input).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request);
        if let Some(u) = self.username {
            b = b.with_attribute(UserName::new(u).expect("a valid STUN username"));
        }
        if self.priority {
            b = b.with_attribute(Priority::from(HOST_PRIORITY));
        }
        b = if self.controlled {
            b.with_attribute(IceControlled::from(7))
        } else {
            b.with_attribute(IceControlling::from(7))
        };
        if self.nominate {
            b = b.with_attribute(UseCandidate::default());
        }
        if self.integrity {
            b = b.with_attribute(MessageIntegrity::new(
                HMACKey::new_short_term(self.pwd).expect("a valid ICE password"),
            ));
        }
        if self.fingerprint {
            b = b.with_attribute(Fingerprint::default());
        }
        let mut out = [0u8; 512];
        let n = MessageEncoderBuilder::default()
            .build()
            .encode(&mut out, &b.build())
            .expect("a Binding request fits 512 bytes");
        out[..n].to_vec()
    }
}
