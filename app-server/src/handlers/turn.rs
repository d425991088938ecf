//! `turn/start` and `turn/interrupt` (docs/protocol.md §6.3).
//!
//! A turn answers with itself (`inProgress`) at once, then sends, in Codex's order:
//! `thread/status/changed` (active), `turn/started`, `item/started` + `item/completed` of
//! the user message, `item/started` of the agent message, `item/agentMessage/delta`*,
//! `item/completed` of the agent message, `thread/tokenUsage/updated` (when the provider
//! reported usage), `account/rateLimits/updated` (when its headers carried limits),
//! `thread/status/changed` (idle, or systemError after a failure, which also sends
//! `error`), and exactly one `turn/completed`.
//!
//! The turn keeps its request's place among `max_in_flight_requests` until it completes.
//! When the host closes its input, a running turn may finish within [`EXIT_GRACE`]; then it
//! completes `interrupted` with the text so far. Either way its `turn/completed` is
//! written before the process exits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authbridge_protocol::rate_limits::{
    AccountRateLimitsUpdated, AccountRateLimitsUpdatedNotification, RateLimitSnapshot,
};
use authbridge_protocol::thread::*;
use authbridge_protocol::turn::*;
use authbridge_protocol::ErrorObject;
use tokio_util::sync::CancellationToken;

use crate::handlers::call_error;
use crate::handlers::thread::{new_id, now_ms, now_secs, unknown_thread};
use crate::peer::{InFlight, PeerHandle, RequestContext};
use crate::provider::{ResponsesRequest, TurnEvent, Usage};
use crate::provider_auth::CallError;
use crate::state::{AppState, ProviderRuntime};
use crate::threads::{full_view, lock, user_message, ThreadEntry};

/// How long a running turn may go on after the host closed its input, before it is
/// completed `interrupted`. Below the connection's shutdown grace (1 s), so the
/// `turn/completed` is written before the output closes.
pub const EXIT_GRACE: Duration = Duration::from_millis(600);

pub async fn start(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
    params: TurnStartParams,
) -> Result<TurnStartResponse, ErrorObject> {
    let entry = state
        .threads
        .get(&params.thread_id)
        .ok_or_else(|| unknown_thread(&params.thread_id))?;
    if params.input.is_empty() {
        return Err(ErrorObject::invalid_params(
            "input: at least one text item is required",
        ));
    }
    let (provider_id, history, instructions, model) = {
        let e = lock(&entry);
        if e.running.is_some() {
            return Err(ErrorObject::invalid_request(format!(
                "thread {} already has a turn in progress: wait for its turn/completed or interrupt it",
                e.id
            )));
        }
        let model = params
            .model
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| e.settings.model.clone());
        (
            e.settings.provider_id.clone(),
            e.conversation(),
            e.settings.instructions.clone(),
            model,
        )
    };
    let (_, provider) = state.provider(Some(&provider_id))?;
    provider.auth.precheck().map_err(call_error)?;
    let turn_id = new_id();
    let cancel = CancellationToken::new();
    {
        let mut e = lock(&entry);
        if e.running.is_some() {
            return Err(ErrorObject::invalid_request(format!(
                "thread {} already has a turn in progress: wait for its turn/completed or interrupt it",
                e.id
            )));
        }
        // A model given here applies to this turn and the next ones (Codex's rule).
        e.settings.model = model.clone();
        e.running = Some((turn_id.clone(), cancel.clone()));
    }
    let mut input = history;
    input.push(user_message(params.input.iter().map(UserInput::as_text)));
    let turn = TurnRun {
        peer: ctx.peer().clone(),
        entry,
        thread_id: params.thread_id,
        turn_id: turn_id.clone(),
        provider: provider.clone(),
        request: ResponsesRequest {
            model,
            instructions,
            input,
        },
        user_input: params.input,
        in_flight: ctx.keep_in_flight(),
    };
    // The turn's first notification must follow this response.
    let responded = ctx.after_response();
    tokio::spawn(async move {
        let _ = responded.await;
        turn.run(cancel).await;
    });
    Ok(TurnStartResponse {
        turn: Turn {
            id: turn_id.clone(),
            root_turn_id: Some(turn_id),
            items: Vec::new(),
            items_view: TurnItemsView::NotLoaded,
            status: TurnStatus::InProgress,
            error: None,
            started_at: None,
            completed_at: None,
            duration_ms: None,
        },
    })
}

