//! Reading q arguments and building q results: every raw access to a K object.
//!
//! Arguments are borrowed from q for the duration of one call: nothing here frees them
//! (`r0`) or keeps them; `&'a str` views into them never outlive the call. Results are
//! fresh objects whose single reference passes to q.

use crate::error::{Error, Result};
use super::qapi::{self, native::{ks, ktn, kpn, kj, kf, xD, xT}};
pub use super::qapi::{K, S};
use std::ffi::{c_char, CStr, CString};

// q type codes used here: k.h's (src/ffi/qapi.rs), as the type byte holds them; KG here
// is the general list (0), not k.h's KG (byte vector).
pub const KG: i8 = 0;
pub const KF: i8 = qapi::KF as i8;
pub const KJ: i8 = qapi::KJ as i8;
pub const KC: i8 = qapi::KC as i8;
pub const KS: i8 = qapi::KS as i8;
pub const XD: i8 = qapi::XD as i8;
pub const NULL: i8 = 101;

/// The type byte of `k`; 127 (no q type) for a null pointer, so it fails every match.
#[inline]
pub fn ty(k: K) -> i8 {
    if k.is_null() {
        return 127;
    }
    // SAFETY: q passes valid K objects; the header's type byte is always readable.
    unsafe { (*k).qtype }
}

/// Length of a vector, general list or dictionary (2).
#[inline]
pub fn len(k: K) -> usize {
    // SAFETY: only called on list types (0..=20, 98, 99), whose header holds `n`.
    let n = unsafe { (*k).value.list.n };
    n.max(0) as usize
}

/// Elements of a vector of type `T` (caller checked the type code).
#[inline]
fn items<'a, T>(k: K) -> &'a [T] {
    let n = len(k);
    // SAFETY: a q vector of n elements stores them contiguously from G0; the caller matched
    // the type code to T, and the slice lives no longer than the borrowed argument.
    unsafe { std::slice::from_raw_parts((*k).value.list.G0.as_ptr() as *const T, n) }
}

pub fn syms<'a>(k: K) -> &'a [S] {
    items(k)
}
pub fn kids<'a>(k: K) -> &'a [K] {
    items(k)
}

/// Atom payloads.
#[inline]
fn atom<T: Copy>(k: K) -> T {
    // SAFETY: the caller matched the atom type to T; the payload follows the header.
    unsafe { std::ptr::read_unaligned(std::ptr::addr_of!((*k).value) as *const T) }
}

/// A symbol's text (q symbols are interned for the life of the process).
#[inline]
pub fn sym_text<'a>(s: S) -> Result<&'a str> {
    if s.is_null() {
        return Err(Error::TextEncoding);
    }
    // SAFETY: q symbols are NUL-terminated and never freed.
    unsafe { CStr::from_ptr(s as *const c_char) }.to_str().map_err(|_| Error::TextEncoding)
}

/// Whether a symbol's text is `name`, byte for byte (no UTF-8 check: `name` is valid).
#[inline]
fn sym_is(s: S, name: &str) -> bool {
    // SAFETY: q symbols are NUL-terminated and never freed; null is checked first.
    !s.is_null() && unsafe { CStr::from_ptr(s as *const c_char) }.to_bytes() == name.as_bytes()
}

/// A char vector's text.
#[inline]
pub fn chars_text<'a>(k: K) -> Result<&'a str> {
    let b: &[u8] = items(k);
    if b.contains(&0) {
        return Err(Error::TextEncoding);
    }
    std::str::from_utf8(b).map_err(|_| Error::TextEncoding)
}

/// A one-byte char atom as text.
fn char_text<'a>(k: K) -> Result<&'a str> {
    // SAFETY: a char atom's payload is one byte at the start of the value union,
    // readable for as long as the argument is borrowed.
    let b: &'a [u8] = unsafe { std::slice::from_raw_parts(std::ptr::addr_of!((*k).value) as *const u8, 1) };
    if b[0] == 0 {
        return Err(Error::TextEncoding);
    }
    std::str::from_utf8(b).map_err(|_| Error::TextEncoding)
}

/// Text from a symbol atom, char vector or char atom; `err` for anything else.
pub fn text<'a>(k: K, err: Error) -> Result<&'a str> {
    match ty(k) {
        -11 => sym_text(atom::<S>(k)),
        KC => chars_text(k),
        -10 => char_text(k),
        _ => Err(err),
    }
}

pub fn is_nothing(k: K) -> bool {
    match ty(k) {
        NULL => true,
        t if (0..=20).contains(&t) => len(k) == 0,
        _ => false,
    }
}

