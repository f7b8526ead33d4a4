//! The project's own declarations of q's C API (KX's `k.h`, KXVER 3): the `K` object
//! layout, type codes and the C functions the exports call.
//!
//! Why not the kdbplus crate: it does not compile for aarch64 (l64arm, where C's `char`
//! is unsigned), and the project used only its `K` layout and about fifteen of its
//! declarations. Names follow kdbplus (`k0`, `qtype`, `value.list.n`, `G0`, `native::ktn`,
//! ...) so that code written against `super::qapi` needs only its `use` lines changed
//! (`super::qapi` -> `crate::ffi::qapi`).
//!
//! The layout and type codes are checked against `k.h` on x86_64 and aarch64 by
//! tests/abi/run.sh (a C program compiled for each architecture links this file compiled
//! by rustc for the same target and compares). This file is `no_std`-clean for that reason:
//! it names only `core`.
//!
//! Declaring a C function here references nothing: a symbol is needed only where it is
//! called (q provides them when it loads the library).
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code)]

use core::ffi::{c_char, c_double, c_float, c_int, c_longlong, c_schar, c_short, c_uchar, c_void};

/// `char*` (q symbols and C strings).
pub type S = *mut c_char;
/// `const char*`.
pub type const_S = *const c_char;
/// `char`: signed on x86_64, unsigned on aarch64.
pub type C = c_char;
/// `unsigned char` (q bytes and booleans).
pub type G = c_uchar;
pub type H = c_short;
pub type I = c_int;
pub type J = c_longlong;
pub type E = c_float;
pub type F = c_double;
pub type V = c_void;

/// A GUID's 16 bytes.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct U {
    pub guid: [G; 16],
}

/// The length and first element of a list (`struct{J n;G G0[1];}` in k.h).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct k0_list {
    pub n: J,
    pub G0: [G; 1],
}

/// The payload union of `struct k0`.
#[derive(Clone, Copy)]
#[repr(C)]
pub union k0_inner {
    pub byte: G,
    pub short: H,
    pub int: I,
    pub long: J,
    pub real: E,
    pub float: F,
    pub symbol: S,
    pub table: *mut k0,
    pub list: k0_list,
}

/// `struct k0` of k.h: `signed char m,a,t; char u; int r; union{...};`
#[repr(C)]
pub struct k0 {
    pub(crate) m: c_schar,
    pub(crate) a: c_schar,
    /// Type code (`t`).
    pub qtype: c_schar,
    /// Attribute (`u`).
    pub attribute: C,
    /// Reference count (`r`).
    pub refcount: I,
    pub value: k0_inner,
}

/// A q object.
pub type K = *mut k0;

// Type codes (k.h). 0 is the general list, 100+ functions, 101 the generic null (::).
pub const KB: I = 1;
pub const UU: I = 2;
pub const KG: I = 4;
pub const KH: I = 5;
pub const KI: I = 6;
pub const KJ: I = 7;
pub const KE: I = 8;
pub const KF: I = 9;
pub const KC: I = 10;
pub const KS: I = 11;
pub const KP: I = 12;
pub const KM: I = 13;
pub const KD: I = 14;
pub const KZ: I = 15;
pub const KN: I = 16;
pub const KU: I = 17;
pub const KV: I = 18;
pub const KT: I = 19;
pub const XT: I = 98;
pub const XD: I = 99;

// Nulls and infinities (k.h's nh, wh, ni, wi, nj, wj).
pub const nh: H = H::MIN;
pub const wh: H = H::MAX;
pub const ni: I = I::MIN;
pub const wi: I = I::MAX;
pub const nj: J = J::MIN;
pub const wj: J = J::MAX;

/// The C functions of k.h, as q provides them to a loaded library (and libe.so to a C
/// program). Signatures as in k.h; `sd0`/`r0` return nothing.
pub mod native {
    use super::{const_S, F, I, J, K, S, U, V};

    extern "C" {
        // constructors
        pub fn ka(qtype: I) -> K;
        pub fn kb(boolean: I) -> K;
        pub fn ku(guid: U) -> K;
        pub fn kg(byte: I) -> K;
        pub fn kh(short: I) -> K;
        pub fn ki(int: I) -> K;
        pub fn kj(long: J) -> K;
        pub fn ke(real: F) -> K;
        pub fn kf(float: F) -> K;
        pub fn kc(character: I) -> K;
        pub fn ks(symbol: S) -> K;
        pub fn kd(date: I) -> K;
        pub fn kz(datetime: F) -> K;
        pub fn kt(time: I) -> K;
        pub fn ktj(qtype: I, nanos: J) -> K;
        pub fn kp(chararray: S) -> K;
        pub fn kpn(chararray: S, length: J) -> K;
        pub fn ktn(qtype: I, length: J) -> K;
        pub fn knk(n: I, ...) -> K;
        pub fn knt(n: J, columns: K) -> K;
        pub fn xT(dictionary: K) -> K;
        pub fn xD(keys: K, values: K) -> K;
        pub fn ktd(keyed_table: K) -> K;
        // lists
        pub fn ja(list: *mut K, value: *mut V) -> K;
        pub fn js(list: *mut K, symbol: S) -> K;
        pub fn jk(list: *mut K, value: K) -> K;
        pub fn jv(list: *mut K, other: K) -> K;
        // errors
        pub fn krr(message: const_S) -> K;
        pub fn orr(message: const_S) -> K;
        pub fn ee(result: K) -> K;
        // symbols
        pub fn ss(string: S) -> S;
        pub fn sn(string: S, n: I) -> S;
        // reference counts
        pub fn r0(qobject: K);
        pub fn r1(qobject: K) -> K;
        // q's main loop and evaluation (q only, not libe.so)
        pub fn sd1(socket: I, function: extern "C" fn(I) -> K) -> K;
        pub fn sd0(socket: I);
        pub fn sd0x(socket: I, close: I);
        pub fn dot(func: K, args: K) -> K;
        pub fn k(handle: I, query: const_S, ...) -> K;
        // serialization and misc
        pub fn b9(mode: I, qobject: K) -> K;
        pub fn d9(bytes: K) -> K;
        pub fn okx(bytes: K) -> I;
        pub fn setm(mode: I) -> I;
        pub fn ymd(year: I, month: I, day: I) -> I;
        pub fn dj(date: I) -> I;
        pub fn m9();
    }
}
