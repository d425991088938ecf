//! authbridge app-server library.
