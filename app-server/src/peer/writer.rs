//! The one task that owns the output: it drains the bounded queue into one buffer,
//! serialising each message straight into its frame there, writes the buffer whole and
//! flushes. While the host does not read, the write waits, the queue
//! fills, and whoever queues waits too (backpressure; nothing is dropped).

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::framing::encode_with;
use super::outgoing::Outgoing;
use super::shared::Shared;

/// Stop adding to a batch past this many bytes.
const BATCH_BYTES: usize = 64 * 1024;
/// A buffer grown past this by a large message is given back after the write.
const KEEP_BYTES: usize = 1024 * 1024;

/// Writes until `stop` is cancelled (then writes what is queued and returns) or a write
/// fails (then cancels the connection and returns the error).
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    mut out: W,
    mut queue: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    let mut scratch = Vec::new();
    // The exact bytes of the items in `buf`, which count against the output budget
    // until written.
    let mut counted = 0;
    loop {
        let stopping = tokio::select! {
            biased;
            _ = stop.cancelled() => true,
            item = queue.recv() => match item {
                Some(item) => {
                    counted += append(&mut buf, &mut scratch, &shared, item);
                    false
                }
                None => true,
            },
        };
        if stopping {
            queue.close();
        }
        while stopping || buf.len() < BATCH_BYTES {
            match queue.try_recv() {
                Ok(item) => counted += append(&mut buf, &mut scratch, &shared, item),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            if let Err(e) = write(&mut out, &buf).await {
                tracing::debug!(error = %e, "writing to the host failed");
                shared.cancel.cancel();
                return Err(e);
            }
            buf.clear();
            shared.sub_unsent(std::mem::take(&mut counted));
            if buf.capacity() > KEEP_BYTES {
                buf.shrink_to(BATCH_BYTES);
                scratch = Vec::new();
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

/// Serialises and frames `item` at the end of `buf`; its exact size, which now counts
/// against the output budget in place of its estimate.
fn append(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, shared: &Shared, item: Outgoing) -> usize {
    let framing = shared.framing();
    let before = buf.len();
    for message in item.body.messages() {
        encode_with(buf, scratch, framing, |body| {
            message.write_to(body, item.jsonrpc)
        });
    }
    let exact = buf.len() - before;
    shared.recount(item.cost, exact);
    exact
}

async fn write<W: AsyncWrite + Unpin>(out: &mut W, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes).await?;
    out.flush().await
}
