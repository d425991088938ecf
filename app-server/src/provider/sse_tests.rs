//! Tests of the SSE parser.
