//! The connection of a WebRTC transport (the connectivity half of mediasoup's
//! `WebRtcTransport`; the transport itself, with its listener, feedback and bandwidth,
//! is `MediaTransport`): ICE-lite,
//! then DTLS in the role opposite to the client's, then SRTP with the exported keys
//! (contract section 6; RFC 8445 §2.5, RFC 5763 §5, RFC 5764 §4.2).
//!
//! Sans-IO: the worker hands it every datagram (or RFC 4571 frame) that belongs to it
//! with the tuple it came from and the time, and sends what [`WebRtcConnection::poll_transmit`]
//! returns. STUN, DTLS and SRTP are handled here; decrypted RTP and RTCP go back to the
//! caller, which routes them.

use std::collections::VecDeque;
use std::time::Instant;

use kolabmeet_net::{PacketClass, classify};

use super::ice_lite::{IceCredentials, IceError, IceEvent, IceLite, IceState, StunHandled};
use super::tuple::Tuple;
use crate::crypto::{DtlsCertificate, DtlsError, DtlsEvent, DtlsSession, DtlsState, SrtpSession};
use crate::ortc::{DtlsFingerprint, DtlsParameters, DtlsRole};

/// DTLS records kept while the client's `connectWebRtcTransport` has not arrived yet.
const MAX_EARLY_DTLS: usize = 8;

/// Outgoing datagrams queued before the worker drains them.
const MAX_QUEUED_TRANSMITS: usize = 256;

/// Why the transport refused a connect or a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// `connectWebRtcTransport` came twice.
    #[error("transport already connected")]
    AlreadyConnected,
    /// The DTLS stack refused to start (bad fingerprints, ...).
    #[error("DTLS: {0}")]
    Dtls(#[from] DtlsError),
    /// ICE credentials were unusable.
    #[error("ICE: {0}")]
    Ice(#[from] IceError),
    /// The transport is closed.
    #[error("transport closed")]
    Closed,
    /// A WebRTC operation (DTLS connect, ICE restart) on a plain RTP transport.
    #[error("not a WebRTC transport")]
    NotWebRtc,
}

/// Why an incoming datagram was dropped (counted, logged at debug level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not STUN, DTLS, RTP or RTCP (RFC 7983).
    Unknown,
    /// STUN that was refused or not a request.
    Stun,
    /// DTLS, RTP or RTCP from a tuple that has not passed ICE.
    InvalidTuple,
    /// DTLS the session refused, or that came before `connect` with the buffer full.
    Dtls,
    /// RTP or RTCP before SRTP keys exist.
    NotConnected,
    /// SRTP authentication or replay check failed.
    Srtp,
    /// RTP whose header does not parse (dropped before decryption).
    Malformed,
    /// The transport is closed.
    Closed,
    /// A plain transport's datagram from another address than the one connected or
    /// learnt (comedia): a second sender cannot take the transport over.
    WrongSource,
}

/// What [`WebRtcConnection::handle_datagram`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Consumed by ICE or DTLS; answers (if any) are queued for transmission.
    Handled,
    /// Decrypted RTP, now in the caller's buffer.
    Rtp,
    /// RTP for the caller to route: its header is readable (RFC 3711 §3.1 leaves it in
    /// the clear), and the caller finds the stream it belongs to before anything else;
    /// from a WebRTC connection (a tuple that passed ICE, SRTP keys in place) its payload
    /// is still protected, and [`WebRtcConnection::unprotect_rtp`] decrypts it only if a
    /// stream wants it ([`WebRtcConnection::receive`] only); from a plain transport it is
    /// in the clear (see `Connection::receive`).
    RtpToRoute,
    /// Decrypted RTCP (a compound packet), now in the caller's buffer.
    Rtcp,
    /// Dropped.
    Dropped(DropReason),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub tuple: Tuple,
    /// The bytes (unframed; the worker adds RFC 4571 framing on TCP).
    pub data: Vec<u8>,
}

