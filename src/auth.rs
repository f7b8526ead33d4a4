//! HTTP basic auth for the scrape listener, as Prometheus' exporter-toolkit does it
//! (`basic_auth_users` in its web config): user names mapped to bcrypt hashes, checked
//! against each request's `Authorization: Basic …` header (RFC 7617).
//!
//! [`BasicAuth::check`] blocks for one bcrypt verification on a cache miss (tens of
//! milliseconds at cost 10, more while other misses queue before it): call it from a
//! worker thread, never from an event loop.
//!
//! Users paste what `htpasswd -nbBC 10 user password` prints after `user:` (a `$2y$`
//! hash), or `python3 -c 'import bcrypt; print(bcrypt.hashpw(b"pw", bcrypt.gensalt(10)).decode())'`
//! (`$2b$`), as for any exporter-toolkit exporter. There is deliberately no hashing helper
//! here: a q-side one would put the plaintext password in q code and history.
//!
//! Timing, what an attacker can learn from how long a request takes:
//! - Every well-formed request that is not a cache hit runs exactly one bcrypt: against
//!   the user's hash, or, for an unknown user, against a dummy hash whose cost is the
//!   most common cost among the users (as exporter-toolkit does with a fixed dummy). With
//!   one cost for all users, which is what every hashing tool produces, an unknown user
//!   costs what a known one does. Users whose cost differs from the most common one can
//!   be told apart by timing: configure one cost.
//! - User names are compared in constant time, all of them, with no early exit.
//! - Only successful verifications are cached, so a fast answer happens only for
//!   credentials that are right, which the 200 reveals anyway. Cache keys are compared in
//!   constant time, all of them.
//! - A malformed header is refused without bcrypt: it reveals nothing about users.
//! - Lengths are not hidden (user names, passwords): a mismatch in length is a mismatch.
//!
//! Cost under attack: bcrypt runs are serialised behind one mutex (exporter-toolkit's
//! `bcryptMtx`), so a flood of wrong passwords uses at most one core; a cached scraper
//! never takes that mutex. Wrong passwords are not cached: exporter-toolkit caches
//! failures too, which lets a flood of distinct wrong passwords evict the scraper's entry.
//!
//! Memory: the cache holds SHA-256(per-instance random salt, user, password), never the
//! password. Anyone who can read the process' memory could brute-force a cached password
//! at SHA-256 speed rather than bcrypt's, but such a reader also sees the request
//! buffers, which hold the password itself for as long as the caller keeps them.

use crate::error::Error;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use subtle::ConstantTimeEq;

/// Successful verifications remembered. Only someone who knows a password can add an
/// entry, so this bounds memory rather than anything an attacker controls; beyond it the
/// least recently used entry goes.
const CACHE_CAP: usize = 64;

/// RFC 7617's base64 (RFC 4648 §4). Padding is optional on input: some clients drop it,
/// and it carries no information.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Basic-auth users and the state that makes checking them cheap and safe.
pub struct BasicAuth {
    users: Vec<User>,
    /// Verified instead of a user's hash when the user is unknown; matches no password.
    dummy: String,
    /// Makes the cache keys of this instance unlike any other's (no precomputed tables).
    salt: [u8; 32],
    cache: Mutex<Cache>,
    /// Held for each bcrypt run: at most one at a time, whatever the number of workers.
    bcrypt_lock: Mutex<()>,
    bcrypt_runs: AtomicU64,
}

struct User {
    name: String,
    hash: String,
}

