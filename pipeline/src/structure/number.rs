//! Decimal coordinates without the general float parser: the common `-12.345` shape is read as
//! an integer and one division, which is exactly what the standard library computes for it
//! (both are the correctly rounded f64); anything else goes to `str::parse`.

/// Powers of ten that f64 holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `[+-]digits[.digits]` between optional ASCII spaces, at most 15 digits: the value, correctly
/// rounded, bit for bit what `text.trim().parse::<f64>()` gives. `None` for any other shape
/// (exponents, `inf`, long mantissas, junk), which the caller hands to the general parser.
#[inline]
pub(crate) fn decimal(text: &[u8]) -> Option<f64> {
    let t = text.trim_ascii();
    let (negative, digits) = match t.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, t),
    };
    let mut mantissa = 0u64;
    let mut count = 0usize;
    let mut scale = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                count += 1;
            }
            b'.' if scale.is_none() => scale = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    // 15 digits stay below 2^53, so the mantissa is exact; the division is then one rounding.
    if count == 0 || count > 15 {
        return None;
    }
    let v = mantissa as f64 / POW10[scale.unwrap_or(0)];
    Some(if negative { -v } else { v })
}

/// A fixed-column decimal as the PDB format writes it (`%8.3f`, `%6.2f`): right-aligned, `frac`
/// (≥ 1) digits after a point at `len - frac - 1`, digits and an optional sign before it, blanks
/// in front. This common shape is read without searching for the point; any other gives `None`
/// and the caller goes on to [`decimal`]. Whatever it reads, [`decimal`] reads to the same bits
/// (the same integer mantissa, one division by the same power of ten).
#[inline]
pub(crate) fn fixed(field: &[u8], frac: usize) -> Option<f64> {
    let n = field.len();
    if frac == 0 || n < frac + 1 || n > 15 {
        return None;
    }
    let point = n - frac - 1;
    if field[point] != b'.' {
        return None;
    }
    let mut mantissa = 0u64;
    for &b in &field[point + 1..] {
        if !b.is_ascii_digit() {
            return None;
        }
        mantissa = mantissa * 10 + u64::from(b - b'0');
    }
    let mut i = point;
    let mut unit = POW10[frac] as u64;
    while i > 0 && field[i - 1].is_ascii_digit() {
        mantissa += u64::from(field[i - 1] - b'0') * unit;
        unit *= 10;
        i -= 1;
    }
    let negative = match i.checked_sub(1).map(|j| field[j]) {
        Some(b'-') => {
            i -= 1;
            true
        }
        Some(b'+') => {
            i -= 1;
            false
        }
        _ => false,
    };
    if !field[..i].iter().all(|&b| b == b' ') {
        return None;
    }
    let v = mantissa as f64 / POW10[frac];
    Some(if negative { -v } else { v })
}

/// Whether [`fixed`] reads `field`, without computing the value: the same shape test, no
/// arithmetic. For the atoms whose numbers are only checked, not kept.
#[inline]
pub(crate) fn fixed_shape(field: &[u8], frac: usize) -> bool {
    let n = field.len();
    if frac == 0 || n < frac + 1 || n > 15 {
        return false;
    }
    let point = n - frac - 1;
    if field[point] != b'.' || !field[point + 1..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut i = point;
    while i > 0 && field[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i > 0 && matches!(field[i - 1], b'-' | b'+') {
        i -= 1;
    }
    field[..i].iter().all(|&b| b == b' ')
}

#[cfg(test)]
mod tests {
    use super::{decimal, fixed, fixed_shape};

    /// Every field `fixed` reads, `decimal` reads to the same bits: fields built from the bytes
    /// that matter (digits, signs, blanks, points, other whitespace, junk) in every position.
    #[test]
    fn fixed_never_disagrees_with_decimal() {
        let alphabet = b" 0-+.9\t5xe";
        let mut read = 0usize;
        for width in 1..=6usize {
            let mut idx = vec![0usize; width];
            loop {
                let field: Vec<u8> = idx.iter().map(|&k| alphabet[k]).collect();
                for frac in 1..=3 {
                    assert_eq!(fixed_shape(&field, frac), fixed(&field, frac).is_some());
                    if let Some(v) = fixed(&field, frac) {
                        read += 1;
                        assert_eq!(
                            decimal(&field).map(f64::to_bits),
                            Some(v.to_bits()),
                            "{:?} frac {frac}",
                            String::from_utf8_lossy(&field)
                        );
                    }
                }
                // Next combination (odometer).
                let mut k = 0;
                while k < width {
                    idx[k] += 1;
                    if idx[k] < alphabet.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == width {
                    break;
                }
            }
        }
        assert!(read > 1000, "only {read} fields read");
        for i in (-9_999_999i64..=99_999_999).step_by(997) {
            let text = format!("{:8.3}", i as f64 / 1000.0);
            assert_eq!(
                fixed(text.as_bytes(), 3).map(f64::to_bits),
                decimal(text.as_bytes()).map(f64::to_bits),
                "{text:?}"
            );
        }
        for t in ["  -0.000", "    .123", "   -.5", "+12.345", "1234.567"] {
            if let Some(v) = fixed(t.as_bytes(), 3) {
                assert_eq!(decimal(t.as_bytes()).map(f64::to_bits), Some(v.to_bits()));
            }
        }
        assert_eq!(
            fixed(b"  -0.000", 3).map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(fixed(b"  1.2.34", 3), None);
        assert_eq!(fixed(b"- 12.345", 3), None);
        assert_eq!(fixed(b"********", 3), None);
    }

    fn same(text: &str) {
        let std = text.trim().parse::<f64>().ok();
        let ours = decimal(text.as_bytes());
        if let Some(v) = ours {
            assert_eq!(Some(v.to_bits()), std.map(f64::to_bits), "{text:?}");
        }
    }

    #[test]
    fn matches_the_standard_parser_bit_for_bit() {
        for t in [
            "0",
            "-0.000",
            "+1.5",
            "  12.345 ",
            "-999.999",
            "1.",
            ".5",
            "123456789012345",
            "0.1",
            "0.30000000000000004",
            "-12.3456789012345",
            "99999.9999",
            "1e5",
            ".",
            "-",
            "",
            " ",
            "1.2.3",
            "--1",
            "12a",
            "0.000000000000001",
        ] {
            same(t);
        }
        // Every three-decimal coordinate in the PDB's column range.
        for i in (-99_999i64..=99_999).step_by(7) {
            same(&format!("{:.3}", i as f64 / 1000.0));
            same(&format!("{}.{:03}", i / 1000, (i % 1000).abs()));
        }
    }

    #[test]
    fn refuses_what_it_cannot_do_exactly() {
        for t in [
            "1e5",
            "inf",
            "NaN",
            "1234567890123456",
            ".",
            "-",
            "",
            "1.2.3",
            "1,5",
            "+-1",
        ] {
            assert_eq!(decimal(t.as_bytes()), None, "{t:?}");
        }
        assert_eq!(
            decimal(b"-0.0").map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
    }
}
