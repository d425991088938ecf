//! One module per method family; each handler takes typed params and returns its typed
//! result or a JSON-RPC error.

pub mod account;
pub mod handshake;
pub mod model;
pub mod rate_limits;
pub mod thread;
pub mod turn;

use authbridge_protocol::jsonrpc::codes;
use authbridge_protocol::ErrorObject;

use crate::provider_auth::CallError;

/// A provider call's failure as the JSON-RPC error its request is answered with (and, for
/// a turn, whose message fails it): missing credentials are -32000 with
/// `data.reason: "authRequired"`, anything else -32603 with the message
/// (docs/protocol.md §1.3).
pub(crate) fn call_error(e: CallError) -> ErrorObject {
    match e {
        CallError::AuthRequired { env_var: None } => ErrorObject::auth_required(),
        CallError::AuthRequired {
            env_var: Some(name),
        } => ErrorObject::new(
            codes::AUTH_REQUIRED,
            format!("authentication required: environment variable {name} is not set"),
        )
        .with_data(serde_json::json!({"reason": "authRequired"})),
        CallError::Failed { message, .. } => ErrorObject::internal(message),
    }
}

/// Where a page of `model/list` or `thread/list` starts: the cursor is the index of the
/// next item (what the previous page's `nextCursor` said); none or empty is the start.
pub(crate) fn page_start(cursor: Option<&str>) -> Result<usize, ErrorObject> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c.parse().map_err(|_| {
            ErrorObject::invalid_params(format!(
                "cursor: invalid cursor {:?} (pass the nextCursor of the previous page)",
                c.chars().take(200).collect::<String>()
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_are_answered_with_minus_32000_and_the_reason() {
        let data = Some(serde_json::json!({"reason": "authRequired"}));
        assert_eq!(
            call_error(CallError::AuthRequired { env_var: None }),
            ErrorObject {
                code: -32000,
                message: "authentication required: log in with account/login/start".into(),
                data: data.clone(),
            }
        );
        assert_eq!(
            call_error(CallError::AuthRequired {
                env_var: Some("CORP_KEY".into())
            }),
            ErrorObject {
                code: -32000,
                message: "authentication required: environment variable CORP_KEY is not set".into(),
                data,
            }
        );
    }

    #[test]
    fn any_other_call_failure_is_minus_32603_with_its_message() {
        let e = CallError::Failed {
            message: "provider returned HTTP 500: boom".into(),
            http_status: Some(500),
        };
        assert_eq!(
            call_error(e),
            ErrorObject {
                code: -32603,
                message: "provider returned HTTP 500: boom".into(),
                data: None,
            }
        );
    }
}