impl BasicAuth {
    /// `users`: (user name, bcrypt hash `$2a$`/`$2b$`/`$2y$`, cost 04 to 31). Everything is
    /// validated here, so that `check` cannot meet a bad hash: an empty list, an empty user
    /// name or one with `:` (RFC 7617 cannot carry it), a name given twice, a hash that
    /// is not bcrypt (`$2x$`, crypt's other schemes, plaintext) are refused. Costs no
    /// bcrypt run.
    pub fn new(users: &[(String, String)]) -> Result<BasicAuth, Error> {
        if users.is_empty() {
            return Err(Error::AuthNoUsers);
        }
        let mut out: Vec<User> = Vec::with_capacity(users.len());
        let mut costs = [0usize; 32];
        for (name, hash) in users {
            if name.is_empty() || name.contains(':') {
                return Err(Error::AuthUser);
            }
            if out.iter().any(|u| u.name == *name) {
                return Err(Error::AuthDuplicateUser);
            }
            costs[bcrypt_cost(hash)? as usize] += 1;
            out.push(User { name: name.clone(), hash: hash.clone() });
        }
        // The most common cost (the highest of equals); every count is > 0 for a valid one.
        let mut cost = 0;
        for (c, &n) in costs.iter().enumerate() {
            if n > 0 && n >= costs[cost] {
                cost = c;
            }
        }
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|_| Error::AuthRandom)?;
        Ok(BasicAuth {
            users: out,
            dummy: dummy_hash(cost as u32),
            salt,
            cache: Mutex::new(Cache { entries: Vec::new(), clock: 0 }),
            bcrypt_lock: Mutex::new(()),
            bcrypt_runs: AtomicU64::new(0),
        })
    }

    /// `authorization`: the raw value of the Authorization header, if any (surrounding
    /// whitespace allowed). True only for `Basic <base64 of user:password>` (scheme in any
    /// case, one or more spaces) naming a known user with the right password; false for
    /// everything else, including base64 that is malformed or does not decode to UTF-8
    /// with a `:`. The password is what follows the first `:`, so it may hold `:`. Blocks
    /// for one bcrypt run unless the credentials are malformed or cached.
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        let Some(mut decoded) = authorization.and_then(decode_basic) else {
            return false;
        };
        let ok = match std::str::from_utf8(&decoded).ok().and_then(|s| s.split_once(':')) {
            Some((user, password)) => self.verify(user.as_bytes(), password.as_bytes()),
            None => false,
        };
        // Best effort: our copy of the plaintext does not outlive the check. (bcrypt's own
        // copy is not wiped: see Cargo.toml on `zeroize`.)
        decoded.fill(0);
        std::hint::black_box(&decoded);
        ok
    }

    /// bcrypt verifications run so far: every check that was well-formed and not a cache
    /// hit. For tests, and for a self-metric if one is wanted.
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Relaxed)
    }

    fn verify(&self, user: &[u8], password: &[u8]) -> bool {
        // Every name is compared, with no early exit: which one matched, or whether any
        // did, does not change how long this takes.
        let mut found = None;
        for (i, u) in self.users.iter().enumerate() {
            if ct_eq(u.name.as_bytes(), user) {
                found = Some(i);
            }
        }
        // Computed and looked up for unknown users too (never a hit: only successes are
        // stored), so that both paths do the same work up to bcrypt.
        let key = self.cache_key(found, password);
        if self.cache.lock().hit(&key) {
            return true;
        }
        let hash = found.map_or(self.dummy.as_str(), |i| self.users[i].hash.as_str());
        let ok = {
            let _one_at_a_time = self.bcrypt_lock.lock();
            // Another worker may have verified the same credentials while this one waited
            // (Prometheus' first scrapes after a restart, several scrapers).
            if self.cache.lock().hit(&key) {
                return true;
            }
            self.bcrypt_runs.fetch_add(1, Relaxed);
            // `new` validated every hash, so an error cannot happen; it would be a refusal.
            let ok = bcrypt::verify(password, hash).unwrap_or(false) & found.is_some();
            // Stored before the bcrypt lock is released: a worker that waited for it must
            // find the result (stored after, it could run bcrypt again for the same pair).
            if ok {
                self.cache.lock().insert(key);
            }
            ok
        };
        ok
    }

    fn cache_key(&self, user: Option<usize>, password: &[u8]) -> [u8; 32] {
        // The user's index, fixed width, then the password: no two (user, password) pairs
        // give the same input. An unknown user gets an index no user has.
        let index = user.map_or(u64::MAX, |i| i as u64);
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        h.update(&self.salt);
        h.update(&index.to_le_bytes());
        h.update(password);
        let mut key = [0u8; 32];
        key.copy_from_slice(h.finish().as_ref()); // SHA-256: always 32 bytes
        key
    }
}

