//! Ways to get new tokens: the host/bearer refresher trait, the provider command,
//! and the managed ChatGPT token endpoint.

pub mod command;
pub mod external;
pub mod token_endpoint;