pub async fn interrupt(
    state: &Arc<AppState>,
    params: TurnInterruptParams,
) -> Result<TurnInterruptResponse, ErrorObject> {
    let entry = state
        .threads
        .get(&params.thread_id)
        .ok_or_else(|| unknown_thread(&params.thread_id))?;
    // A turn that already ended (or never ran here) is not an error: there is nothing
    // left to stop.
    if let Some((running, cancel)) = &lock(&entry).running {
        if *running == params.turn_id {
            cancel.cancel();
        }
    }
    Ok(TurnInterruptResponse {})
}

/// One accepted turn, from its first notification to its `turn/completed`.
struct TurnRun {
    peer: PeerHandle,
    entry: Arc<Mutex<ThreadEntry>>,
    thread_id: String,
    turn_id: String,
    provider: ProviderRuntime,
    request: ResponsesRequest,
    user_input: Vec<UserInput>,
    /// Held until `turn/completed` is queued.
    in_flight: Option<InFlight>,
}

/// What the stream produced so far.
#[derive(Default)]
struct Progress {
    agent_id: Option<String>,
    agent_started_ms: i64,
    text: String,
    usage: Option<Usage>,
    rate_limits: Option<RateLimitSnapshot>,
}

enum Outcome {
    Completed,
    Interrupted,
    Failed(TurnError),
}

impl TurnRun {
    async fn run(self, cancel: CancellationToken) {
        let started = Instant::now();
        let started_at = now_secs();
        let peer = self.peer.clone();
        self.status(ThreadStatus::Active {
            active_flags: Vec::new(),
        })
        .await;
        peer.notify_until_exit::<TurnStarted>(&TurnNotification {
            thread_id: self.thread_id.clone(),
            turn: self.turn(TurnStatus::InProgress, Some(started_at), Vec::new(), None),
        })
        .await;
        let user_ms = now_ms();
        let user_item = ThreadItem::UserMessage {
            id: new_id(),
            client_id: None,
            content: self.user_input.clone(),
            started_at_ms: Some(user_ms),
            completed_at_ms: None,
        };
        peer.notify_until_exit::<ItemStarted>(&ItemStartedNotification {
            item: user_item.clone(),
            thread_id: self.thread_id.clone(),
            turn_id: self.turn_id.clone(),
            started_at_ms: user_ms,
        })
        .await;
        let user_item = match user_item {
            ThreadItem::UserMessage {
                id,
                client_id,
                content,
                started_at_ms,
                ..
            } => ThreadItem::UserMessage {
                id,
                client_id,
                content,
                started_at_ms,
                completed_at_ms: Some(user_ms),
            },
            other => other,
        };
        peer.notify_until_exit::<ItemCompleted>(&ItemCompletedNotification {
            item: user_item.clone(),
            thread_id: self.thread_id.clone(),
            turn_id: self.turn_id.clone(),
            content_token_count: None,
            completed_at_ms: user_ms,
        })
        .await;

        let mut progress = Progress::default();
        let connection = peer.cancellation();
        let exit = async {
            connection.cancelled().await;
            tokio::time::sleep(EXIT_GRACE).await;
        };
        let outcome = tokio::select! {
            outcome = self.stream(&mut progress) => outcome,
            _ = cancel.cancelled() => Outcome::Interrupted,
            _ = exit => Outcome::Interrupted,
        };
        self.finish(outcome, progress, user_item, started, started_at)
            .await;
    }

