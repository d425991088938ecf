//! The router: method names to handlers, with each method's params decoded and its result
//! encoded in one place. Knows nothing of bytes or framing.

use std::future::Future;
use std::sync::Arc;

use authbridge_protocol::account::{
    CancelLoginAccount, GetAccount, GetAuthStatus, LoginAccount, LogoutAccount,
};
use authbridge_protocol::handshake::Initialize;
use authbridge_protocol::jsonrpc::{decode_params, to_raw};
use authbridge_protocol::model::ModelList;
use authbridge_protocol::rate_limits::GetAccountRateLimits;
use authbridge_protocol::thread::{ThreadList, ThreadRead, ThreadStart};
use authbridge_protocol::turn::{TurnInterrupt, TurnStart};
use authbridge_protocol::{ErrorObject, RequestMethod};
use serde_json::value::RawValue;

use crate::handlers::{account, handshake, model, rate_limits, thread, turn};
use crate::peer::{DispatchKind, PeerHandle, RequestContext, Service};
use crate::state::AppState;

/// The app-server's [`Service`]: one per connection.
pub struct AppService {
    state: Arc<AppState>,
}

impl AppService {
    pub fn new(state: Arc<AppState>) -> Arc<Self> {
        Arc::new(AppService { state })
    }
}

/// Decodes `M`'s params (-32602 naming the field), runs the handler, encodes its result.
async fn typed<M, F, Fut>(
    params: Option<Box<RawValue>>,
    handler: F,
) -> Result<Box<RawValue>, ErrorObject>
where
    M: RequestMethod,
    F: FnOnce(M::Params) -> Fut,
    Fut: Future<Output = Result<M::Result, ErrorObject>>,
{
    let params =
        decode_params::<M::Params>(params.as_deref()).map_err(ErrorObject::invalid_params)?;
    handler(params).await.map(|result| to_raw(&result))
}

#[async_trait::async_trait]
impl Service for AppService {
    fn dispatch_kind(&self, method: &str) -> DispatchKind {
        match method {
            Initialize::NAME | LoginAccount::NAME | LogoutAccount::NAME => DispatchKind::Barrier,
            // Answered at once and holding no place among the in-flight requests, so a host
            // whose running turns fill `max_in_flight_requests` can still stop one.
            TurnInterrupt::NAME => DispatchKind::Barrier,
            _ => DispatchKind::Concurrent,
        }
    }

    async fn handle_request(
        &self,
        mut ctx: RequestContext,
        method: String,
        params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObject> {
        let state = &self.state;
        match method.as_str() {
            Initialize::NAME => {
                typed::<Initialize, _, _>(params, |p| handshake::initialize(state, &ctx, p)).await
            }
            LoginAccount::NAME => {
                typed::<LoginAccount, _, _>(params, |p| account::login(state, &mut ctx, p)).await
            }
            CancelLoginAccount::NAME => {
                typed::<CancelLoginAccount, _, _>(params, |p| {
                    crate::login::cancel(state, &mut ctx, p)
                })
                .await
            }
            GetAccount::NAME => {
                typed::<GetAccount, _, _>(params, |p| account::read(state, p)).await
            }
            LogoutAccount::NAME => {
                typed::<LogoutAccount, _, _>(params, |_| account::logout(state, &mut ctx)).await
            }
            GetAuthStatus::NAME => {
                typed::<GetAuthStatus, _, _>(params, |p| account::status(state, p)).await
            }
            ModelList::NAME => typed::<ModelList, _, _>(params, |p| model::list(state, p)).await,
            GetAccountRateLimits::NAME => {
                typed::<GetAccountRateLimits, _, _>(params, |_| rate_limits::read(state)).await
            }
            ThreadStart::NAME => {
                typed::<ThreadStart, _, _>(params, |p| thread::start(state, &mut ctx, p)).await
            }
            ThreadRead::NAME => typed::<ThreadRead, _, _>(params, |p| thread::read(state, p)).await,
            ThreadList::NAME => typed::<ThreadList, _, _>(params, |p| thread::list(state, p)).await,
            TurnStart::NAME => {
                typed::<TurnStart, _, _>(params, |p| turn::start(state, &mut ctx, p)).await
            }
            TurnInterrupt::NAME => {
                typed::<TurnInterrupt, _, _>(params, |p| turn::interrupt(state, p)).await
            }
            other => Err(ErrorObject::method_not_found(other)),
        }
    }

    async fn handle_notification(
        &self,
        _peer: PeerHandle,
        method: String,
        _params: Option<Box<RawValue>>,
    ) {
        match method.as_str() {
            "initialized" => tracing::debug!("host sent initialized"),
            other => tracing::debug!(method = other, "ignoring unknown notification"),
        }
    }
}