/// What the transport reports to its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// `iceStateChange`.
    IceState(IceState),
    /// `iceSelectedTupleChange`.
    SelectedTuple(Tuple),
    /// `dtlsStateChange` (`connecting`, `connected`, `failed`, `closed`).
    DtlsState(DtlsState),
    /// SRTP keys are in place: media can flow.
    Connected,
}

/// Per-transport counters of dropped input (console and stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Unclassifiable datagrams.
    pub unknown: u64,
    /// Refused or unanswered STUN.
    pub stun: u64,
    /// Input from tuples that have not passed ICE.
    pub invalid_tuple: u64,
    /// Refused DTLS.
    pub dtls: u64,
    /// RTP/RTCP before keys.
    pub not_connected: u64,
    /// SRTP failures.
    pub srtp: u64,
    /// RTP whose header does not parse.
    pub malformed: u64,
    /// Plain transports: datagrams from another address than the remote one.
    pub wrong_source: u64,
}

impl DropCounters {
    /// Counts one datagram dropped for `reason` (what a closed transport drops is not
    /// counted); returns that reason's count.
    pub fn count(&mut self, reason: DropReason) -> u64 {
        let counter = match reason {
            DropReason::Unknown => &mut self.unknown,
            DropReason::Stun => &mut self.stun,
            DropReason::InvalidTuple => &mut self.invalid_tuple,
            DropReason::Dtls => &mut self.dtls,
            DropReason::NotConnected => &mut self.not_connected,
            DropReason::Srtp => &mut self.srtp,
            DropReason::Malformed => &mut self.malformed,
            DropReason::WrongSource => &mut self.wrong_source,
            DropReason::Closed => return 0,
        };
        *counter += 1;
        *counter
    }

    /// Everything dropped, whatever the reason.
    pub fn total(&self) -> u64 {
        let Self {
            unknown,
            stun,
            invalid_tuple,
            dtls,
            not_connected,
            srtp,
            malformed,
            wrong_source,
        } = *self;
        unknown + stun + invalid_tuple + dtls + not_connected + srtp + malformed + wrong_source
    }
}

/// One WebRTC transport's connection: its ICE, DTLS and SRTP state.
pub struct WebRtcConnection {
    ice: IceLite,
    certificate: DtlsCertificate,
    remote_dtls: Option<(DtlsRole, Vec<DtlsFingerprint>)>,
    dtls: Option<DtlsSession>,
    early_dtls: Vec<Vec<u8>>,
    srtp: Option<SrtpSession>,
    closed: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TransportEvent>,
    drops: DropCounters,
}

impl WebRtcConnection {
    /// A new transport with these local ICE credentials, using the worker's certificate.
    pub fn new(
        credentials: IceCredentials,
        certificate: DtlsCertificate,
    ) -> Result<Self, TransportError> {
        Ok(WebRtcConnection {
            ice: IceLite::new(credentials)?,
            certificate,
            remote_dtls: None,
            dtls: None,
            early_dtls: Vec::new(),
            srtp: None,
            closed: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounters::default(),
        })
    }

    /// `iceParameters` for the client.
    pub fn ice_credentials(&self) -> &IceCredentials {
        self.ice.credentials()
    }

    /// `dtlsParameters` for the client: role `auto` and the certificate's fingerprints.
    pub fn local_dtls_parameters(&self) -> DtlsParameters {
        DtlsParameters {
            role: DtlsRole::Auto,
            fingerprints: self.certificate.fingerprints().to_vec(),
        }
    }

    /// ICE state.
    pub fn ice_state(&self) -> IceState {
        self.ice.state()
    }

    /// DTLS state (`new` is `None`).
    pub fn dtls_state(&self) -> Option<DtlsState> {
        self.dtls.as_ref().map(DtlsSession::state)
    }

    /// The tuple media goes to.
    pub fn selected_tuple(&self) -> Option<Tuple> {
        self.ice.selected_tuple()
    }

