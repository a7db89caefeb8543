//! The client edge of Hearth: WHIP publish and WHEP play (RFC 9725 and the WHEP draft) on the
//! media plane, with UserSig and PrivateMapKey checks. Turns HTTP requests into `SfuHandle`
//! calls; knows nothing of SQL.

mod auth;
mod error;
mod whip;

pub use auth::{AppAuth, Apps};
pub use whip::router;
