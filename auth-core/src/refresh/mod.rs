//! Ways to get new tokens: the host refresher and bearer source traits, the provider
//! command, and the managed ChatGPT token endpoint.

pub mod command;
pub mod external;
pub mod token_endpoint;
