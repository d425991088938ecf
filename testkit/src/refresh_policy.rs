//! How the host simulator answers `account/chatgptAuthTokens/refresh` (docs/protocol.md §3.5).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// One refresh request the host received.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshRequest {
    /// The request id the server chose.
    pub id: Value,
    /// Its params (`reason`, `previousAccountId`).
    pub params: Value,
    /// When it arrived, since the host was spawned.
    pub at: Duration,
}

/// One answer to a refresh request.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshReply {
    /// A result `{accessToken, chatgptAccountId, chatgptPlanType}`.
    Tokens {
        access_token: String,
        account_id: String,
        plan: Option<String>,
    },
    /// Any result value at all (garbage, a not-a-JWT token, …).
    Result(Value),
    /// A JSON-RPC error.
    Error { code: i64, message: String },
    /// No answer, ever.
    Silence,
}

impl RefreshReply {
    /// A well-formed token answer.
    pub fn tokens(access_token: &str, account_id: &str, plan: Option<&str>) -> Self {
        Self::Tokens {
            access_token: access_token.to_owned(),
            account_id: account_id.to_owned(),
            plan: plan.map(str::to_owned),
        }
    }

    /// The JSON-RPC response members for this reply (`None` for silence).
    pub fn to_response(&self, id: &Value) -> Option<Value> {
        match self {
            Self::Tokens {
                access_token,
                account_id,
                plan,
            } => Some(json!({"id": id, "result": {
                "accessToken": access_token, "chatgptAccountId": account_id, "chatgptPlanType": plan
            }})),
            Self::Result(value) => Some(json!({"id": id, "result": value})),
            Self::Error { code, message } => {
                Some(json!({"id": id, "error": {"code": code, "message": message}}))
            }
            Self::Silence => None,
        }
    }
}

type Responder = dyn Fn(&RefreshRequest) -> RefreshReply + Send + Sync;

/// The host's behaviour for refresh requests: a reply per request, after an optional delay.
#[derive(Clone)]
pub struct RefreshPolicy {
    respond: Arc<Responder>,
    delay: Duration,
}

impl std::fmt::Debug for RefreshPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshPolicy")
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

impl Default for RefreshPolicy {
    /// Answers with a JSON-RPC error saying the simulator was given no policy.
    fn default() -> Self {
        Self::error(-32603, "host simulator has no refresh policy")
    }
}

impl RefreshPolicy {
    /// Computes each reply with a closure.
    pub fn with(f: impl Fn(&RefreshRequest) -> RefreshReply + Send + Sync + 'static) -> Self {
        Self {
            respond: Arc::new(f),
            delay: Duration::ZERO,
        }
    }

    /// The same reply to every request.
    pub fn always(reply: RefreshReply) -> Self {
        Self::with(move |_| reply.clone())
    }

    /// Always the same tokens.
    pub fn tokens(access_token: &str, account_id: &str, plan: Option<&str>) -> Self {
        Self::always(RefreshReply::tokens(access_token, account_id, plan))
    }

    /// The replies in order; after the last, a JSON-RPC error.
    pub fn queue(replies: impl IntoIterator<Item = RefreshReply>) -> Self {
        let queue = Mutex::new(replies.into_iter().collect::<VecDeque<_>>());
        Self::with(move |_| {
            queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
                .unwrap_or(RefreshReply::Error {
                    code: -32603,
                    message: "host simulator ran out of scripted refresh replies".into(),
                })
        })
    }

    /// A JSON-RPC error to every request.
    pub fn error(code: i64, message: &str) -> Self {
        Self::always(RefreshReply::Error {
            code,
            message: message.to_owned(),
        })
    }

    /// A result whose access token is not a JWT.
    pub fn not_a_jwt(account_id: &str) -> Self {
        Self::always(RefreshReply::Result(json!({
            "accessToken": "not-a-jwt", "chatgptAccountId": account_id, "chatgptPlanType": null
        })))
    }

    /// A result that is not a token object at all.
    pub fn garbage() -> Self {
        Self::always(RefreshReply::Result(json!("garbage")))
    }

    /// Never answers.
    pub fn silence() -> Self {
        Self::always(RefreshReply::Silence)
    }

    /// Waits this long before each answer.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The pause before answering.
    pub fn pause(&self) -> Duration {
        self.delay
    }

    /// The reply to one request.
    pub fn reply(&self, request: &RefreshRequest) -> RefreshReply {
        (self.respond)(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RefreshRequest {
        RefreshRequest {
            id: json!(0),
            params: json!({"reason": "unauthorized", "previousAccountId": "org-1"}),
            at: Duration::ZERO,
        }
    }

    #[test]
    fn a_queue_answers_in_order_then_with_an_error() {
        let policy = RefreshPolicy::queue([
            RefreshReply::tokens("a", "org-1", None),
            RefreshReply::Silence,
        ]);
        assert_eq!(
            policy.reply(&request()),
            RefreshReply::tokens("a", "org-1", None)
        );
        assert_eq!(policy.reply(&request()), RefreshReply::Silence);
        assert!(matches!(
            policy.reply(&request()),
            RefreshReply::Error { code: -32603, .. }
        ));
    }

    #[test]
    fn replies_become_the_documented_response_shapes() {
        let id = json!(7);
        assert_eq!(
            RefreshReply::tokens("t", "org-1", Some("pro")).to_response(&id),
            Some(
                json!({"id": 7, "result": {"accessToken": "t", "chatgptAccountId": "org-1", "chatgptPlanType": "pro"}})
            )
        );
        assert_eq!(
            RefreshReply::Error {
                code: -1,
                message: "no".into()
            }
            .to_response(&id),
            Some(json!({"id": 7, "error": {"code": -1, "message": "no"}}))
        );
        assert_eq!(RefreshReply::Silence.to_response(&id), None);
    }
}
