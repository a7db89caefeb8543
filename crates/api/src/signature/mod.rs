//! Request signatures of TencentCloud API 3.0: TC3-HMAC-SHA256 (v3, spec §1.4) and
//! HmacSHA1/HmacSHA256 (v1, spec §1.5). Pure: the caller supplies the request as received.

pub mod tc3;
pub mod v1;

/// Constant-time comparison of two signatures.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
