//! Digests: a reader that hashes what passes through it, and the check that the bytes
//! are the ones their descriptor names. It reads; it neither fetches nor writes.

use std::io::Read;

use sha2::{Digest as _, Sha256};

use super::error::StackError;

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest as descriptors write it, checked: only sha256, the one algorithm every
/// registry serves (sha512 is allowed by the spec but unused).
pub fn parse(digest: &str, what: &str) -> Result<String, StackError> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| StackError::Invalid {
            what: what.to_string(),
            problem: format!("digest {digest:?} is not sha256:<hex>, the only algorithm shipway verifies"),
        })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(StackError::Invalid {
            what: what.to_string(),
            problem: format!("digest {digest:?} is not 64 lowercase hex digits"),
        });
    }
    Ok(digest.to_string())
}

/// A reader that counts and (when asked) hashes the bytes read through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Option<Sha256>,
    pub count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R, hash: bool) -> Hashing<R> {
        Hashing {
            inner,
            hasher: hash.then(Sha256::new),
            count: 0,
        }
    }

    /// Read what is left (a decompressor or a tar reader may stop before the end: trailing
    /// padding still counts in the digest), then compare with `expected`.
    pub fn finish(mut self, what: &str, expected: &str, size: Option<u64>) -> Result<u64, StackError> {
        std::io::copy(&mut self, &mut std::io::sink()).map_err(|e| StackError::Layer {
            digest: expected.to_string(),
            problem: format!("reading {what}: {e}"),
        })?;
        let actual = self
            .hasher
            .take()
            .map(|h| format!("sha256:{}", hex(&h.finalize())));
        if let Some(actual) = actual {
            if actual != expected {
                return Err(StackError::DigestMismatch {
                    what: what.to_string(),
                    digest: expected.to_string(),
                    actual,
                    size: self.count,
                });
            }
        }
        if let Some(size) = size.filter(|s| *s != self.count) {
            return Err(StackError::SizeMismatch {
                what: what.to_string(),
                digest: expected.to_string(),
                expected: size,
                actual: self.count,
            });
        }
        Ok(self.count)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// Check whole `bytes` (a manifest, a config) against `expected`.
pub fn check(what: &str, expected: &str, bytes: &[u8]) -> Result<(), StackError> {
    let actual = sha256(bytes);
    if actual != expected {
        return Err(StackError::DigestMismatch {
            what: what.to_string(),
            digest: expected.to_string(),
            actual,
            size: bytes.len() as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_is_checked_even_when_its_consumer_stops_early() {
        let bytes = b"hello, layer".to_vec();
        let digest = sha256(&bytes);
        let mut r = Hashing::new(&bytes[..], true);
        let mut first = [0u8; 3];
        r.read_exact(&mut first).expect("read");
        assert_eq!(r.finish("blob", &digest, Some(12)).expect("same"), 12);

        let mut other = bytes.clone();
        other[0] = b'j';
        let err = Hashing::new(&other[..], true)
            .finish("blob", &digest, None)
            .expect_err("differs");
        assert!(err.to_string().contains(&digest), "{err}");
    }

    #[test]
    fn only_sha256_digests_are_taken() {
        assert!(parse(&sha256(b"x"), "blob").is_ok());
        assert!(parse("sha512:abcd", "blob").is_err());
        assert!(parse("sha256:../../etc", "blob").is_err());
    }
}