    /// Whether SRTP keys are in place.
    pub fn is_connected(&self) -> bool {
        self.srtp.is_some() && !self.closed
    }

    /// Whether `tuple` has passed ICE (the worker maps it to this transport then).
    pub fn is_valid_tuple(&self, tuple: &Tuple) -> bool {
        self.ice.is_valid_tuple(tuple)
    }

    /// Dropped-input counters.
    pub fn drops(&self) -> DropCounters {
        self.drops
    }

    /// `connectWebRtcTransport`: the client's DTLS role and fingerprints. We take the
    /// opposite role; against `auto` we are the client, as mediasoup (the browser is ICE
    /// controlling and will be the DTLS server then).
    pub fn connect(&mut self, now: Instant, remote: DtlsParameters) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        if self.remote_dtls.is_some() {
            return Err(TransportError::AlreadyConnected);
        }
        let local_role = match remote.role {
            DtlsRole::Client => DtlsRole::Server,
            DtlsRole::Server | DtlsRole::Auto => DtlsRole::Client,
        };
        self.remote_dtls = Some((local_role, remote.fingerprints));
        self.maybe_start_dtls(now)?;
        Ok(())
    }

    /// `restartIce`: new local credentials; media goes on over the current tuples.
    pub fn restart_ice(&mut self, credentials: IceCredentials) -> Result<(), TransportError> {
        self.ice.restart(credentials)?;
        Ok(())
    }

    /// Starts DTLS once both the remote parameters and a selected tuple exist (a client
    /// needs somewhere to send its ClientHello; a server may start at once).
    fn maybe_start_dtls(&mut self, now: Instant) -> Result<(), TransportError> {
        if self.dtls.is_some() || self.closed {
            return Ok(());
        }
        let Some((role, fingerprints)) = &self.remote_dtls else {
            return Ok(());
        };
        if *role == DtlsRole::Client && self.ice.selected_tuple().is_none() {
            return Ok(());
        }
        let session = DtlsSession::new(*role, &self.certificate, fingerprints, now)?;
        self.dtls = Some(session);
        self.events
            .push_back(TransportEvent::DtlsState(DtlsState::Connecting));
        for record in std::mem::take(&mut self.early_dtls) {
            self.feed_dtls(now, &record);
        }
        self.drain_dtls();
        Ok(())
    }

    /// Handles a datagram from `tuple`. RTP and RTCP are decrypted in place in `buf`.
    pub fn handle_datagram(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) -> Received {
        match self.receive(now, tuple, buf) {
            Received::RtpToRoute => self.unprotect_rtp(buf),
            other => other,
        }
    }

    /// Decrypts RTP that [`WebRtcConnection::receive`] left protected, in place.
    pub fn unprotect_rtp(&mut self, buf: &mut Vec<u8>) -> Received {
        let Some(srtp) = self.srtp.as_mut().filter(|_| !self.closed) else {
            return self.drop(DropReason::NotConnected);
        };
        match srtp.unprotect_rtp(buf) {
            Ok(()) => Received::Rtp,
            Err(e) => {
                tracing::debug!(target: "kolabmeet::srtp", error = %e, "SRTP unprotect failed");
                self.drop(DropReason::Srtp)
            }
        }
    }

    /// Counts RTP the caller dropped before decryption because its header does not parse.
    pub fn drop_malformed(&mut self) {
        self.drop(DropReason::Malformed);
    }

    /// Handles a datagram from `tuple` as [`WebRtcConnection::handle_datagram`] does, but
    /// leaves RTP protected ([`Received::RtpToRoute`]): the caller finds the packet's
    /// stream from its header first, and spends no decryption on what none wants.
    pub fn receive(&mut self, now: Instant, tuple: Tuple, buf: &mut Vec<u8>) -> Received {
        if self.closed {
            return self.drop(DropReason::Closed);
        }
        match classify(buf) {
            PacketClass::Stun => {
                let mut out = [0u8; 512];
                let handled = self.ice.handle_stun(now, tuple, buf, &mut out);
                let result = match handled {
                    StunHandled::Accepted { response_len } => {
                        self.queue(tuple, out[..response_len].to_vec());
                        Received::Handled
                    }
                    StunHandled::Refused {
                        response_len,
                        reason,
                    } => {
                        tracing::debug!(target: "kolabmeet::ice", %reason, remote = %tuple.remote, "STUN request refused");
                        self.queue(tuple, out[..response_len].to_vec());
                        self.drop(DropReason::Stun)
                    }
                    StunHandled::Dropped(reason) => {
                        tracing::debug!(target: "kolabmeet::ice", %reason, remote = %tuple.remote, "STUN dropped");
                        self.drop(DropReason::Stun)
                    }
                };
                self.drain_ice(now);
                result
            }
            PacketClass::Dtls => {
                if !self.ice.is_valid_tuple(&tuple) {
                    return self.drop(DropReason::InvalidTuple);
                }
                if self.dtls.is_none() {
                    if self.early_dtls.len() < MAX_EARLY_DTLS {
                        self.early_dtls.push(buf.clone());
                        return Received::Handled;
                    }
                    return self.drop(DropReason::Dtls);
                }
                let ok = self.feed_dtls(now, buf);
                self.drain_dtls();
                if ok {
                    Received::Handled
                } else {
                    self.drop(DropReason::Dtls)
                }
            }
            PacketClass::RtpOrRtcp => {
                if !self.ice.is_valid_tuple(&tuple) {
                    return self.drop(DropReason::InvalidTuple);
                }
                let Some(srtp) = self.srtp.as_mut() else {
                    return self.drop(DropReason::NotConnected);
                };
                if !kolabmeet_net::rtcp::is_rtcp(buf) {
                    return Received::RtpToRoute;
                }
                srtp.unprotect_rtcp(buf).map(|_| Received::Rtcp).unwrap_or_else(|e| {
                    tracing::debug!(target: "kolabmeet::srtp", error = %e, "SRTP unprotect failed");
                    self.drop(DropReason::Srtp)
                })
            }
            PacketClass::Unknown => self.drop(DropReason::Unknown),
        }
    }

    fn feed_dtls(&mut self, now: Instant, record: &[u8]) -> bool {
        let Some(dtls) = self.dtls.as_mut() else {
            return false;
        };
        match dtls.handle_datagram(now, record) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(target: "kolabmeet::dtls", error = %e, "DTLS record refused");
                false
            }
        }
    }

    /// Protects an outgoing RTP packet in place; the caller sends it to the selected
    /// tuple. `false` when the transport cannot send (not connected, SRTP error).
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> bool {
        match self.srtp.as_mut() {
            Some(srtp) if !self.closed => match srtp.protect_rtp(packet) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!(target: "kolabmeet::srtp", error = %e, len = packet.len(), "RTP packet not protected, not sent");
                    false
                }
            },
            _ => false,
        }
    }

    /// Protects an outgoing RTCP compound packet in place.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> bool {
        match self.srtp.as_mut() {
            Some(srtp) if !self.closed => srtp.protect_rtcp(packet).is_ok(),
            _ => false,
        }
    }

    /// Frees libsrtp's per-SSRC state of streams that ended: `outbound` SSRCs of a closed
    /// consumer (media and RTX), `inbound` SSRCs of a closed producer. libsrtp's wildcard
    /// templates create a stream for every new SSRC and never drop one, so without this a
    /// transport that sees many consumers come and go grows without bound.
    pub fn forget_srtp_streams(&mut self, outbound: &[u32], inbound: &[u32]) {
        let Some(srtp) = self.srtp.as_mut() else {
            return;
        };
        // A stream that never carried a packet has no state: NO_CTX is expected.
        for &ssrc in outbound {
            let _ = srtp.remove_outbound_ssrc(ssrc);
        }
        for &ssrc in inbound {
            let _ = srtp.remove_inbound_ssrc(ssrc);
        }
    }

    /// Whether libsrtp holds state for `ssrc` in the given direction (tests of bounded
    /// state).
    pub fn has_srtp_stream(&mut self, ssrc: u32, outbound: bool) -> bool {
        self.srtp
            .as_mut()
            .is_some_and(|s| s.has_stream(ssrc, outbound))
    }

    /// Forgets a tuple whose TCP connection closed.
    pub fn remove_tuple(&mut self, now: Instant, tuple: &Tuple) {
        self.ice.remove_tuple(tuple);
        self.drain_ice(now);
    }

    /// Closes: DTLS `close_notify` to the peer, then silence.
    pub fn close(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.close(now);
        }
        self.drain_dtls();
        self.closed = true;
        self.ice.close();
        self.srtp = None;
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.events.pop_front()
    }

    /// When [`WebRtcConnection::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let dtls = self.dtls.as_ref().and_then(DtlsSession::poll_timeout);
        match (self.ice.poll_timeout(), dtls) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drives ICE consent and DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ice.handle_timeout(now);
        self.drain_ice(now);
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.handle_timeout(now);
        }
        self.drain_dtls();
    }

    fn drop(&mut self, reason: DropReason) -> Received {
        self.drops.count(reason);
        Received::Dropped(reason)
    }

    fn queue(&mut self, tuple: Tuple, data: Vec<u8>) {
        if self.transmits.len() < MAX_QUEUED_TRANSMITS {
            self.transmits.push_back(Transmit { tuple, data });
        }
    }

    fn drain_ice(&mut self, now: Instant) {
        let mut selected = false;
        while let Some(e) = self.ice.poll_event() {
            self.events.push_back(match e {
                IceEvent::StateChanged(s) => TransportEvent::IceState(s),
                IceEvent::SelectedTupleChanged(t) => {
                    selected = true;
                    TransportEvent::SelectedTuple(t)
                }
            });
        }
        if selected
            && self.dtls.is_none()
            && let Err(e) = self.maybe_start_dtls(now)
        {
            tracing::debug!(target: "kolabmeet::dtls", error = %e, "DTLS could not start");
        }
    }

    fn drain_dtls(&mut self) {
        let Some(dtls) = self.dtls.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(data) = dtls.poll_transmit() {
            out.push(data);
        }
        let mut events = Vec::new();
        while let Some(e) = dtls.poll_event() {
            events.push(e);
        }
        if let Some(tuple) = self.ice.selected_tuple() {
            for data in out {
                self.queue(tuple, data);
            }
        }
        for e in events {
            match e {
                DtlsEvent::Connected {
                    profile,
                    local_keys,
                    remote_keys,
                } => match SrtpSession::new(profile, &local_keys, &remote_keys) {
                    Ok(srtp) => {
                        self.srtp = Some(srtp);
                        self.events
                            .push_back(TransportEvent::DtlsState(DtlsState::Connected));
                        self.events.push_back(TransportEvent::Connected);
                    }
                    Err(e) => {
                        tracing::warn!(target: "kolabmeet::srtp", error = %e, "SRTP session could not be created");
                        self.events
                            .push_back(TransportEvent::DtlsState(DtlsState::Failed));
                    }
                },
                DtlsEvent::Failed(e) => {
                    tracing::debug!(target: "kolabmeet::dtls", error = %e, "DTLS failed");
                    self.srtp = None;
                    self.events
                        .push_back(TransportEvent::DtlsState(DtlsState::Failed));
                }
                DtlsEvent::Closed => {
                    self.srtp = None;
                    self.events
                        .push_back(TransportEvent::DtlsState(DtlsState::Closed));
                }
                DtlsEvent::ApplicationData(_) => {}
            }
        }
    }
}
