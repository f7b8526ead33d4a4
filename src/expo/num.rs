//! Numbers as both formats want them: shortest round-trip floats, `+Inf`, `-Inf`, `NaN`,
//! and integral values as exact integers (`1e17` is `100000000000000000`, not `1e17`,
//! and a counter past 2^53 prints every digit).

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
/// Integral values below 2^128 are printed as exact integers.
const TWO_128: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;

#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.abs() < TWO_63 && (v as i64) as f64 == v {
        // The common case, in 64-bit arithmetic (128-bit conversions are libcalls).
        if v < 0.0 {
            out.push(b'-');
        }
        write_u64(out, v.abs() as u64);
    } else if v.abs() < TWO_128 && (v as i128) as f64 == v {
        if v < 0.0 {
            out.push(b'-');
        }
        out.extend_from_slice(itoa::Buffer::new().format(v.abs() as u128).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

/// A unix timestamp in seconds, to the microsecond, in fixed point (`1700000000.5`):
/// cheaper than shortest round-trip and exact enough for `_created`.
#[inline]
pub fn write_timestamp(out: &mut Vec<u8>, secs: f64) {
    if !(0.0..1e12).contains(&secs) {
        return write_f64(out, secs);
    }
    let micros = (secs * 1e6).round() as u64;
    write_u64(out, micros / 1_000_000);
    let mut frac = micros % 1_000_000;
    if frac == 0 {
        return;
    }
    let mut digits = 6;
    while frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    out.push(b'.');
    let mut buf = [b'0'; 6];
    let mut i = digits;
    while i > 0 {
        i -= 1;
        buf[i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.extend_from_slice(&buf[..digits]);
}

#[inline]
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut b = Vec::new();
        write_f64(&mut b, v);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn specials_and_integers() {
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "0");
        assert_eq!(f(-3.0), "-3");
        assert_eq!(f(1e17), "100000000000000000");
        assert_eq!(f(2f64.powi(60)), "1152921504606846976");
        assert_eq!(f(1e20), "100000000000000000000");
        assert_eq!(f(1e300), "1e300");
    }

    #[test]
    fn timestamps() {
        let t = |v: f64| {
            let mut b = Vec::new();
            write_timestamp(&mut b, v);
            String::from_utf8(b).unwrap()
        };
        assert_eq!(t(1700000000.5), "1700000000.5");
        assert_eq!(t(1700000000.0), "1700000000");
        assert_eq!(t(1700000000.000001), "1700000000.000001");
        assert_eq!(t(1700000000.25), "1700000000.25");
        assert_eq!(t(0.05), "0.05");
        assert_eq!(t(-1.0), "-1");
    }

    #[test]
    fn shortest_round_trip() {
        for v in [0.1, 1.5, -2.25e-7, 1.0 / 3.0, 123456.789, f64::MIN_POSITIVE, 5e-324, f64::MAX] {
            let s = f(v);
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
        }
        assert_eq!(f(0.1), "0.1");
    }
}
