//! src/ffi/qapi.rs's view of q's C API, as numbers a C program can read: compiled by
//! tests/abi/run.sh with rustc for each target (`--emit=obj`, no std) and linked into
//! k_layout.c, which compares every entry with what k.h gives the C compiler for the
//! same target.
#![no_std]
#![allow(dead_code)]

#[path = "../../src/ffi/qapi.rs"]
mod qapi;

use core::mem::{align_of, offset_of, size_of};
use qapi::*;

/// The same entries, in the same order, as `names` in k_layout.c.
#[no_mangle]
pub static QAPI_LAYOUT: [i64; 45] = [
    size_of::<k0>() as i64,
    align_of::<k0>() as i64,
    size_of::<K>() as i64,
    offset_of!(k0, m) as i64,
    offset_of!(k0, a) as i64,
    offset_of!(k0, qtype) as i64,
    offset_of!(k0, attribute) as i64,
    offset_of!(k0, refcount) as i64,
    offset_of!(k0, value) as i64,
    (offset_of!(k0, value) + offset_of!(k0_inner, list) + offset_of!(k0_list, n)) as i64,
    (offset_of!(k0, value) + offset_of!(k0_inner, list) + offset_of!(k0_list, G0)) as i64,
    size_of::<U>() as i64,
    size_of::<H>() as i64,
    size_of::<I>() as i64,
    size_of::<J>() as i64,
    size_of::<E>() as i64,
    size_of::<F>() as i64,
    size_of::<S>() as i64,
    (C::MIN != 0) as i64, // char is signed
    KB as i64,
    UU as i64,
    KG as i64,
    KH as i64,
    KI as i64,
    KJ as i64,
    KE as i64,
    KF as i64,
    KC as i64,
    KS as i64,
    KP as i64,
    KM as i64,
    KD as i64,
    KZ as i64,
    KN as i64,
    KU as i64,
    KV as i64,
    KT as i64,
    XT as i64,
    XD as i64,
    nh as i64,
    wh as i64,
    ni as i64,
    wi as i64,
    nj,
    wj,
];
