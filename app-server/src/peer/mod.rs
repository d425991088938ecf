//! The JSON-RPC peer: one host connection over a byte stream (docs/protocol.md §1, §2).
//!
//! # Layout
//! - [`framing`](self::framing): detects the host's framing (lines or `Content-Length`
//!   headers), cuts frames out of the input without ever holding an oversized message,
//!   and wraps outgoing bytes in frames of the same framing. Bytes in, bytes out: knows
//!   no JSON-RPC.
//! - `connection`: the reader loop — dispatch in arrival order (barriers, concurrent
//!   requests up to a limit, notifications in order), routing of the host's responses,
//!   and the shutdown after end of input. Knows no bytes.
//! - `lifecycle`: where the handshake is, and the gate every message passes before
//!   dispatch; why there is no closing state.
//! - `incoming`: what one frame is — a message, or the error to answer it with — and the
//!   messages held while dispatch waits.
//! - `task`: one request's task — handler, response, what follows the response.
//! - `writer`: the one task that owns the output; serialises the queued messages into
//!   one buffer, framed.
//! - `outgoing`: what the writer's queue holds, and what it counts against the output
//!   budget.
//! - `shared`: the state of the connection that the reader, the writer and every handle
//!   share (output queue and budget, dialect, framing, opt-outs, cancellation).
//! - `pending`: the table of server→host requests waiting for their answer, and the
//!   routing of the host's responses to them.
//! - `handle`: [`PeerHandle`], what handlers and background tasks use to talk to the
//!   host (server→host requests, notifications).
//! - `context`: [`RequestContext`], what one request's handler gets: its id, the
//!   connection, what to send after its response.
//!
//! A [`Service`] supplies the methods; the peer knows none of them except `initialize`,
//! which gates everything else.

use std::sync::Arc;
use std::time::Duration;

use authbridge_protocol::ErrorObject;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

mod connection;
mod context;
pub(crate) mod framing;
mod handle;
mod incoming;
mod lifecycle;
mod outgoing;
mod pending;
mod shared;
mod task;
mod writer;

pub use context::{InFlight, RequestContext};
pub use handle::{PeerHandle, PeerRequestError};

/// Limits of one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// Largest message accepted from the host, in bytes; larger ones are answered with
    /// -32600 and skipped.
    pub max_message_bytes: usize,
    /// How many concurrent requests may run at once; beyond it the host gets -32001.
    pub max_in_flight_requests: usize,
    /// How many bytes of output may wait for the host to read them; beyond it the reader
    /// stops dispatching (and, shortly after, reading) and handlers wait to send
    /// notifications, until the host reads. Nothing is dropped.
    pub max_unsent_output_bytes: usize,
    /// How long running handlers may finish after the host closed its input.
    pub shutdown_grace: Duration,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            max_message_bytes: 16 * 1024 * 1024,
            max_in_flight_requests: 1024,
            max_unsent_output_bytes: 64 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// How the reader dispatches a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchKind {
    /// The next message is not dispatched until this request has been answered.
    Barrier,
    /// Runs alongside other requests, up to `max_in_flight_requests`.
    Concurrent,
}

/// The methods behind a connection.
#[async_trait::async_trait]
pub trait Service: Send + Sync + 'static {
    /// Whether `method` is a barrier or may run concurrently (`initialize` is always a
    /// barrier, whatever this says).
    fn dispatch_kind(&self, method: &str) -> DispatchKind;

    /// Handles a request (the connection already did the lifecycle gating). Unknown
    /// methods → the service returns [`ErrorObject::method_not_found`].
    async fn handle_request(
        &self,
        ctx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObject>;

    /// Handles a notification from the host; the next message waits for it.
    async fn handle_notification(
        &self,
        peer: PeerHandle,
        method: String,
        params: Option<Box<RawValue>>,
    );
}

/// Runs one connection until the host closes its input. Then: pending server requests
/// fail at once with [`PeerRequestError::Disconnected`], the connection's cancellation
/// token is cancelled, messages already read are still dispatched and running handlers
/// may finish within `shutdown_grace`, the output is flushed, and this returns `Ok`.
///
/// An error is a read error, or a write error other than a broken pipe (the host closed
/// its end of our output, which ends the connection like end of input does).
pub async fn serve<R, W>(
    reader: R,
    writer: W,
    service: Arc<dyn Service>,
    config: PeerConfig,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    connection::serve(reader, writer, service, config, CancellationToken::new()).await
}

/// [`serve`], and `shutdown` ends the connection the way end of input does (the binary
/// cancels it on SIGTERM or SIGINT): pending server requests fail at once, messages
/// already read are dispatched, handlers get `shutdown_grace`, the output is flushed.
pub async fn serve_until<R, W>(
    reader: R,
    writer: W,
    service: Arc<dyn Service>,
    config: PeerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    connection::serve(reader, writer, service, config, shutdown).await
}

#[cfg(test)]
mod bench_tests;
#[cfg(test)]
mod connection_tests;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod framing_tests;
#[cfg(test)]
mod test_support;
