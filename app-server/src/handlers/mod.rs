//! One module per method family; each handler takes typed params and returns its typed
//! result or a JSON-RPC error.

pub mod account;
pub mod handshake;
pub mod model;
pub mod rate_limits;
pub mod thread;
pub mod turn;

/// Where a page of `model/list` or `thread/list` starts: the cursor is the index of the
/// next item (what the previous page's `nextCursor` said); none or empty is the start.
pub(crate) fn page_start(cursor: Option<&str>) -> Result<usize, authbridge_protocol::ErrorObject> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c.parse().map_err(|_| {
            authbridge_protocol::ErrorObject::invalid_params(format!(
                "cursor: invalid cursor {:?} (pass the nextCursor of the previous page)",
                c.chars().take(200).collect::<String>()
            ))
        }),
    }
}
