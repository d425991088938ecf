//! authbridge test kit.
