//! Client authentication: the UserSig of `Authorization: Bearer`, verified with the
//! application's key, and the PrivateMapKey when the application requires one.

use crate::error::EdgeError;
use crate::proto::ProtoError;
use hearth_auth::{verify_usersig, PrivateMapKey, Privileges};
use hearth_types::{RoomKey, SdkAppId, UnixSecs, UserId};
use std::collections::HashMap;

/// What the edge knows of an application.
#[derive(Clone)]
pub struct AppAuth {
    pub key: String,
    /// Clients must present a PrivateMapKey granting the room and the privileges they use.
    pub require_private_map_key: bool,
}

pub type Apps = HashMap<SdkAppId, AppAuth>;

/// Verifies a client's UserSig for `app`; returns the user it names.
pub fn user_of<'a>(
    apps: &'a Apps,
    app: SdkAppId,
    usersig: &str,
    now: UnixSecs,
) -> Result<(UserId, &'a AppAuth), EdgeError> {
    let auth = apps
        .get(&app)
        .ok_or(EdgeError::Unauthorized("unknown SdkAppId"))?;
    let v = verify_usersig(usersig, app, &auth.key, now).map_err(|e| {
        tracing::info!(app = app.0, error = %e, "UserSig rejected");
        EdgeError::Unauthorized("invalid or expired UserSig")
    })?;
    Ok((UserId(v.identifier), auth))
}

/// Verifies the UserSig a socket's first message (`enter`, `login`) carries and that it was
/// issued to the `userid` the message claims.
pub fn claimed_user<'a>(
    apps: &'a Apps,
    app: SdkAppId,
    usersig: &str,
    userid: &str,
    now: UnixSecs,
) -> Result<(UserId, &'a AppAuth), ProtoError> {
    let (user, auth) = user_of(apps, app, usersig, now)
        .map_err(|_| ProtoError::Unauthorized("invalid or expired UserSig".into()))?;
    if user.as_str() != userid {
        return Err(ProtoError::Unauthorized(
            "the UserSig was issued to another userid".into(),
        ));
    }
    Ok((user, auth))
}

/// Checks a PrivateMapKey (a UserSig carrying the room-permission userbuf) when the app
/// requires one: it must be valid, for this user, room and app, unexpired, and grant `needed`.
pub fn check_private_map_key(
    auth: &AppAuth,
    app: SdkAppId,
    user: &UserId,
    room: &RoomKey,
    pmk: Option<&str>,
    needed: Privileges,
    now: UnixSecs,
) -> Result<(), EdgeError> {
    if !auth.require_private_map_key {
        return Ok(());
    }
    let pmk = pmk.ok_or(EdgeError::Forbidden(
        "this application requires a privatemapkey",
    ))?;
    let v = verify_usersig(pmk, app, &auth.key, now)
        .map_err(|_| EdgeError::Forbidden("invalid or expired privatemapkey"))?;
    let buf = v.userbuf.ok_or(EdgeError::Forbidden(
        "the privatemapkey carries no room permissions",
    ))?;
    let key = PrivateMapKey::decode(&buf)
        .map_err(|_| EdgeError::Forbidden("the privatemapkey is malformed"))?;
    if key.identifier != user.as_str() || key.sdk_app_id != app {
        return Err(EdgeError::Forbidden(
            "the privatemapkey belongs to another user",
        ));
    }
    if key.room != *room {
        return Err(EdgeError::Forbidden(
            "the privatemapkey is for another room",
        ));
    }
    if key.expire_at < now {
        return Err(EdgeError::Forbidden("the privatemapkey has expired"));
    }
    if !key.privileges.contains(needed) {
        return Err(EdgeError::Forbidden(
            "the privatemapkey does not grant this",
        ));
    }
    Ok(())
}
