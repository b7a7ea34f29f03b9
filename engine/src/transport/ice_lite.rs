//! The ICE-lite side of a WebRTC transport (RFC 8445 §2.5, §7.3 "STUN server
//! procedures"; RFC 7675 consent freshness), as mediasoup's `IceServer` behaves.
//!
//! The server never sends connectivity checks: it answers STUN Binding requests that
//! carry the transport's short-term credentials (USERNAME `<local ufrag>:<remote ufrag>`,
//! MESSAGE-INTEGRITY with the local password, FINGERPRINT), learns the remote tuples they
//! come from, and selects the tuple that the controlling browser nominates with
//! USE-CANDIDATE; a later nomination from another tuple moves the selection (network
//! change). A tuple that sends no valid request for [`CONSENT_TIMEOUT`] is forgotten;
//! when none is left the transport is `disconnected`. STUN encoding and integrity come
//! from `stun-rs`; time is a parameter.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::Rng;
use stun_rs::attributes::ice::{IceControlled, Priority, UseCandidate};
use stun_rs::attributes::stun::{
    ErrorCode, Fingerprint, MessageIntegrity, UserName, XorMappedAddress,
};
use stun_rs::methods::BINDING;
use stun_rs::{
    DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
    StunMessage, StunMessageBuilder,
};

use super::tuple::Tuple;

/// RFC 7675 §5.1: consent expires 30 s after the last valid check.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Remote tuples remembered per transport; a client cannot grow the table past this.
pub const MAX_TUPLES: usize = 8;

/// Length of a generated username fragment and password (as mediasoup: 16 and 32).
const UFRAG_LEN: usize = 16;
const PWD_LEN: usize = 32;

/// The transport's ICE state, with mediasoup's names (`iceState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// No valid request yet.
    New,
    /// A tuple is selected without nomination.
    Connected,
    /// The browser nominated a tuple (USE-CANDIDATE).
    Completed,
    /// Consent expired on every tuple.
    Disconnected,
    /// Closed.
    Closed,
}

impl IceState {
    /// The contract's and mediasoup's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            IceState::New => "new",
            IceState::Connected => "connected",
            IceState::Completed => "completed",
            IceState::Disconnected => "disconnected",
            IceState::Closed => "closed",
        }
    }
}

/// Local short-term credentials, handed to the client as `iceParameters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `usernameFragment`.
    pub ufrag: String,
    /// `password`.
    pub pwd: String,
}

impl IceCredentials {
    /// Fresh random credentials (lowercase letters and digits, ICE-char safe).
    pub fn random(rng: &mut impl Rng) -> Self {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
                .collect()
        };
        IceCredentials {
            ufrag: pick(UFRAG_LEN),
            pwd: pick(PWD_LEN),
        }
    }
}

/// What the ICE-lite side tells its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceEvent {
    /// `iceStateChange`.
    StateChanged(IceState),
    /// `iceSelectedTupleChange`: media goes to this tuple from now on.
    SelectedTupleChanged(Tuple),
}

/// Why a STUN message was refused or not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceError {
    /// Not a decodable STUN message.
    #[error("malformed STUN message: {0}")]
    Malformed(String),
    /// A STUN message that is not a Binding request (indications are keepalives).
    #[error("not a Binding request")]
    NotBindingRequest,
    /// A Binding request without USERNAME, MESSAGE-INTEGRITY, PRIORITY or FINGERPRINT.
    #[error("missing {0}")]
    MissingAttribute(&'static str),
    /// The USERNAME does not name this transport's current or previous ufrag.
    #[error("unknown username")]
    WrongUsername,
    /// MESSAGE-INTEGRITY or FINGERPRINT does not verify.
    #[error("integrity check failed")]
    BadIntegrity,
    /// The peer claims the controlled role too (RFC 8445 §7.3.1.1).
    #[error("role conflict: peer is ICE-CONTROLLED")]
    RoleConflict,
    /// The transport is closed.
    #[error("transport closed")]
    Closed,
    /// Local credentials that STUN cannot use as a short-term password.
    #[error("unusable ICE credentials")]
    BadCredentials,
}

/// The result of [`IceLite::handle_stun`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StunHandled {
    /// A valid check: a success response of this many bytes is in the output buffer,
    /// to be sent to the tuple the request came from.
    Accepted { response_len: usize },
    /// A refused request: an error response of this many bytes is in the output buffer.
    Refused {
        response_len: usize,
        reason: IceError,
    },
    /// Not answered; the caller drops the message and counts it.
    Dropped(IceError),
}

#[derive(Debug, Clone, Copy)]
struct KnownTuple {
    tuple: Tuple,
    last_seen: Instant,
}

/// The ICE-lite state machine of one WebRTC transport.
#[derive(Debug)]
pub struct IceLite {
    local: IceCredentials,
    key: HMACKey,
    /// Credentials before the last `restartIce`, accepted until the new ones are used.
    previous: Option<(IceCredentials, HMACKey)>,
    state: IceState,
    tuples: Vec<KnownTuple>,
    selected: Option<Tuple>,
    events: VecDeque<IceEvent>,
}

