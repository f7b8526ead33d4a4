//! q's C API: the `qprom_*` exports q binds with `2:` (behind the `q-exports` feature).
//! With `src/sys/` (OS and synchronisation calls) the only places that hold `unsafe`.

#[cfg(feature = "q-exports")]
pub(crate) mod qapi;
#[cfg(feature = "q-exports")]
mod exports;
#[cfg(feature = "q-exports")]
mod k;
#[cfg(feature = "q-exports")]
mod poll;
#[cfg(feature = "q-exports")]
mod server;
#[cfg(feature = "q-exports")]
mod instrument;
#[cfg(feature = "q-exports")]
mod helpers;
#[cfg(feature = "q-exports")]
mod outputs;
#[cfg(feature = "q-exports")]
mod push;
#[cfg(feature = "q-exports")]
mod lifecycle;
#[cfg(feature = "q-exports")]
mod probe;
