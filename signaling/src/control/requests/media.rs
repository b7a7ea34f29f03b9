//! Media requests: transports, producers and consumers. Each is forwarded to the engine
//! and acked when it replies (see `control::media`).

use kolabmeet_media_types::EngineCommand;

use crate::control::answer::{Answer, Ctx, PendingKind};
use crate::control::{ControlPlane, Now};
use crate::error::RequestError;
use crate::request::Request;
use crate::roles::Role;

impl ControlPlane {
    /// A media request (see `dispatch`); `role` is the asking peer's.
    pub(super) fn media_request(
        &mut self,
        ctx: Ctx,
        role: Role,
        request: Request,
        now: Now,
    ) -> Result<Answer, RequestError> {
        let (room, peer) = (ctx.room, ctx.peer);
        match request {
            Request::CreateWebRtcTransport {
                force_tcp,
                producing,
                consuming,
            } => self.engine_request(
                ctx,
                PendingKind::CreateTransport { consuming },
                |tag| EngineCommand::CreateWebRtcTransport {
                    tag,
                    room,
                    peer,
                    force_tcp,
                    producing,
                    consuming,
                },
                now,
            ),
            Request::ConnectWebRtcTransport {
                transport,
                dtls_parameters,
            } => self.engine_request(
                ctx,
                PendingKind::Plain,
                |tag| EngineCommand::ConnectWebRtcTransport {
                    tag,
                    peer,
                    transport,
                    dtls_parameters: *dtls_parameters,
                },
                now,
            ),
            Request::RestartIce { transport } => self.engine_request(
                ctx,
                PendingKind::Plain,
                |tag| EngineCommand::RestartIce {
                    tag,
                    peer,
                    transport,
                },
                now,
            ),
            Request::CreatePlainTransport {
                producing,
                consuming,
            } => self.engine_request(
                ctx,
                PendingKind::CreateTransport { consuming },
                |tag| EngineCommand::CreatePlainTransport {
                    tag,
                    room,
                    peer,
                    producing,
                    consuming,
                },
                now,
            ),
            Request::ConnectPlainTransport {
                transport,
                ip,
                port,
                rtcp_port,
            } => self.engine_request(
                ctx,
                PendingKind::Plain,
                |tag| EngineCommand::ConnectPlainTransport {
                    tag,
                    peer,
                    transport,
                    ip,
                    port,
                    rtcp_port,
                },
                now,
            ),
            Request::Produce {
                transport,
                kind,
                rtp_parameters,
                source,
                app_data,
            } => {
                if !role.contains(Role::PUBLISHER) {
                    return Err(RequestError::Forbidden {
                        method: "produce",
                        reason: "the peer lacks the PUBLISHER role",
                    });
                }
                tracing::debug!(room = %room, peer = %peer, ?source, ?kind, "produce");
                self.engine_request(
                    ctx,
                    PendingKind::Produce { kind, app_data },
                    |tag| EngineCommand::Produce {
                        tag,
                        peer,
                        transport,
                        kind,
                        rtp_parameters: *rtp_parameters,
                        source,
                    },
                    now,
                )
            }
            Request::CloseProducer(producer) => self.engine_request(
                ctx,
                PendingKind::CloseProducer { producer },
                |tag| EngineCommand::CloseProducer {
                    tag,
                    peer,
                    producer,
                },
                now,
            ),
            Request::PauseProducer(producer) | Request::ResumeProducer(producer) => {
                let paused = matches!(request, Request::PauseProducer(_));
                self.engine_request(
                    ctx,
                    PendingKind::Plain,
                    |tag| EngineCommand::SetProducerPaused {
                        tag,
                        peer,
                        producer,
                        paused,
                    },
                    now,
                )
            }
            Request::PauseConsumer(consumer) | Request::ResumeConsumer(consumer) => {
                let paused = matches!(request, Request::PauseConsumer(_));
                self.engine_request(
                    ctx,
                    PendingKind::Plain,
                    |tag| EngineCommand::SetConsumerPaused {
                        tag,
                        peer,
                        consumer,
                        paused,
                    },
                    now,
                )
            }
            other => unreachable!("{} is not a media request", other.method()),
        }
    }
}
