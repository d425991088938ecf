//! stdin/stdout as async halves (being written).
