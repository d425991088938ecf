//! authbridge auth core.
