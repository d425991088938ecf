//! `turn/start` and `turn/interrupt` (contract §6.2). A turn answers with its id at once,
//! then streams `turn/delta` and ends with exactly one `turn/completed`. The turn's task
//! ends with the turn, on interrupt, or when the connection ends.

use std::sync::Arc;

use authbridge_protocol::turn::*;
use authbridge_protocol::ErrorObject;
use tokio_util::sync::CancellationToken;

use crate::peer::{PeerHandle, RequestContext};
use crate::provider::TurnEvent;
use crate::provider_auth::CallError;
use crate::state::AppState;

pub async fn start(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
    params: TurnStartParams,
) -> Result<TurnStartResponse, ErrorObject> {
    state
        .provider_auth
        .precheck()
        .map_err(|e| e.into_error_object())?;
    let turn_id = uuid::Uuid::new_v4().to_string();
    let model = params.model.unwrap_or_else(|| state.config.model.clone());
    let input = params.input.text();
    let cancel = CancellationToken::new();
    state.turns.insert(turn_id.clone(), cancel.clone());
    // The turn's first notification must follow this response.
    let responded = ctx.after_response();
    let peer = ctx.peer().clone();
    let task_state = state.clone();
    let id = turn_id.clone();
    tokio::spawn(async move {
        let _ = responded.await;
        run(task_state, peer, id, model, input, cancel).await;
    });
    Ok(TurnStartResponse { turn_id })
}

pub async fn interrupt(
    state: &Arc<AppState>,
    params: TurnInterruptParams,
) -> Result<TurnInterruptResponse, ErrorObject> {
    state.turns.interrupt(&params.turn_id);
    Ok(TurnInterruptResponse {})
}

async fn run(
    state: Arc<AppState>,
    peer: PeerHandle,
    turn_id: String,
    model: String,
    input: String,
    cancel: CancellationToken,
) {
    let connection = peer.cancellation();
    let mut text = String::new();
    let outcome = tokio::select! {
        outcome = stream(&state, &peer, &turn_id, &model, &input, &mut text) => outcome,
        _ = cancel.cancelled() => TurnOutcome::Interrupted { text: String::new() },
        _ = connection.cancelled() => {
            state.turns.remove(&turn_id);
            return;
        }
    };
    let outcome = match outcome {
        TurnOutcome::Interrupted { .. } => TurnOutcome::Interrupted { text },
        other => other,
    };
    state.turns.remove(&turn_id);
    peer.notify::<TurnCompleted>(&TurnCompletedNotification { turn_id, outcome })
        .await;
}

async fn stream(
    state: &AppState,
    peer: &PeerHandle,
    turn_id: &str,
    model: &str,
    input: &str,
    text: &mut String,
) -> TurnOutcome {
    let provider = state.config.active_provider();
    let started = state
        .provider_auth
        .call(provider, |url, auth| {
            let client = state.client.clone();
            async move {
                client
                    .start_response(&url, auth.as_ref().map(|a| a.borrow()), model, input)
                    .await
            }
        })
        .await;
    let mut response = match started {
        Ok(response) => response,
        Err(CallError::Required(e)) => return failed(e.message, None),
        Err(CallError::Failed {
            message,
            http_status,
        }) => return failed(message, http_status),
    };
    loop {
        match response.next_event().await {
            Ok(Some(TurnEvent::Delta(delta))) => {
                text.push_str(&delta);
                peer.notify::<TurnDelta>(&TurnDeltaNotification {
                    turn_id: turn_id.to_string(),
                    delta,
                })
                .await;
            }
            Ok(Some(TurnEvent::Completed)) | Ok(None) => {
                return TurnOutcome::Completed { text: text.clone() }
            }
            Err(e) => return failed(e.to_string(), e.http_status()),
        }
    }
}

/// A failed outcome. The message may quote the provider (an SSE `error` event, an HTTP
/// body): anything in it shaped like a token is redacted before it reaches the host.
fn failed(message: String, http_status: Option<u16>) -> TurnOutcome {
    TurnOutcome::Failed {
        error: TurnError {
            message: crate::host_refresh::redact_tokens(&message, 1000),
            http_status,
        },
    }
}
