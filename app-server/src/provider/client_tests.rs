//! Tests of the provider client against a real HTTP server on 127.0.0.1.