/// The MESSAGE-INTEGRITY key of a password (RFC 8489 §9.1.1; OpaqueString-prepared).
fn short_term_key(pwd: &str) -> Result<HMACKey, IceError> {
    HMACKey::new_short_term(pwd).map_err(|_| IceError::BadCredentials)
}

/// The local ufrag named by a Binding request's USERNAME (the part before ':'), for the
/// worker to find the transport a datagram from an unknown tuple belongs to. `None` when
/// the bytes are not a STUN request with a USERNAME.
pub fn peek_local_ufrag(data: &[u8]) -> Option<String> {
    let (msg, _) = MessageDecoderBuilder::default().build().decode(data).ok()?;
    let user = msg.get::<UserName>()?.as_user_name().ok()?;
    let name: &str = user.as_ref();
    Some(name.split(':').next().unwrap_or(name).to_owned())
}

impl IceLite {
    /// A new ICE-lite side with the given local credentials.
    pub fn new(local: IceCredentials) -> Result<Self, IceError> {
        let key = short_term_key(&local.pwd)?;
        Ok(IceLite {
            local,
            key,
            previous: None,
            state: IceState::New,
            tuples: Vec::new(),
            selected: None,
            events: VecDeque::new(),
        })
    }

    /// The current local credentials (`iceParameters`).
    pub fn credentials(&self) -> &IceCredentials {
        &self.local
    }

    /// The current state.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// The tuple media is sent to, once a valid check has arrived.
    pub fn selected_tuple(&self) -> Option<Tuple> {
        self.selected
    }

    /// Whether `tuple` has passed a valid check and still has consent; DTLS, RTP and
    /// RTCP are accepted only from such tuples.
    pub fn is_valid_tuple(&self, tuple: &Tuple) -> bool {
        self.tuples.iter().any(|t| t.tuple == *tuple)
    }

    /// `restartIce`: new local credentials. Requests with the previous ones are still
    /// answered until the first one with the new credentials arrives; tuples and state
    /// are kept, so media goes on while the browser renegotiates.
    pub fn restart(&mut self, local: IceCredentials) -> Result<(), IceError> {
        let key = short_term_key(&local.pwd)?;
        let old = std::mem::replace(&mut self.local, local);
        let old_key = std::mem::replace(&mut self.key, key);
        self.previous = Some((old, old_key));
        Ok(())
    }

    /// Closes the ICE side: no more answers, no more tuples.
    pub fn close(&mut self) {
        self.tuples.clear();
        self.selected = None;
        self.set_state(IceState::Closed);
    }