/// A number from any numeric atom. q nulls are errors; q's integer infinities (0W, -0W)
/// become float infinities, left for the store to accept or refuse.
pub fn num(k: K) -> Result<f64> {
    match ty(k) {
        -5 => int_like(atom::<i16>(k) as i64, i16::MIN as i64, i16::MAX as i64),
        -6 => int_like(atom::<i32>(k) as i64, i32::MIN as i64, i32::MAX as i64),
        -7 => int_like(atom::<i64>(k), i64::MIN, i64::MAX),
        -8 => float_like(atom::<f32>(k) as f64),
        -9 => float_like(atom::<f64>(k)),
        _ => Err(Error::ValueType),
    }
}

#[inline]
fn int_like(v: i64, null: i64, inf: i64) -> Result<f64> {
    if v == null {
        Err(Error::NullValue)
    } else if v == inf {
        Ok(f64::INFINITY)
    } else if v == -inf {
        Ok(f64::NEG_INFINITY)
    } else {
        Ok(v as f64)
    }
}

#[inline]
fn float_like(v: f64) -> Result<f64> {
    if v.is_nan() {
        Err(Error::NullValue)
    } else {
        Ok(v)
    }
}

/// An exact whole number from a long/int/short atom, for counts and limits.
pub fn whole(k: K) -> Result<i64> {
    match ty(k) {
        -7..=-5 => {
            let v = num(k)?;
            if v.is_infinite() {
                return Err(Error::ValueType);
            }
            Ok(match ty(k) {
                -7 => atom::<i64>(k),
                _ => v as i64,
            })
        }
        _ => Err(Error::ValueType),
    }
}

/// A non-negative long atom (not null, not 0W) as an exact u64; None for anything else.
pub fn exact_u64(k: K) -> Option<u64> {
    if ty(k) != -7 {
        return None;
    }
    let v = atom::<i64>(k);
    (v >= 0 && v != i64::MAX).then_some(v as u64)
}

/// Numbers from an atom or a numeric vector, all checked before any is used.
pub fn nums(k: K, out: &mut Vec<f64>, err: Error) -> Result<()> {
    out.clear();
    let t = ty(k);
    match t {
        -9..=-5 => out.push(num(k)?),
        5 => for v in items::<i16>(k) { out.push(int_like(*v as i64, i16::MIN as i64, i16::MAX as i64)?) },
        6 => for v in items::<i32>(k) { out.push(int_like(*v as i64, i32::MIN as i64, i32::MAX as i64)?) },
        7 => for v in items::<i64>(k) { out.push(int_like(*v, i64::MIN, i64::MAX)?) },
        8 => for v in items::<f32>(k) { out.push(float_like(*v as f64)?) },
        9 => for v in items::<f64>(k) { out.push(float_like(*v)?) },
        0 if len(k) == 0 => {}
        0 => for e in kids(k) { out.push(num(*e).map_err(|x| if x == Error::ValueType { err } else { x })?) },
        NULL => {}
        _ => return Err(err),
    }
    Ok(())
}

/// Label values without allocating for the usual few (more spill to the heap). Kept
/// small: it is returned by value on every labelled update.
const INLINE_LABELS: usize = 4;

pub struct LabelBuf<'a> {
    arr: [&'a str; INLINE_LABELS],
    n: usize,
    heap: Vec<&'a str>,
}

impl<'a> LabelBuf<'a> {
    fn with_len(n: usize) -> Self {
        let heap = if n > INLINE_LABELS { vec![""; n] } else { Vec::new() };
        LabelBuf { arr: [""; INLINE_LABELS], n, heap }
    }
    fn slot(&mut self, i: usize) -> &mut &'a str {
        if self.n > INLINE_LABELS {
            &mut self.heap[i]
        } else {
            &mut self.arr[i]
        }
    }
    pub fn as_slice(&self) -> &[&'a str] {
        if self.n > INLINE_LABELS {
            &self.heap
        } else {
            &self.arr[..self.n]
        }
    }
}

/// The i-th label value of a symbol list, char vector (one char each), or general list.
fn label_item<'a>(k: K, i: usize) -> Result<&'a str> {
    match ty(k) {
        KS => sym_text(syms(k)[i]),
        KG => text(kids(k)[i], Error::LabelsType),
        _ => Err(Error::LabelsType),
    }
}