impl fmt::Debug for BasicAuth {
    /// User names only: hashes stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Recent successful verifications, least recently used evicted first.
struct Cache {
    entries: Vec<Entry>,
    /// A logical clock for recency: incremented at each hit and insert.
    clock: u64,
}

struct Entry {
    key: [u8; 32],
    used: u64,
}

impl Cache {
    fn hit(&mut self, key: &[u8; 32]) -> bool {
        self.clock += 1;
        // Every entry is compared, with no early exit.
        let mut hit = false;
        for e in &mut self.entries {
            if ct_eq(&e.key, key) {
                e.used = self.clock;
                hit = true;
            }
        }
        hit
    }

    fn insert(&mut self, key: [u8; 32]) {
        self.clock += 1;
        if self.hit(&key) {
            return;
        }
        let entry = Entry { key, used: self.clock };
        if self.entries.len() < CACHE_CAP {
            self.entries.push(entry);
        } else if let Some(lru) = self.entries.iter_mut().min_by_key(|e| e.used) {
            *lru = entry;
        }
    }
}

/// Equality in time that depends on the lengths only (subtle's, which keeps the
/// optimiser from short-circuiting it).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The credentials of an Authorization value: `Basic`, in any case, then one or more
/// spaces or tabs, then base64 (RFC 7235's token68, RFC 7617); whitespace around the
/// value is allowed (RFC 9110's OWS, if the caller kept it). None if anything is off.
fn decode_basic(value: &[u8]) -> Option<Vec<u8>> {
    let v = trim_ows(value);
    let (scheme, rest) = v.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case(b"basic") || !rest.first().is_some_and(|&b| is_ows(b)) {
        return None;
    }
    let token = trim_ows(rest);
    if token.is_empty() {
        return None;
    }
    BASE64.decode(token).ok()
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if !is_ows(*first) {
            break;
        }
        v = rest;
    }
    while let [rest @ .., last] = v {
        if !is_ows(*last) {
            break;
        }
        v = rest;
    }
    v
}