    /// Forgets a tuple whose TCP connection closed.
    pub fn remove_tuple(&mut self, tuple: &Tuple) {
        let before = self.tuples.len();
        self.tuples.retain(|t| t.tuple != *tuple);
        if self.tuples.len() != before {
            self.reselect();
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// When [`IceLite::handle_timeout`] must next be called: the earliest consent expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tuples
            .iter()
            .map(|t| t.last_seen + CONSENT_TIMEOUT)
            .min()
    }

    /// Expires tuples whose consent ran out (RFC 7675 §5.1).
    pub fn handle_timeout(&mut self, now: Instant) {
        let before = self.tuples.len();
        self.tuples
            .retain(|t| now.saturating_duration_since(t.last_seen) < CONSENT_TIMEOUT);
        if self.tuples.len() != before {
            self.reselect();
        }
    }

    /// Handles a STUN message that arrived on `tuple`, writing the response, if any, into
    /// `out` (256 bytes are always enough).
    pub fn handle_stun(
        &mut self,
        now: Instant,
        tuple: Tuple,
        data: &[u8],
        out: &mut [u8],
    ) -> StunHandled {
        if self.state == IceState::Closed {
            return StunHandled::Dropped(IceError::Closed);
        }
        let msg = match MessageDecoderBuilder::default().build().decode(data) {
            Ok((msg, _)) => msg,
            Err(e) => return StunHandled::Dropped(IceError::Malformed(e.to_string())),
        };
        if msg.method() != BINDING || msg.class() != MessageClass::Request {
            return StunHandled::Dropped(IceError::NotBindingRequest);
        }
        match self.check_request(&msg, data) {
            Ok(()) => {}
            Err(reason) => {
                let code = match reason {
                    IceError::RoleConflict => (487, "Role Conflict"),
                    IceError::WrongUsername | IceError::BadIntegrity => (401, "Unauthorized"),
                    _ => (400, "Bad Request"),
                };
                return match self.encode_error(&msg, code, out) {
                    Some(response_len) => StunHandled::Refused {
                        response_len,
                        reason,
                    },
                    None => StunHandled::Dropped(reason),
                };
            }
        }
        let nominated = msg.get::<UseCandidate>().is_some();
        self.learn(now, tuple, nominated);
        let response = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
            .with_transaction_id(*msg.transaction_id())
            .with_attribute(XorMappedAddress::from(tuple.remote))
            .with_attribute(MessageIntegrity::new(self.key.clone()))
            .with_attribute(Fingerprint::default())
            .build();
        match MessageEncoderBuilder::default()
            .build()
            .encode(out, &response)
        {
            Ok(response_len) => StunHandled::Accepted { response_len },
            Err(e) => StunHandled::Dropped(IceError::Malformed(e.to_string())),
        }
    }

    /// RFC 8445 §7.3 checks of a Binding request; on success, the previous credentials
    /// are dropped once the current ones are in use.
    fn check_request(&mut self, msg: &StunMessage, data: &[u8]) -> Result<(), IceError> {
        if msg.get::<Fingerprint>().is_none() {
            return Err(IceError::MissingAttribute("FINGERPRINT"));
        }
        if msg.get::<MessageIntegrity>().is_none() {
            return Err(IceError::MissingAttribute("MESSAGE-INTEGRITY"));
        }
        if msg.get::<Priority>().is_none() {
            return Err(IceError::MissingAttribute("PRIORITY"));
        }
        let user = msg
            .get::<UserName>()
            .and_then(|u| u.as_user_name().ok())
            .ok_or(IceError::MissingAttribute("USERNAME"))?;
        let name: &str = user.as_ref();
        let local_ufrag = name.split(':').next().unwrap_or(name);
        let current = local_ufrag == self.local.ufrag;
        let key = if current {
            self.key.clone()
        } else {
            match &self.previous {
                Some((creds, key)) if creds.ufrag == local_ufrag => key.clone(),
                _ => return Err(IceError::WrongUsername),
            }
        };
        let ctx = DecoderContextBuilder::default()
            .with_key(key)
            .with_validation()
            .build();
        if MessageDecoderBuilder::default()
            .with_context(ctx)
            .build()
            .decode(data)
            .is_err()
        {
            return Err(IceError::BadIntegrity);
        }
        if msg.get::<IceControlled>().is_some() {
            return Err(IceError::RoleConflict);
        }
        if current {
            self.previous = None;
        }
        Ok(())
    }

    fn encode_error(
        &self,
        req: &StunMessage,
        (code, reason): (u16, &str),
        out: &mut [u8],
    ) -> Option<usize> {
        let code = stun_rs::ErrorCode::new(code, reason).ok()?;
        let response = StunMessageBuilder::new(BINDING, MessageClass::ErrorResponse)
            .with_transaction_id(*req.transaction_id())
            .with_attribute(ErrorCode::from(code))
            .with_attribute(Fingerprint::default())
            .build();
        MessageEncoderBuilder::default()
            .build()
            .encode(out, &response)
            .ok()
    }

    /// Records a valid check from `tuple` and updates the selection (mediasoup's
    /// `IceServer::HandleTuple`).
    fn learn(&mut self, now: Instant, tuple: Tuple, nominated: bool) {
        if let Some(t) = self.tuples.iter_mut().find(|t| t.tuple == tuple) {
            t.last_seen = now;
        } else {
            if self.tuples.len() == MAX_TUPLES {
                // Forget the stalest tuple that is not selected.
                if let Some(i) = self
                    .tuples
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| Some(t.tuple) != self.selected)
                    .min_by_key(|(_, t)| t.last_seen)
                    .map(|(i, _)| i)
                {
                    self.tuples.swap_remove(i);
                }
            }
            self.tuples.push(KnownTuple {
                tuple,
                last_seen: now,
            });
        }
        match (self.state, nominated) {
            (IceState::New | IceState::Disconnected, false) => {
                self.select(tuple);
                self.set_state(IceState::Connected);
            }
            (_, true) => {
                self.select(tuple);
                self.set_state(IceState::Completed);
            }
            _ => {}
        }
    }

    fn select(&mut self, tuple: Tuple) {
        if self.selected != Some(tuple) {
            self.selected = Some(tuple);
            self.events.push_back(IceEvent::SelectedTupleChanged(tuple));
        }
    }

    /// After tuples were removed: keep the selection if it survived, else move it to the
    /// most recently seen tuple, else become disconnected.
    fn reselect(&mut self) {
        if self.selected.is_some_and(|s| self.is_valid_tuple(&s)) {
            return;
        }
        match self
            .tuples
            .iter()
            .max_by_key(|t| t.last_seen)
            .map(|t| t.tuple)
        {
            Some(t) => self.select(t),
            None => {
                self.selected = None;
                if matches!(self.state, IceState::Connected | IceState::Completed) {
                    self.set_state(IceState::Disconnected);
                }
            }
        }
    }

    fn set_state(&mut self, state: IceState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(IceEvent::StateChanged(state));
        }
    }
}