/// Label values in the family's order, from positional values or a dictionary.
pub fn labels<'a>(k: K, names: &[Box<str>]) -> Result<LabelBuf<'a>> {
    let t = ty(k);
    if t == XD {
        let kv = kids(k);
        let (keys, vals) = (kv[0], kv[1]);
        if len(keys) == 0 && len(vals) == 0 {
            // ()!(): right for a metric without labels, the wrong names for one with them.
            return if names.is_empty() { Ok(LabelBuf::with_len(0)) } else { Err(Error::LabelNames) };
        }
        if ty(keys) != KS || !matches!(ty(vals), KS | KG) {
            return Err(Error::LabelsType);
        }
        let keys = syms(keys);
        if keys.len() != len(vals) {
            return Err(Error::LabelsType);
        }
        if keys.len() != names.len() {
            return Err(Error::LabelNames);
        }
        let mut buf = LabelBuf::with_len(names.len());
        for (i, name) in names.iter().enumerate() {
            // The family's order first (a dictionary built from its label names), then any
            // position; keys are compared as bytes (a match is a valid name, so UTF-8).
            let found = match keys.get(i) {
                Some(k) if sym_is(*k, name) => Some(i),
                _ => keys.iter().position(|k| sym_is(*k, name)),
            };
            let Some(j) = found else {
                // A key that is not UTF-8 says so rather than "do not match".
                keys.iter().try_for_each(|k| sym_text(*k).map(drop))?;
                return Err(Error::LabelNames);
            };
            *buf.slot(i) = label_item(vals, j)?;
        }
        return Ok(buf);
    }
    let n = match t {
        NULL => 0,
        -11 | KC | -10 => 1,
        KS => len(k),
        KG => len(k),
        _ => return Err(Error::LabelsType),
    };
    if n != names.len() {
        return Err(Error::LabelCount);
    }
    let mut buf = LabelBuf::with_len(n);
    for i in 0..n {
        *buf.slot(i) = match t {
            -11 | KC | -10 => text(k, Error::LabelsType)?,
            _ => label_item(k, i)?,
        };
    }
    Ok(buf)
}

/// Label names: a symbol, a symbol list, a general list of symbols/strings, or nothing.
pub fn label_names<'a>(k: K) -> Result<Vec<&'a str>> {
    match ty(k) {
        NULL => Ok(Vec::new()),
        -11 | KC | -10 => Ok(vec![text(k, Error::LabelsType)?]),
        KS => syms(k).iter().map(|s| sym_text(*s)).collect(),
        KG => kids(k).iter().map(|e| text(*e, Error::LabelsType)).collect(),
        _ => Err(Error::LabelsType),
    }
}

/// One entry of a dictionary whose values may be a general list or a typed vector.
#[derive(Clone, Copy)]
pub enum Item<'a> {
    K(K),
    Sym(&'a str),
    Num(f64),
}

impl<'a> Item<'a> {
    /// Text from a symbol or string; `err` otherwise.
    pub fn text(&self, err: Error) -> Result<&'a str> {
        match self {
            Item::Sym(s) => Ok(s),
            Item::K(x) => text(*x, err),
            Item::Num(_) => Err(err),
        }
    }

    /// A boolean atom (a configuration switch).
    pub fn flag(&self) -> Result<bool> {
        match self {
            Item::K(x) if ty(*x) == -1 => Ok(boolean(*x)),
            _ => Err(Error::ConfigType),
        }
    }

    /// A whole number (a long/int/short atom, or an integral element of a numeric vector).
    pub fn count(&self, err: Error) -> Result<i64> {
        match self {
            Item::K(x) => whole(*x).map_err(|_| err),
            Item::Num(n) if n.is_finite() && n.fract() == 0.0 => Ok(*n as i64),
            _ => Err(err),
        }
    }

    /// A duration: a timespan, or seconds as a number; `err` for other types, `range`
    /// unless 0 < seconds < `max_secs`.
    pub fn seconds(&self, err: Error, range: Error, max_secs: f64) -> Result<std::time::Duration> {
        let secs = match self {
            Item::K(x) if ty(*x) == -16 => whole_timespan(*x)? as f64 / 1e9,
            Item::K(x) => num(*x).map_err(|_| err)?,
            Item::Num(n) => *n,
            Item::Sym(_) => return Err(err),
        };
        if !(secs.is_finite() && secs > 0.0 && secs < max_secs) {
            return Err(range);
        }
        Ok(std::time::Duration::from_secs_f64(secs))
    }
}

/// The entries of a dictionary with symbol keys.
pub fn dict_items<'a>(d: K) -> Result<Vec<(&'a str, Item<'a>)>> {
    if ty(d) != XD {
        return Err(Error::DefinitionType);
    }
    let kv = kids(d);
    let (keys, vals) = (kv[0], kv[1]);
    if ty(keys) != KS || len(keys) != len(vals) {
        return Err(Error::DefinitionType);
    }
    let mut out = Vec::with_capacity(len(keys));
    for (i, key) in syms(keys).iter().enumerate() {
        let item = match ty(vals) {
            KG => Item::K(kids(vals)[i]),
            KS => Item::Sym(sym_text(syms(vals)[i])?),
            5 => Item::Num(items::<i16>(vals)[i] as f64),
            6 => Item::Num(items::<i32>(vals)[i] as f64),
            7 => Item::Num(items::<i64>(vals)[i] as f64),
            8 => Item::Num(items::<f32>(vals)[i] as f64),
            9 => Item::Num(items::<f64>(vals)[i]),
            _ => return Err(Error::OptionType),
        };
        out.push((sym_text(*key)?, item));
    }
    Ok(out)
}

