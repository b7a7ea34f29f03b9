//! Containment (issue 18, section 1): a panic while a worker core handles one transport's
//! datagram or timer (in the DTLS stack, the SRTP binding, a codec parser, or the router's
//! forwarding of that datagram) costs that transport and nothing else. It is caught at the
//! transport's boundary ([`WorkerCore::contained`]), logged at error level with the
//! transport and the panic's message, counted (`transport_panics` in the worker's
//! counters, stats and `/metrics`), and the transport is closed with its producers and
//! consumers and reported to the control plane as any close of the engine's own
//! (`TransportClosed`). The worker, and every other room on it, go on.
//!
//! This relies on panics unwinding: the workspace's release profile says
//! `panic = "unwind"` (`Cargo.toml`; it is also the default of the other profiles). With
//! `abort`, nothing is caught and any panic ends the process. The fuzz targets still see
//! every such panic: libfuzzer-sys's panic hook aborts before anything unwinds.
//!
//! # Why closing the transport is enough
//!
//! The panic unwinds out of whatever was being changed. What the datagram or timer of
//! transport `tk` was changing is either `tk`'s or goes with it:
//!
//! - `tk` itself (ICE, DTLS, SRTP, its RTP listener, transport-cc, bandwidth estimate) is
//!   dropped by the close;
//! - in its router, the close removes `tk`'s producers (with every consumer of theirs, on
//!   whichever transport: their peers get `consumerClosed`) and `tk`'s consumers. The
//!   router's ingress of `tk`'s RTP changes only the state of a producer of `tk`, and its
//!   fan-out only the consumers of that producer; RTCP from `tk` (reports, NACK,
//!   transport-cc, REMB) changes `tk`'s consumers, `tk`'s producers and `tk`'s bandwidth
//!   allocation;
//! - the router's tables (producer and consumer arenas, their UUID index, each producer's
//!   fan-out list, the room's transports) are changed only by control operations
//!   (`router/control.rs`), never by the media path, so they are whole when the close
//!   walks them; the router's deadlines may be early by design and are recomputed after
//!   the close;
//! - the core's own maps (tuples, ICE usernames, plain ports, peers, deadlines) change
//!   only between calls into a transport (`service_transport`, `close_transport`), so they
//!   hold whole entries, and the close removes `tk`'s; a tuple whose unmapping the panic
//!   cut off (the transport had forgotten it, the core had not heard yet) is swept.
//!
//! What is left touched outside `tk` is bounded and harmless: another transport that the
//! fan-out was sending on when it panicked (inside its `send_rtp`) may have used one
//! transport-wide sequence number or SRTP index without the packet leaving, which its
//! receiver takes for one lost packet (libsrtp's own state changes inside C calls, which a
//! Rust panic cannot cut in half); a key frame request forwarded from `tk`'s RTCP to the
//! sender of another transport's producer may come once more or later. Datagrams and
//! events already queued are whole and go out.
//!
//! Not contained: a router's own timers (no one transport to blame) and the close itself;
//! a panic there fails the worker thread, which is replaced (`driver.rs`, `engine.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use kolabmeet_media_types::panic_message::panic_message;

use super::core::WorkerCore;
use crate::arena::TransportKey;
use crate::ids::TransportId;

impl WorkerCore {
    /// Runs `work`, which handles a datagram or a timer of transport `tk` (`id`); when it
    /// panics, the panic costs that transport only (see the module documentation).
    pub(super) fn contained(
        &mut self,
        now: Instant,
        tk: TransportKey,
        id: TransportId,
        work: impl FnOnce(&mut Self),
    ) {
        // AssertUnwindSafe: what a panic leaves half-changed is closed with the transport
        // (module documentation).
        let Err(payload) = catch_unwind(AssertUnwindSafe(|| work(self))) else {
            return;
        };
        self.traffic.transport_panics += 1;
        // Once per panic: the transport is closed, its next datagrams are unknown-source.
        // A client that can trigger a panic at will must not flood the log either.
        if let Some(suppressed) = self.panic_log_limit.allow(now) {
            let message = panic_message(&*payload);
            tracing::error!(target: "kolabmeet::transport", transport = %id, panic = %message, suppressed, "internal error while handling this transport's input: transport closed");
        }
        // As any close of the engine's own: `TransportClosed` with its producers and
        // consumers (nothing if the work had closed it already).
        self.close_transport(now, tk, true);
        // Its deadline went with it; the router's were recomputed by the close. A tuple
        // the transport had unmapped in a host event the panic cut off still names it
        // (harmless, the key is dead, but kept until that address maps again): swept, on
        // this rare path only.
        self.by_tuple.retain(|_, k| *k != tk);
    }

    /// Test builds only: transport `id` panics inside itself at its next datagram (after
    /// its connection took the datagram in, before anything is routed) or at its next
    /// timer, as a bug in its DTLS stack or SRTP binding would. `false` when this core has
    /// no such transport.
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn arm_transport_panic(
        &mut self,
        id: TransportId,
        at: crate::transport::ArmedPanic,
    ) -> bool {
        let Some(tk) = self.transport_ids.get(&id) else {
            return false;
        };
        match self.transports.get_mut(*tk) {
            Some(t) => {
                t.panic_armed = Some(at);
                true
            }
            None => false,
        }
    }
}
