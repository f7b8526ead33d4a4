//! The only code that is `unsafe`: q's C API (the `qprom_*` exports, behind the
//! `q-exports` feature) and the few libc calls the safe layers need (`sys`).

pub mod spin;
pub mod sys;

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
