//! Rooms over several workers (contract section 6: "Rooms larger than
//! `ROUTER_SCALE_SIZE` peers spread over several workers, with each producer piped to the
//! other workers of the room"; issue 16). A producer is mirrored on every other worker
//! that holds a router of its room, under the same id; its packets cross to each such
//! worker once, in memory, as [`PipeMessage`]s, and what the far side needs from the
//! origin (key frames) travels back the same way. No sockets, no SRTP, no system calls
//! between workers.
//!
//! | file | what |
//! |---|---|
//! | [`pipe_message`] | what crosses between two workers |
//! | [`pipe_outbox`] | what one worker's core wrote for the others in one loop round, bounded |
//! | [`mirror_spec`] | what a worker needs to mirror a producer of another |
//! | [`worker_index`] | a worker, by its slot |

pub mod mirror_spec;
pub mod pipe_message;
pub mod pipe_outbox;
pub mod worker_index;

pub use mirror_spec::MirrorSpec;
pub use pipe_message::{PipeMessage, Want};
pub use pipe_outbox::PipeOutbox;
pub use worker_index::WorkerIndex;