/// The cost of a modular-crypt bcrypt hash, `$2a$`, `$2b$` or `$2y$`, two-digit cost,
/// 22 characters of salt, 31 of digest, in bcrypt's base64. `$2x$` (crypt_blowfish's
/// emulation of its own sign-extension bug) is refused: the bcrypt crate would verify it
/// as `$2b$`, wrongly for passwords with bytes above 0x7f.
fn bcrypt_cost(hash: &str) -> Result<u32, Error> {
    let b = hash.as_bytes();
    let shape = b.len() == 60
        && b[0] == b'$'
        && b[1] == b'2'
        && matches!(b[2], b'a' | b'b' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$';
    // Byte slices, never &str ones: a hash with multi-byte characters must not panic.
    if !shape
        || !bcrypt::BASE_64.decode(&b[7..29]).is_ok_and(|s| s.len() == 16)
        || !bcrypt::BASE_64.decode(&b[29..]).is_ok_and(|d| d.len() == 23)
    {
        return Err(Error::AuthHash);
    }
    let cost = u32::from(b[4] - b'0') * 10 + u32::from(b[5] - b'0');
    if !(4..=31).contains(&cost) {
        return Err(Error::AuthCost);
    }
    Ok(cost)
}

/// A valid hash of the given cost whose digest (all zero bits) no password produces but
/// with negligible probability; verifying against it costs what a real one does, since
/// bcrypt's work depends on the cost only. (It is never accepted anyway: `verify` also
/// requires a known user.)
fn dummy_hash(cost: u32) -> String {
    format!("$2b${cost:02}${}", ".".repeat(53))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn header(credentials: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials))
            .into_bytes()
    }

    fn auth(users: &[(&str, &str)]) -> BasicAuth {
        let users: Vec<(String, String)> =
            users.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect();
        BasicAuth::new(&users).expect("valid users")
    }

    fn alice() -> BasicAuth {
        auth(&[("alice", &bcrypt::hash("wonderland", 4).unwrap())])
    }

    // Made with libxcrypt's crypt(3) (Openwall's crypt_blowfish, as htpasswd's $2y$), not
    // with the crate under test.
    const HUNTER2_2Y_05: &str = "$2y$05$O8dv5hzrKAVNVEqMpcKU2.PvkIbVkdh.fOb.zZh8ekioFvBzGbCTC";
    const SECRET_2Y_04: &str = "$2y$04$abcdefghijklmnopqrstuu2r9OfJnfCsdneAXAGHnS4UpFFP8WIrW";
    const COLONS_2A_04: &str = "$2a$04$Zz0123456789abcdefghiOJGS8Xx.B2hKvbzqyJR7IB1G6AyRaBtu";
    const EMPTY_2B_04: &str = "$2b$04$0123456789abcdefghijkOQ/7m2Y4MVAEpkMXPcsF9thisF7pgNWS";
    const UNICODE_2B_04: &str = "$2b$04$UnicodeSaltUnicodeSalOr9pk6c5YKoTZmaa/jdgAMWiI8Q3oKDe";
    /// "0123456789" eight times: 80 bytes, of which bcrypt reads 72.
    const LONG_2Y_04: &str = "$2y$04$LongPasswordSaltxyzABOs0o6hGjLZH8R1j6w2Z0/U5tJauQFd/K";

    #[test]
    fn right_password() {
        let a = alice();
        assert!(a.check(Some(&header("alice:wonderland"))));
        assert_eq!(a.bcrypt_runs(), 1);
    }

    #[test]
    fn wrong_password() {
        let a = alice();
        assert!(!a.check(Some(&header("alice:wonderlanD"))));
        assert!(!a.check(Some(&header("alice:"))));
        assert!(!a.check(Some(&header("alice:wonderland "))));
        assert_eq!(a.bcrypt_runs(), 3);
    }

    #[test]
    fn unknown_user_runs_bcrypt_too() {
        let a = alice();
        assert!(!a.check(Some(&header("bob:wonderland"))));
        assert!(!a.check(Some(&header("Alice:wonderland"))));
        assert!(!a.check(Some(&header(":wonderland"))));
        // Each went through a dummy verification, as a known user's would.
        assert_eq!(a.bcrypt_runs(), 3);
    }

    #[test]
    fn hashes_from_other_tools() {
        let a = auth(&[
            ("h", HUNTER2_2Y_05),
            ("s", SECRET_2Y_04),
            ("c", COLONS_2A_04),
            ("e", EMPTY_2B_04),
            ("u", UNICODE_2B_04),
            ("l", LONG_2Y_04),
        ]);
        assert!(a.check(Some(&header("h:hunter2"))));
        assert!(a.check(Some(&header("s:secret"))));
        assert!(a.check(Some(&header("c:pass:with:colons"))));
        assert!(a.check(Some(&header("e:"))));
        assert!(a.check(Some(&header("u:pässwörd"))));
        assert!(a.check(Some(&header(&format!("l:{}", "0123456789".repeat(8))))));
        // bcrypt reads 72 bytes, as the reference implementation does.
        assert!(a.check(Some(&header(&format!("l:{}01", "0123456789".repeat(7))))));
        assert!(!a.check(Some(&header(&format!("l:{}0", "0123456789".repeat(7))))));
        assert!(!a.check(Some(&header("h:hunter3"))));
        assert!(!a.check(Some(&header("s:hunter2"))));
        assert!(!a.check(Some(&header("c:pass"))));
        assert!(!a.check(Some(&header("u:passwort"))));
    }

    #[test]
    fn header_forms_accepted() {
        let a = auth(&[("s", SECRET_2Y_04)]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("s:secret"); // czpzZWNyZXQ=
        for value in [
            format!("Basic {b64}"),
            format!("basic {b64}"),
            format!("BASIC {b64}"),
            format!("bAsIc {b64}"),
            format!("Basic   {b64}"),
            format!("Basic\t{b64}"),
            format!("  Basic {b64} \t"),
            format!("Basic {}", b64.trim_end_matches('=')),
        ] {
            assert!(a.check(Some(value.as_bytes())), "{value:?}");
        }
    }

    #[test]
    fn malformed_headers_refused_without_bcrypt() {
        let a = auth(&[("s", SECRET_2Y_04)]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("s:secret");
        let no_colon = base64::engine::general_purpose::STANDARD.encode("ssecret");
        let not_utf8 = base64::engine::general_purpose::STANDARD.encode(b"s:secr\xffet");
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"   ".to_vec(),
            b"Basic".to_vec(),
            b"Basic ".to_vec(),
            b"Basic    ".to_vec(),
            b64.clone().into_bytes(),                  // no scheme
            format!("Bearer {b64}").into_bytes(),      // another scheme
            format!("Digest {b64}").into_bytes(),
            format!("Basic{b64}").into_bytes(),        // no space after the scheme
            format!("Basics {b64}").into_bytes(),
            format!("Basic {b64} x").into_bytes(),     // trailing garbage
            format!("Basic {b64}{b64}").into_bytes(),  // padding in the middle
            b"Basic !!!!".to_vec(),                    // not base64
            b"Basic czpzZWNyZXQ*".to_vec(),
            b"Basic czpzZW NyZXQ=".to_vec(),           // space inside the token
            b"Basic czpzZWNyZXR=".to_vec(),            // non-zero trailing bits
            b"Basic c".to_vec(),                       // impossible length
            format!("Basic {no_colon}").into_bytes(),  // no colon
            format!("Basic {not_utf8}").into_bytes(),  // not UTF-8
            b"Basic \xff\xfe".to_vec(),
            "Basic\u{a0}czpzZWNyZXQ=".as_bytes().to_vec(), // not OWS
        ];
        assert!(!a.check(None));
        for value in &cases {
            assert!(!a.check(Some(value)), "{:?}", String::from_utf8_lossy(value));
        }
        assert_eq!(a.bcrypt_runs(), 0);
        assert!(a.check(Some(format!("Basic {b64}").as_bytes())));
    }

    #[test]
    fn cache_hit_skips_bcrypt() {
        let a = alice();
        let h = header("alice:wonderland");
        assert!(a.check(Some(&h)));
        assert_eq!(a.bcrypt_runs(), 1);
        for _ in 0..10 {
            assert!(a.check(Some(&h)));
        }
        // Another spelling of the same credentials is the same cache entry.
        assert!(a.check(Some(format!("  basic  {}", String::from_utf8_lossy(&h[6..])).as_bytes())));
        assert_eq!(a.bcrypt_runs(), 1);
    }

    #[test]
    fn cache_does_not_accept_a_wrong_password_for_a_cached_user() {
        let a = alice();
        assert!(a.check(Some(&header("alice:wonderland"))));
        assert!(!a.check(Some(&header("alice:wonderlan"))));
        assert!(!a.check(Some(&header("alice:wonderland!"))));
        assert!(!a.check(Some(&header("alice:"))));
        assert_eq!(a.bcrypt_runs(), 4);
        assert!(a.check(Some(&header("alice:wonderland"))));
        assert_eq!(a.bcrypt_runs(), 4);
    }

    #[test]
    fn cache_is_per_user() {
        // Two users with the same password: one's cache entry is not the other's.
        let a = auth(&[("a", SECRET_2Y_04), ("b", SECRET_2Y_04)]);
        assert!(a.check(Some(&header("a:secret"))));
        assert!(!a.check(Some(&header("c:secret")))); // unknown user, same password
        assert_eq!(a.bcrypt_runs(), 2);
        assert!(a.check(Some(&header("b:secret"))));
        assert_eq!(a.bcrypt_runs(), 3);
    }

    #[test]
    fn failures_are_not_cached() {
        let a = alice();
        for i in 1..=3 {
            assert!(!a.check(Some(&header("alice:nope"))));
            assert!(!a.check(Some(&header("mallory:nope"))));
            assert_eq!(a.bcrypt_runs(), 2 * i);
        }
        assert!(a.cache.lock().entries.is_empty());
    }

    #[test]
    fn cache_is_bounded_and_evicts_the_least_recently_used() {
        let mut c = Cache { entries: Vec::new(), clock: 0 };
        let key = |i: usize| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            k
        };
        for i in 0..CACHE_CAP {
            c.insert(key(i));
        }
        c.insert(key(0)); // already there: no duplicate
        assert_eq!(c.entries.len(), CACHE_CAP);
        assert!(c.hit(&key(0))); // 0 is now the most recent; 1 the least
        c.insert(key(CACHE_CAP));
        assert_eq!(c.entries.len(), CACHE_CAP);
        assert!(!c.hit(&key(1)));
        assert!(c.hit(&key(0)));
        assert!(c.hit(&key(2)));
        assert!(c.hit(&key(CACHE_CAP)));
        for i in 0..10 * CACHE_CAP {
            c.insert(key(1000 + i));
        }
        assert_eq!(c.entries.len(), CACHE_CAP);
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"alice", b"alice"));
        assert!(!ct_eq(b"alice", b"alicE"));
        assert!(!ct_eq(b"alice", b"blice"));
        assert!(!ct_eq(b"alice", b"alic"));
        assert!(!ct_eq(b"alic", b"alice"));
        assert!(!ct_eq(b"", b"a"));
        assert!(!ct_eq(&[0u8; 32], &[0u8; 31]));
        let mut k = [7u8; 32];
        assert!(ct_eq(&k, &[7u8; 32]));
        k[31] ^= 1;
        assert!(!ct_eq(&k, &[7u8; 32]));
    }

    #[test]
    fn bad_users_refused() {
        let ok = SECRET_2Y_04;
        let new = |users: &[(&str, &str)]| {
            let users: Vec<(String, String)> =
                users.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect();
            BasicAuth::new(&users).map(|_| ())
        };
        assert_eq!(new(&[]), Err(Error::AuthNoUsers));
        assert_eq!(new(&[("", ok)]), Err(Error::AuthUser));
        assert_eq!(new(&[("a:b", ok)]), Err(Error::AuthUser));
        assert_eq!(new(&[(":", ok)]), Err(Error::AuthUser));
        assert_eq!(new(&[("a", ok), ("a", ok)]), Err(Error::AuthDuplicateUser));
        assert_eq!(new(&[("a", ok), ("b", "secret")]), Err(Error::AuthHash));
        let with = |h: &str| new(&[("a", h)]);
        let body = &ok[7..]; // salt and digest
        assert_eq!(with(&format!("$2b$04${body}")), Ok(()));
        assert_eq!(with(&format!("$2a$31${body}")), Ok(()));
        assert_eq!(with(&format!("$2x$04${body}")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2$04${body}")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$3b$04${body}")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$4${body}")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$004${body}")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$x4${body}")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$04${body}=")), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$04${}", &body[1..])), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$04$+{}", &body[1..])), Err(Error::AuthHash)); // not bcrypt's alphabet
        // 60 bytes with a multi-byte character across the salt/digest boundary: no panic.
        let split = format!("$2b$04${}é{}", &body[..21], &body[23..]);
        assert_eq!(split.len(), 60);
        assert_eq!(with(&split), Err(Error::AuthHash));
        assert_eq!(with(&format!(" $2b$04${}", &body[1..])), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$04${body}\n")), Err(Error::AuthHash));
        assert_eq!(with(&format!("a:$2b$04${body}")), Err(Error::AuthHash)); // a whole htpasswd line
        assert_eq!(with("$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"), Err(Error::AuthHash));
        assert_eq!(with(""), Err(Error::AuthHash));
        // Salt whose last character has bits set beyond the 128 bits of salt.
        assert_eq!(with(&format!("$2b$04$abcdefghijklmnopqrstuv{}", &body[22..])), Err(Error::AuthHash));
        assert_eq!(with(&format!("$2b$00${body}")), Err(Error::AuthCost));
        assert_eq!(with(&format!("$2b$03${body}")), Err(Error::AuthCost));
        assert_eq!(with(&format!("$2b$32${body}")), Err(Error::AuthCost));
        assert_eq!(with(&format!("$2b$99${body}")), Err(Error::AuthCost));
    }

    #[test]
    fn dummy_hash_takes_the_most_common_cost_and_never_matches() {
        let body = &SECRET_2Y_04[7..];
        let a = auth(&[
            ("a", &format!("$2y$05${body}")),
            ("b", &format!("$2y$04${body}")),
            ("c", &format!("$2y$05${body}")),
            ("d", &format!("$2y$12${body}")),
        ]);
        assert_eq!(a.dummy, dummy_hash(5));
        assert_eq!(auth(&[("a", &format!("$2y$04${body}")), ("b", &format!("$2y$06${body}"))]).dummy, dummy_hash(6));
        for cost in 4..=31 {
            assert_eq!(bcrypt_cost(&dummy_hash(cost)), Ok(cost));
        }
        assert_eq!(bcrypt::verify("", &dummy_hash(4)).ok(), Some(false));
        assert_eq!(bcrypt::verify("secret", &dummy_hash(4)).ok(), Some(false));
    }

    #[test]
    fn debug_shows_no_hashes() {
        let s = format!("{:?}", auth(&[("alice", SECRET_2Y_04)]));
        assert!(s.contains("alice") && !s.contains("$2y$"), "{s}");
    }

    #[test]
    fn concurrent_checks() {
        let a = Arc::new(auth(&[("s", SECRET_2Y_04), ("h", HUNTER2_2Y_05)]));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let a = Arc::clone(&a);
                std::thread::spawn(move || {
                    for i in 0..20 {
                        assert!(a.check(Some(&header("s:secret"))));
                        assert!(a.check(Some(&header("h:hunter2"))));
                        assert!(!a.check(Some(&header(&format!("s:wrong{t}.{i}")))));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Each right password ran bcrypt once, however many workers raced for it.
        assert_eq!(a.bcrypt_runs(), 2 + 4 * 20);
    }

    /// Prints what a cache miss costs at cost 10, the common configured cost:
    /// `cargo test --release --no-default-features --lib auth -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bcrypt_cost_10_timing() {
        let a = auth(&[("alice", &bcrypt::hash("wonderland", 10).unwrap())]);
        let time = |credentials: &str, expect: bool| {
            let h = header(credentials);
            let runs = 5;
            let t = Instant::now();
            for _ in 0..runs {
                assert_eq!(a.check(Some(&h)), expect);
            }
            t.elapsed() / runs
        };
        let known = time("alice:wrong", false);
        let unknown = time("bob:wrong", false);
        let _ = time("alice:wonderland", true);
        let hit = time("alice:wonderland", true);
        println!(
            "bcrypt cost 10: known user {known:?}, unknown user {unknown:?} per check; cache hit {hit:?}"
        );
    }
}
