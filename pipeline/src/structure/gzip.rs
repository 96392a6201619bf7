//! Whole-buffer gzip decompression with libdeflate, about twice as fast as zlib-rs on structure
//! files (bench/prepare): every member of a multi-member stream, each checked against its CRC-32
//! and size, the output capped. Three calls into libdeflate, each given a live decompressor and
//! buffers whose lengths it is told, are, with heed's map in `import::lmdb`, the crate's only
//! unsafe code.
#![allow(unsafe_code)]

use std::cell::RefCell;

use libdeflate_sys as sys;

/// Why a gzip stream could not be decompressed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GunzipError {
    /// Not gzip, corrupt, truncated, or a checksum or size that does not match.
    Broken,
    /// The decompressed bytes would exceed the cap.
    TooLarge,
    /// libdeflate could not allocate its decompressor.
    OutOfMemory,
}

/// Deflate cannot expand input by more than about 1032 times: a stream's claimed size (the last
/// member's ISIZE) beyond that is a lie, not a buffer size to reserve.
const MAX_RATIO: u64 = 1032;

/// The first try reserves at most this much, whatever the stream claims (as `prepare`'s readers
/// pre-size buffers); the claim is trusted for the second try, once more than this came out.
const MAX_PREALLOCATION: u64 = 64 << 20;

struct Decompressor(*mut sys::libdeflate_decompressor);

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: no preconditions; a null return (out of memory) is checked.
        let d = unsafe { sys::libdeflate_alloc_decompressor() };
        (!d.is_null()).then_some(Self(d))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { sys::libdeflate_free_decompressor(self.0) }
    }
}

thread_local! {
    /// One decompressor per thread (its tables are reused from file to file).
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Decompresses all members of `raw` (which starts with the gzip magic). More than `max_bytes`
/// of output is [`GunzipError::TooLarge`], found before more than `max_bytes` are written.
#[cfg(test)]
pub(crate) fn gunzip(raw: &[u8], max_bytes: u64) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    gunzip_into(raw, max_bytes, &mut out)?;
    Ok(out)
}

/// [`gunzip`] into `out` (cleared first), so that a caller can reuse one buffer's pages from
/// file to file instead of faulting fresh ones in for each.
pub(crate) fn gunzip_into(
    raw: &[u8],
    max_bytes: u64,
    out: &mut Vec<u8>,
) -> Result<(), GunzipError> {
    out.clear();
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(Decompressor::new().ok_or(GunzipError::OutOfMemory)?);
        }
        let d = slot.as_ref().expect("a decompressor was just made");
        let mut input = raw;
        while !input.is_empty() {
            let consumed = member(d, input, out, max_bytes)?;
            input = &input[consumed..];
        }
        Ok(())
    })
}

