//! The JSON-RPC peer over stdio (being written).
