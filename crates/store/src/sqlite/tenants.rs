//! Applications and API credentials (admins and allowed apps kept as JSON arrays).

use super::codec::{app_from_column, from_json, to_json};
use crate::{AppRecord, CredentialRecord, StoreResult};
use hearth_types::{SdkAppId, UnixSecs};
use rusqlite::{params, Connection};

pub(super) fn upsert_app(conn: &Connection, app: &AppRecord) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO apps (sdk_app_id, secret_key, admins_json, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sdk_app_id) DO UPDATE SET
             secret_key = excluded.secret_key,
             admins_json = excluded.admins_json,
             created_at = excluded.created_at",
    )?
    .execute(params![
        app.sdk_app_id.0,
        app.secret_key,
        to_json(&app.admins),
        app.created_at.0
    ])?;
    Ok(())
}

pub(super) fn apps(conn: &Connection) -> StoreResult<Vec<AppRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sdk_app_id, secret_key, admins_json, created_at FROM apps ORDER BY sdk_app_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(AppRecord {
            sdk_app_id: app_from_column(r.get(0)?)?,
            secret_key: r.get(1)?,
            admins: from_json("app admins", &r.get::<_, String>(2)?)?,
            created_at: UnixSecs(r.get(3)?),
        });
    }
    Ok(out)
}

pub(super) fn upsert_credential(conn: &Connection, cred: &CredentialRecord) -> StoreResult<()> {
    let apps: Vec<u32> = cred.apps.iter().map(|a| a.0).collect();
    conn.prepare_cached(
        "INSERT INTO credentials (secret_id, secret_key, apps_json, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (secret_id) DO UPDATE SET
             secret_key = excluded.secret_key,
             apps_json = excluded.apps_json,
             created_at = excluded.created_at",
    )?
    .execute(params![cred.secret_id, cred.secret_key, to_json(&apps), cred.created_at.0])?;
    Ok(())
}

pub(super) fn credentials(conn: &Connection) -> StoreResult<Vec<CredentialRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT secret_id, secret_key, apps_json, created_at FROM credentials ORDER BY secret_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let apps: Vec<u32> = from_json("credential apps", &r.get::<_, String>(2)?)?;
        out.push(CredentialRecord {
            secret_id: r.get(0)?,
            secret_key: r.get(1)?,
            apps: apps.into_iter().map(SdkAppId).collect(),
            created_at: UnixSecs(r.get(3)?),
        });
    }
    Ok(out)
}
