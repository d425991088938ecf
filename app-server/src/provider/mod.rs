//! The model provider HTTP client (being written).