    async fn stream(&self, progress: &mut Progress) -> Outcome {
        let provider = &self.provider;
        let request = &self.request;
        let started = provider
            .auth
            .call(&provider.config, |url, auth| {
                let client = provider.client.clone();
                async move {
                    client
                        .start_response(&url, auth.as_ref().map(|a| a.borrow()), request)
                        .await
                }
            })
            .await;
        let mut response = match started {
            Ok(response) => response,
            Err(CallError::Failed {
                message,
                http_status,
            }) => return failed(message, http_status),
            Err(e @ CallError::AuthRequired { .. }) => return failed(call_error(e).message, None),
        };
        progress.rate_limits = response.rate_limits().cloned();
        loop {
            match response.next_event().await {
                Ok(Some(TurnEvent::MessageStarted(id))) => {
                    if progress.agent_id.is_none() {
                        self.start_agent(progress, id).await;
                    }
                }
                Ok(Some(TurnEvent::Delta(delta))) => {
                    if progress.agent_id.is_none() {
                        self.start_agent(progress, None).await;
                    }
                    progress.text.push_str(&delta);
                    self.peer
                        .notify_until_exit::<AgentMessageDelta>(&AgentMessageDeltaNotification {
                            thread_id: self.thread_id.clone(),
                            turn_id: self.turn_id.clone(),
                            item_id: progress.agent_id.clone().unwrap_or_default(),
                            delta,
                        })
                        .await;
                }
                Ok(Some(TurnEvent::Completed(usage))) => {
                    progress.usage = usage;
                    return Outcome::Completed;
                }
                Ok(None) => return Outcome::Completed,
                Err(e) => return failed(e.to_string(), e.http_status()),
            }
        }
    }

    async fn start_agent(&self, progress: &mut Progress, id: Option<String>) {
        let id = id.filter(|i| !i.is_empty()).unwrap_or_else(new_id);
        progress.agent_started_ms = now_ms();
        progress.agent_id = Some(id.clone());
        self.peer
            .notify_until_exit::<ItemStarted>(&ItemStartedNotification {
                item: agent_item(id, String::new(), progress.agent_started_ms, None),
                thread_id: self.thread_id.clone(),
                turn_id: self.turn_id.clone(),
                started_at_ms: progress.agent_started_ms,
            })
            .await;
    }

