//! The threads of this process (docs/protocol.md §6.2), in memory only: each thread's
//! settings, its finished turns (the conversation sent to the provider) and the turn
//! running on it, if any.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authbridge_protocol::thread::{
    Thread, ThreadItem, ThreadStatus, TokenUsageBreakdown, Turn, TurnItemsView,
};
use tokio_util::sync::CancellationToken;

/// What a thread was started with.
#[derive(Clone, Debug)]
pub struct ThreadSettings {
    pub model: String,
    pub provider_id: String,
    pub cwd: String,
    /// `baseInstructions` and `developerInstructions`, joined; sent as `instructions`.
    pub instructions: Option<String>,
    pub originator: Option<String>,
}

/// One thread.
#[derive(Debug)]
pub struct ThreadEntry {
    pub id: String,
    pub settings: ThreadSettings,
    pub created_at: i64,
    pub updated_at: i64,
    pub status: ThreadStatus,
    /// Finished turns, oldest first, with every item (`itemsView: full`).
    pub turns: Vec<Turn>,
    /// The running turn's id and its interrupt token.
    pub running: Option<(String, CancellationToken)>,
    /// Token usage over the thread so far.
    pub usage: TokenUsageBreakdown,
}

impl ThreadEntry {
    /// The thread in Codex's shape; turns only when asked for.
    pub fn to_wire(&self, include_turns: bool) -> Thread {
        let preview = self
            .turns
            .iter()
            .flat_map(|t| t.items.iter())
            .find_map(|item| match item {
                ThreadItem::UserMessage { content, .. } => content
                    .first()
                    .map(|c| c.as_text().chars().take(200).collect::<String>()),
                _ => None,
            })
            .unwrap_or_default();
        Thread {
            id: self.id.clone(),
            session_id: self.id.clone(),
            forked_from_id: None,
            parent_thread_id: None,
            preview,
            ephemeral: true,
            project_id: None,
            model_provider: self.settings.provider_id.clone(),
            model: Some(self.settings.model.clone()),
            reasoning_effort: None,
            created_at: self.created_at,
            updated_at: self.updated_at,
            recency_at: Some(self.updated_at),
            status: self.status.clone(),
            path: None,
            cwd: self.settings.cwd.clone(),
            cli_version: env!("CARGO_PKG_VERSION").to_string(),
            originator: self.settings.originator.clone(),
            source: "appServer".into(),
            agent_nickname: None,
            agent_role: None,
            git_info: None,
            name: None,
            turns: if include_turns {
                self.turns.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// The conversation so far as Responses API input items: every earlier user and
    /// assistant message, in order.
    pub fn conversation(&self) -> Vec<serde_json::Value> {
        let mut input = Vec::new();
        for turn in &self.turns {
            for item in &turn.items {
                match item {
                    ThreadItem::UserMessage { content, .. } => {
                        input.push(user_message(content.iter().map(|c| c.as_text())));
                    }
                    ThreadItem::AgentMessage { text, .. } if !text.is_empty() => {
                        input.push(serde_json::json!({
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": text}],
                        }));
                    }
                    ThreadItem::AgentMessage { .. } => {}
                }
            }
        }
        input
    }
}

/// A user message as a Responses API input item.
pub fn user_message<'a>(texts: impl Iterator<Item = &'a str>) -> serde_json::Value {
    let content: Vec<serde_json::Value> = texts
        .map(|t| serde_json::json!({"type": "input_text", "text": t}))
        .collect();
    serde_json::json!({"type": "message", "role": "user", "content": content})
}

/// Every thread of the process, by id, in creation order.
#[derive(Default)]
pub struct ThreadStore {
    inner: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    by_id: HashMap<String, Arc<Mutex<ThreadEntry>>>,
    order: Vec<String>,
}

impl ThreadStore {
    pub fn insert(&self, entry: ThreadEntry) -> Arc<Mutex<ThreadEntry>> {
        let id = entry.id.clone();
        let entry = Arc::new(Mutex::new(entry));
        let mut store = lock(&self.inner);
        store.by_id.insert(id.clone(), entry.clone());
        store.order.push(id);
        entry
    }

    pub fn get(&self, id: &str) -> Option<Arc<Mutex<ThreadEntry>>> {
        lock(&self.inner).by_id.get(id).cloned()
    }

    /// Every thread, newest first.
    pub fn newest_first(&self) -> Vec<Arc<Mutex<ThreadEntry>>> {
        let store = lock(&self.inner);
        store
            .order
            .iter()
            .rev()
            .filter_map(|id| store.by_id.get(id).cloned())
            .collect()
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A finished turn as `thread/read` reports it.
pub fn full_view(mut turn: Turn) -> Turn {
    turn.items_view = TurnItemsView::Full;
    turn
}
