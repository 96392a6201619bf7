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

#[cfg(test)]
mod tests {
    use super::decimal;

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