    async fn finish(
        mut self,
        outcome: Outcome,
        progress: Progress,
        user_item: ThreadItem,
        started: Instant,
        started_at: i64,
    ) {
        let peer = self.peer.clone();
        let done_ms = now_ms();
        let agent = progress.agent_id.clone().map(|id| {
            agent_item(
                id,
                progress.text.clone(),
                progress.agent_started_ms,
                Some(done_ms),
            )
        });
        if let Some(item) = &agent {
            peer.notify_until_exit::<ItemCompleted>(&ItemCompletedNotification {
                item: item.clone(),
                thread_id: self.thread_id.clone(),
                turn_id: self.turn_id.clone(),
                content_token_count: None,
                completed_at_ms: done_ms,
            })
            .await;
        }
        let (status, error) = match outcome {
            Outcome::Completed => (TurnStatus::Completed, None),
            Outcome::Interrupted => (TurnStatus::Interrupted, None),
            Outcome::Failed(error) => (TurnStatus::Failed, Some(error)),
        };
        let usage = progress.usage.map(breakdown);
        let total = {
            let mut e = lock(&self.entry);
            if let Some(last) = &usage {
                e.usage.add(last);
            }
            e.usage.clone()
        };
        if let Some(last) = usage {
            peer.notify_until_exit::<ThreadTokenUsageUpdated>(
                &ThreadTokenUsageUpdatedNotification {
                    thread_id: self.thread_id.clone(),
                    turn_id: self.turn_id.clone(),
                    token_usage: ThreadTokenUsage {
                        total,
                        last,
                        model_context_window: None,
                    },
                },
            )
            .await;
        }
        if let Some(rate_limits) = progress.rate_limits {
            peer.notify_until_exit::<AccountRateLimitsUpdated>(
                &AccountRateLimitsUpdatedNotification { rate_limits },
            )
            .await;
        }
        let thread_status = if error.is_some() {
            ThreadStatus::SystemError
        } else {
            ThreadStatus::Idle
        };
        let completed_at = now_secs();
        let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let summary: Vec<ThreadItem> = agent.iter().cloned().collect();
        let mut full = vec![user_item];
        full.extend(agent);
        let mut turn = self.turn(status, Some(started_at), summary, error.clone());
        turn.completed_at = Some(completed_at);
        turn.duration_ms = Some(duration);
        // The thread knows the turn before the host hears it ended, so a `thread/read`
        // or the next `turn/start` right after `turn/completed` sees it.
        {
            let mut e = lock(&self.entry);
            let mut recorded = turn.clone();
            recorded.items = full;
            e.turns.push(full_view(recorded));
            e.running = None;
            e.status = thread_status.clone();
            e.updated_at = completed_at;
        }
        peer.notify_until_exit::<ThreadStatusChanged>(&ThreadStatusChangedNotification {
            thread_id: self.thread_id.clone(),
            status: thread_status,
        })
        .await;
        if let Some(error) = error {
            peer.notify_until_exit::<ErrorNotice>(&ErrorNotification {
                error,
                will_retry: false,
                thread_id: self.thread_id.clone(),
                turn_id: self.turn_id.clone(),
            })
            .await;
        }
        peer.notify_until_exit::<TurnCompleted>(&TurnNotification {
            thread_id: self.thread_id.clone(),
            turn,
        })
        .await;
        // The turn's place among the in-flight requests goes back only now.
        drop(self.in_flight.take());
    }

    async fn status(&self, status: ThreadStatus) {
        lock(&self.entry).status = status.clone();
        self.peer
            .notify_until_exit::<ThreadStatusChanged>(&ThreadStatusChangedNotification {
                thread_id: self.thread_id.clone(),
                status,
            })
            .await;
    }

    /// This turn in Codex's shape.
    fn turn(
        &self,
        status: TurnStatus,
        started_at: Option<i64>,
        items: Vec<ThreadItem>,
        error: Option<TurnError>,
    ) -> Turn {
        Turn {
            id: self.turn_id.clone(),
            root_turn_id: Some(self.turn_id.clone()),
            items_view: if items.is_empty() {
                TurnItemsView::NotLoaded
            } else {
                TurnItemsView::Summary
            },
            items,
            status,
            error,
            started_at,
            completed_at: None,
            duration_ms: None,
        }
    }
}

fn agent_item(id: String, text: String, started_ms: i64, completed_ms: Option<i64>) -> ThreadItem {
    ThreadItem::AgentMessage {
        id,
        text,
        moderation: None,
        phase: None,
        memory_citation: None,
        delivery: None,
        questions: None,
        started_at_ms: Some(started_ms),
        completed_at_ms: completed_ms,
    }
}

fn breakdown(u: Usage) -> TokenUsageBreakdown {
    TokenUsageBreakdown {
        total_tokens: u.total_tokens,
        input_tokens: u.input_tokens,
        cached_input_tokens: u.cached_input_tokens,
        cache_write_input_tokens: 0,
        output_tokens: u.output_tokens,
        reasoning_output_tokens: u.reasoning_output_tokens,
    }
}

/// A failed outcome. The message may quote the provider (an SSE `error` event, an HTTP
/// body): anything in it shaped like a token is redacted before it reaches the host.
fn failed(message: String, http_status: Option<u16>) -> Outcome {
    Outcome::Failed(TurnError::new(
        crate::host_refresh::redact_tokens(&message, 1000),
        http_status,
    ))
}
