//! `thread/start`, `thread/read`, `thread/list` (docs/protocol.md §6.2). Threads live in
//! memory for the life of the process.

use std::sync::Arc;

use authbridge_protocol::thread::*;
use authbridge_protocol::ErrorObject;

use crate::peer::RequestContext;
use crate::state::AppState;
use crate::threads::{lock, ThreadEntry, ThreadSettings};

/// Unix seconds now.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new id: a UUID, time-ordered like Codex's.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// -32602 for an id that names no thread of this process.
pub fn unknown_thread(id: &str) -> ErrorObject {
    ErrorObject::invalid_params(format!(
        "threadId: unknown thread {:?}",
        id.chars().take(200).collect::<String>()
    ))
}

pub async fn start(
    state: &Arc<AppState>,
    ctx: &mut RequestContext,
    params: ThreadStartParams,
) -> Result<ThreadStartResponse, ErrorObject> {
    let (provider_id, _) = state.provider(params.model_provider.as_deref())?;
    let model = params
        .model
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| state.config.model.clone());
    let cwd = params.cwd.unwrap_or_else(|| {
        std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| "/".into())
    });
    let instructions: Vec<String> = [params.base_instructions, params.developer_instructions]
        .into_iter()
        .flatten()
        .filter(|s| !s.trim().is_empty())
        .collect();
    let now = now_secs();
    let entry = ThreadEntry {
        id: new_id(),
        settings: ThreadSettings {
            model: model.clone(),
            provider_id: provider_id.to_string(),
            cwd: cwd.clone(),
            instructions: (!instructions.is_empty()).then(|| instructions.join("\n\n")),
            originator: state.client_name(),
        },
        created_at: now,
        updated_at: now,
        status: ThreadStatus::Idle,
        turns: Vec::new(),
        running: None,
        usage: TokenUsageBreakdown::default(),
    };
    let thread = entry.to_wire(false);
    state.threads.insert(entry);
    ctx.notify_after::<ThreadStarted>(&ThreadStartedNotification {
        thread: thread.clone(),
    });
    Ok(ThreadStartResponse {
        thread,
        model,
        model_provider: provider_id.to_string(),
        service_tier: None,
        cwd,
        instruction_sources: Vec::new(),
        approval_policy: "never".into(),
        approvals_reviewer: "user".into(),
        sandbox: SandboxPolicy::read_only(),
        reasoning_effort: None,
    })
}

pub async fn read(
    state: &Arc<AppState>,
    params: ThreadReadParams,
) -> Result<ThreadReadResponse, ErrorObject> {
    let entry = state
        .threads
        .get(&params.thread_id)
        .ok_or_else(|| unknown_thread(&params.thread_id))?;
    let thread = lock(&entry).to_wire(params.include_turns);
    Ok(ThreadReadResponse { thread })
}

pub async fn list(
    state: &Arc<AppState>,
    params: ThreadListParams,
) -> Result<ThreadListResponse, ErrorObject> {
    let start = super::page_start(params.cursor.as_deref())?;
    let providers = params.model_providers.filter(|p| !p.is_empty());
    let all: Vec<Thread> = state
        .threads
        .newest_first()
        .iter()
        .map(|e| lock(e).to_wire(false))
        .filter(|t| {
            providers
                .as_ref()
                .is_none_or(|p| p.contains(&t.model_provider))
        })
        .collect();
    let limit = match params.limit {
        Some(0) | None => 50,
        Some(n) => n as usize,
    };
    let end = start.saturating_add(limit).min(all.len());
    let next_cursor = (end < all.len()).then(|| end.to_string());
    let data = all
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    Ok(ThreadListResponse {
        data,
        next_cursor,
        backwards_cursor: None,
    })
}
