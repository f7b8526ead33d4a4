//! qprom: a native kdb+ extension that makes a q process a Prometheus target.
pub mod auth;
pub mod defaults;
pub mod error;
pub mod ffi;
pub mod sys;
pub mod metric;
pub mod middleware;
pub mod registry;
pub mod expo;
pub mod http;
pub mod process;
pub mod textfile;
pub mod initconfig;
pub mod subscribers;
pub mod lag;