// ---- results -------------------------------------------------------------------------

/// A symbol atom. Text with a NUL byte (impossible for validated names) becomes the empty symbol.
pub fn sym(s: &str) -> K {
    let c = CString::new(s).unwrap_or_default();
    // SAFETY: ks copies (interns) the NUL-terminated text; `c` outlives the call.
    unsafe { ks(c.as_ptr() as S) }
}

/// A symbol vector.
pub fn sym_list<'a>(xs: impl ExactSizeIterator<Item = &'a str>) -> K {
    // SAFETY: ktn allocates a vector of len S slots which we fill, each with an
    // interned symbol from ss (via `sym`), before handing it out.
    unsafe {
        let v = ktn(KS as i32, xs.len() as i64);
        let slots = std::slice::from_raw_parts_mut((*v).value.list.G0.as_mut_ptr() as *mut S, xs.len());
        for (slot, s) in slots.iter_mut().zip(xs) {
            let c = CString::new(s).unwrap_or_default();
            *slot = super::qapi::native::ss(c.as_ptr() as S);
        }
        v
    }
}

/// A char vector (q string).
pub fn string(s: &[u8]) -> K {
    // SAFETY: kpn copies len bytes from the pointer into a new char vector.
    unsafe { kpn(s.as_ptr() as S, s.len() as i64) }
}

pub fn long(v: i64) -> K {
    // SAFETY: plain constructor.
    unsafe { kj(v) }
}

pub fn float(v: f64) -> K {
    // SAFETY: plain constructor.
    unsafe { kf(v) }
}

/// A numeric vector of type 7 (long) or 9 (float) from a slice.
pub fn vector<T: Copy>(t: i8, xs: &[T]) -> K {
    // SAFETY: ktn allocates xs.len() elements of the q type matching T (caller's contract:
    // 7 with i64, 9 with f64, 4 with u8, 0 with K); we copy them in.
    unsafe {
        let v = ktn(t as i32, xs.len() as i64);
        std::ptr::copy_nonoverlapping(xs.as_ptr(), (*v).value.list.G0.as_mut_ptr() as *mut T, xs.len());
        v
    }
}

/// A general list taking ownership of each K.
pub fn list(xs: Vec<K>) -> K {
    vector(KG, &xs)
}

pub fn dict(keys: K, vals: K) -> K {
    // SAFETY: xD takes ownership of both (fresh) objects.
    unsafe { xD(keys, vals) }
}

pub fn table(cols: &[&str], vals: Vec<K>) -> K {
    let d = dict(sym_list(cols.iter().copied()), list(vals));
    // SAFETY: xT takes ownership of a dictionary of symbol keys to equal-length columns.
    unsafe { xT(d) }
}

/// q's generic null `(::)` as an object (type 101, value 0), for argument lists.
pub fn identity() -> K {
    // SAFETY: ka allocates an atom of the given type; we set its one-byte payload to 0,
    // which is what (::) holds.
    unsafe {
        let k = super::qapi::native::ka(NULL as i32);
        (*k).value.byte = 0;
        k
    }
}

pub const fn generic_null() -> K {
    // Returning (K)0 from a function q called through 2: gives q's generic null (::).
    std::ptr::null_mut()
}


/// Nanoseconds of a timespan atom (-16); null is an error.
pub fn whole_timespan(k: K) -> Result<i64> {
    let v = atom::<i64>(k);
    if v == i64::MIN {
        return Err(Error::NullValue);
    }
    Ok(v)
}

/// A boolean atom's value.
pub fn boolean(k: K) -> bool {
    atom::<u8>(k) != 0
}

/// Days since 2000.01.01 of a date atom (-14); null is an error.
pub fn date(k: K) -> Result<i64> {
    if ty(k) != -14 {
        return Err(Error::ValueType);
    }
    let v = atom::<i32>(k);
    if v == i32::MIN {
        return Err(Error::NullValue);
    }
    Ok(v as i64)
}

/// Whether two q objects are the same: the same object, or equal serialisations (q's
/// `~` for functions and projections, which serialise as their text and bound values).
pub fn same(a: K, b: K) -> bool {
    if a == b {
        return true;
    }
    // SAFETY: b9 serialises a borrowed object into a new byte vector (or returns null
    // with q's error set, e.g. for an object q cannot serialise); each new vector is
    // read while alive and released with r0.
    unsafe {
        let (x, y) = (super::qapi::native::b9(3, a), super::qapi::native::b9(3, b));
        let eq = !x.is_null() && !y.is_null() && ty(x) == 4 && ty(y) == 4 && items::<u8>(x) == items::<u8>(y);
        for z in [x, y] {
            if !z.is_null() {
                super::qapi::native::r0(z);
            }
        }
        eq
    }
}