/// Appends one member's bytes to `out`; returns the input bytes it took. The first guess at its
/// size is the stream's last ISIZE (exact for the usual single member), doubled until it fits.
fn member(
    d: &Decompressor,
    input: &[u8],
    out: &mut Vec<u8>,
    max_bytes: u64,
) -> Result<usize, GunzipError> {
    let room = max_bytes.saturating_sub(out.len() as u64);
    let bound = (input.len() as u64).saturating_mul(MAX_RATIO).min(room);
    let claimed = input.len().checked_sub(4).map_or(0, |at| {
        u64::from(u32::from_le_bytes(input[at..].try_into().expect("4 bytes")))
    });
    let claimed = (claimed > 0 && claimed <= bound).then_some(claimed);
    let mut cap = claimed
        .unwrap_or_else(|| (input.len() as u64).saturating_mul(4))
        .min(bound)
        .min(MAX_PREALLOCATION);
    loop {
        // Reserve at least one byte: an empty member still needs a valid pointer.
        out.reserve(usize::try_from(cap.max(1)).map_err(|_| GunzipError::TooLarge)?);
        let spare = out.spare_capacity_mut();
        let avail = spare.len().min(usize::try_from(cap).unwrap_or(usize::MAX));
        let (mut took, mut wrote) = (0usize, 0usize);
        // SAFETY: `d` is live; `input` is readable for its length; `spare` is writable for
        // `avail` ≤ its length bytes, and libdeflate writes only within it, reporting how many
        // it wrote in `wrote` (≤ avail) and how many it read in `took` (≤ input.len()).
        let result = unsafe {
            sys::libdeflate_gzip_decompress_ex(
                d.0,
                input.as_ptr().cast(),
                input.len(),
                spare.as_mut_ptr().cast(),
                avail,
                &raw mut took,
                &raw mut wrote,
            )
        };
        match result {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS
                if took > 0 && took <= input.len() && wrote <= avail =>
            {
                // SAFETY: libdeflate initialised the first `wrote` bytes of the spare capacity.
                unsafe { out.set_len(out.len() + wrote) };
                return Ok(took);
            }
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => {
                if cap >= room {
                    return Err(GunzipError::TooLarge);
                }
                cap = match claimed {
                    Some(c) if c > cap => c,
                    _ => cap.saturating_mul(2).max(1 << 16),
                }
                .min(room);
            }
            _ => return Err(GunzipError::Broken),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    fn flate2(raw: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out)?;
        Ok(out)
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                format!(
                    "ATOM  {i:5}  CA  ALA A{:4}    {:8.3}\n",
                    i % 9999,
                    i as f64 * 0.37
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn same_bytes_as_flate2_for_single_multi_and_empty_members() {
        let (a, b) = (text(3000), text(17));
        let cases = [
            gz(&a, 6),
            gz(&a, 1),
            [gz(&a, 6), gz(&b, 9)].concat(),
            [gz(&b, 6), gz(&a, 6)].concat(),
            // Two identical members: the second is not dropped.
            [gz(&a, 6), gz(&a, 6)].concat(),
            [gz(b"", 6), gz(&b, 6), gz(b"", 6)].concat(),
        ];
        for (k, raw) in cases.iter().enumerate() {
            let want = flate2(raw).expect("flate2 reads it");
            assert_eq!(gunzip(raw, 1 << 30).as_deref(), Ok(&want[..]), "case {k}");
        }
    }

    /// The caller's buffer is reused from file to file: whatever it held (a longer stream's
    /// text, a failed stream's partial output) is not part of the next result.
    #[test]
    fn a_reused_buffer_holds_only_the_new_stream() {
        let (long, short) = (text(2000), text(3));
        let mut out = Vec::new();
        gunzip_into(&gz(&long, 6), 1 << 30, &mut out).expect("long");
        assert_eq!(out, long);
        gunzip_into(&gz(&short, 6), 1 << 30, &mut out).expect("short");
        assert_eq!(out, short);
        let broken = gz(&long, 6);
        assert_eq!(
            gunzip_into(&broken[..broken.len() - 9], 1 << 30, &mut out),
            Err(GunzipError::Broken)
        );
        gunzip_into(&gz(&short, 6), 1 << 30, &mut out).expect("after a failure");
        assert_eq!(out, short);
    }

    #[test]
    fn broken_truncated_and_trailing_junk_are_refused() {
        let good = gz(&text(500), 6);
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        for raw in [
            good[..good.len() - 1].to_vec(),
            good[..20].to_vec(),
            flipped,
            bad_crc,
            [good.clone(), b"junk".to_vec()].concat(),
            vec![0x1f, 0x8b, 8, 0, 0, 0],
        ] {
            assert_eq!(gunzip(&raw, 1 << 30), Err(GunzipError::Broken));
            assert!(flate2(&raw).is_err(), "flate2 refuses it too");
        }
    }

    #[test]
    fn the_cap_holds_whatever_the_stream_claims() {
        let zeros = gz(&vec![0u8; 3 << 20], 1);
        assert_eq!(gunzip(&zeros, 3 << 20).map(|v| v.len()), Ok(3 << 20));
        assert_eq!(gunzip(&zeros, (3 << 20) - 1), Err(GunzipError::TooLarge));
        // A stream that lies about its size (ISIZE says 4 GiB − 1): the lie reserves nothing.
        let mut lying = gz(&text(100), 6);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gunzip(&lying, 1 << 30), Err(GunzipError::Broken));
        // Larger than the first try's reservation: read whole on the second, and still capped.
        let big = gz(&vec![7u8; (MAX_PREALLOCATION + 4096) as usize], 1);
        let out = gunzip(&big, 1 << 30).expect("a big honest stream");
        assert!(out.len() as u64 == MAX_PREALLOCATION + 4096 && out.iter().all(|&b| b == 7));
        assert_eq!(
            gunzip(&big, MAX_PREALLOCATION + 4095),
            Err(GunzipError::TooLarge)
        );
        // A second member pushes the total over the cap.
        let two = [gz(&vec![b'x'; 1 << 20], 6), gz(&vec![b'y'; 1 << 20], 6)].concat();
        assert_eq!(gunzip(&two, 1 << 21).map(|v| v.len()), Ok(1 << 21));
        assert_eq!(gunzip(&two, (1 << 21) - 1), Err(GunzipError::TooLarge));
    }
}
