//! Ties each method's name to its params and result, declared once, so the server's
//! router and any host-side code use the same pairing.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A request method: it has params and a result.
pub trait RequestMethod {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Result: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// A notification method: it has params and no answer.
pub trait NotificationMethod {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// Declares request methods: `request!(Marker, "name", Params, Result);`.
macro_rules! request {
    ($(#[$doc:meta])* $marker:ident, $name:literal, $params:ty, $result:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $marker {}
        impl $crate::method::RequestMethod for $marker {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
}

/// Declares notification methods: `notification!(Marker, "name", Params);`.
macro_rules! notification {
    ($(#[$doc:meta])* $marker:ident, $name:literal, $params:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $marker {}
        impl $crate::method::NotificationMethod for $marker {
            const NAME: &'static str = $name;
            type Params = $params;
        }
    };
}

pub(crate) use notification;
pub(crate) use request;
