//! The dashboards' and usage's rollups: seconds of media received per room, 5-minute bucket
//! and usage class; entry attempts; clients' freeze reports and users' round-trip samples per
//! room and 10-second bucket, folded into hours once a day old. Written as sums (upserts), read summed over apps, rooms
//! and buckets.

use super::codec::{count_from_column, room_columns, room_from_columns, sql_count};
use crate::{EntryAttempt, QualityBucket, QualityRollup, StoreResult, UsageRecord, UsageSum};
use hearth_types::{SdkAppId, UnixSecs};
use rusqlite::{params, Connection};

const HOUR: i64 = 3_600;
/// Quality rollups older than this are folded into hours.
pub(super) const FINE_FOR: i64 = 86_400;

pub(super) fn add_usage(conn: &mut Connection, usage: &[UsageRecord]) -> StoreResult<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO usage (sdk_app_id, bucket, room_kind, room_string,
                                audio, sd, hd, full_hd, qhd, uhd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (sdk_app_id, bucket, room_kind, room_string) DO UPDATE SET
                 audio = audio + excluded.audio, sd = sd + excluded.sd,
                 hd = hd + excluded.hd, full_hd = full_hd + excluded.full_hd,
                 qhd = qhd + excluded.qhd, uhd = uhd + excluded.uhd",
        )?;
        for u in usage {
            let (kind, room) = room_columns(&u.room);
            let s = u.secs;
            stmt.execute(params![
                u.sdk_app_id.0,
                u.bucket.0,
                kind,
                room,
                s[0],
                s[1],
                s[2],
                s[3],
                s[4],
                s[5]
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Usage of `apps` in buckets starting within `[from, to)`: summed per bucket (oldest first),
/// or per room (by room) with `bucket` set to `from`.
pub(super) fn usage(
    conn: &Connection,
    apps: &[SdkAppId],
    (from, to): (UnixSecs, UnixSecs),
    by_room: bool,
) -> StoreResult<Vec<UsageSum>> {
    let group = if by_room {
        "room_kind, room_string"
    } else {
        "bucket"
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT bucket, room_kind, room_string, SUM(audio), SUM(sd), SUM(hd), SUM(full_hd),
                SUM(qhd), SUM(uhd)
         FROM usage
         WHERE sdk_app_id IN (SELECT value FROM json_each(?1)) AND bucket >= ?2 AND bucket < ?3
         GROUP BY {group} ORDER BY {group}"
    ))?;
    let ids: Vec<u32> = apps.iter().map(|a| a.0).collect();
    let mut rows = stmt.query(params![super::codec::to_json(&ids), from.0, to.0])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut secs = [0f64; 6];
        for (i, s) in secs.iter_mut().enumerate() {
            *s = r.get(3 + i)?;
        }
        out.push(UsageSum {
            bucket: if by_room { from } else { UnixSecs(r.get(0)?) },
            room: if by_room {
                Some(room_from_columns(&r.get::<_, String>(1)?, r.get(2)?)?)
            } else {
                None
            },
            secs,
        });
    }
    Ok(out)
}

pub(super) fn record_entry(conn: &Connection, a: &EntryAttempt) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO entry_attempts (sdk_app_id, time_ms, room_string, user_id, ok, join_ms, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.sdk_app_id.0,
        a.time_ms,
        a.room,
        a.user_id,
        a.ok,
        a.join_ms,
        a.error
    ])?;
    Ok(())
}

pub(super) fn add_quality_rollup(
    conn: &mut Connection,
    rollups: &[QualityRollup],
) -> StoreResult<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO quality_rollup (sdk_app_id, bucket, room_kind, room_string, video_ms,
                                  video_frozen_ms, audio_ms, audio_frozen_ms, rtt_samples,
                                  rtt_slow)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (sdk_app_id, bucket, room_kind, room_string) DO UPDATE SET
                 video_ms = video_ms + excluded.video_ms,
                 video_frozen_ms = video_frozen_ms + excluded.video_frozen_ms,
                 audio_ms = audio_ms + excluded.audio_ms,
                 audio_frozen_ms = audio_frozen_ms + excluded.audio_frozen_ms,
                 rtt_samples = rtt_samples + excluded.rtt_samples,
                 rtt_slow = rtt_slow + excluded.rtt_slow",
        )?;
        for f in rollups {
            let (kind, room) = room_columns(&f.room);
            stmt.execute(params![
                f.sdk_app_id.0,
                f.bucket.0,
                kind,
                room,
                f.video_ms,
                f.video_frozen_ms,
                f.audio_ms,
                f.audio_frozen_ms,
                sql_count(f.rtt_samples),
                sql_count(f.rtt_slow)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Per bucket of `step` seconds from `from` up to `to` (exclusive), oldest first: freeze
/// reports, round-trip samples and entry attempts, of one room (its RoomId, numeric or string) when given.
pub(super) fn quality_buckets(
    conn: &Connection,
    app: SdkAppId,
    room: Option<&str>,
    (from, to): (UnixSecs, UnixSecs),
    step: i64,
) -> StoreResult<Vec<QualityBucket>> {
    let step = step.max(1);
    let n = usize::try_from((to.0 - from.0).max(0) / step).unwrap_or(0);
    let mut out: Vec<QualityBucket> = (0..n)
        .map(|i| QualityBucket {
            start: UnixSecs(from.0 + i as i64 * step),
            ..Default::default()
        })
        .collect();
    let index = |t: i64| -> Option<usize> {
        (t >= from.0 && t < to.0).then(|| ((t - from.0) / step) as usize)
    };
    {
        let mut stmt = conn.prepare_cached(
            "SELECT bucket, SUM(video_ms), SUM(video_frozen_ms), SUM(audio_ms), SUM(audio_frozen_ms),
                    SUM(rtt_samples), SUM(rtt_slow)
             FROM quality_rollup
             WHERE sdk_app_id = ?1 AND bucket >= ?2 AND bucket < ?3
                   AND (?4 IS NULL OR room_string = ?4)
             GROUP BY bucket",
        )?;
        let mut rows = stmt.query(params![app.0, from.0, to.0, room])?;
        while let Some(r) = rows.next()? {
            let Some(b) = index(r.get(0)?).and_then(|i| out.get_mut(i)) else {
                continue;
            };
            b.video_ms += r.get::<_, f64>(1)?;
            b.video_frozen_ms += r.get::<_, f64>(2)?;
            b.audio_ms += r.get::<_, f64>(3)?;
            b.audio_frozen_ms += r.get::<_, f64>(4)?;
            b.rtt_samples += count_from_column(r.get(5)?);
            b.rtt_slow += count_from_column(r.get(6)?);
        }
    }
    {
        let mut stmt = conn.prepare_cached(
            "SELECT time_ms, ok, join_ms FROM entry_attempts
             WHERE sdk_app_id = ?1 AND time_ms >= ?2 AND time_ms < ?3
                   AND (?4 IS NULL OR room_string = ?4)",
        )?;
        let mut rows = stmt.query(params![
            app.0,
            from.0.saturating_mul(1000),
            to.0.saturating_mul(1000),
            room
        ])?;
        while let Some(r) = rows.next()? {
            let at: i64 = r.get(0)?;
            let Some(b) = index(at.div_euclid(1000)).and_then(|i| out.get_mut(i)) else {
                continue;
            };
            b.attempts += 1;
            if r.get::<_, bool>(1)? {
                b.joined += 1;
                if r.get::<_, i64>(2)? <= 5_000 {
                    b.joined_in_5s += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Folds quality rollups of 10-second buckets older than `before` into their hours.
pub(super) fn fold_quality_rollup(conn: &mut Connection, before: UnixSecs) -> StoreResult<u64> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "INSERT INTO quality_rollup (sdk_app_id, bucket, room_kind, room_string, video_ms,
                              video_frozen_ms, audio_ms, audio_frozen_ms, rtt_samples, rtt_slow)
         SELECT sdk_app_id, bucket - bucket % ?2, room_kind, room_string, SUM(video_ms),
                SUM(video_frozen_ms), SUM(audio_ms), SUM(audio_frozen_ms), SUM(rtt_samples),
                SUM(rtt_slow)
         FROM quality_rollup WHERE bucket < ?1 AND bucket % ?2 != 0
         GROUP BY sdk_app_id, bucket - bucket % ?2, room_kind, room_string
         ON CONFLICT (sdk_app_id, bucket, room_kind, room_string) DO UPDATE SET
             video_ms = video_ms + excluded.video_ms,
             video_frozen_ms = video_frozen_ms + excluded.video_frozen_ms,
             audio_ms = audio_ms + excluded.audio_ms,
             audio_frozen_ms = audio_frozen_ms + excluded.audio_frozen_ms,
             rtt_samples = rtt_samples + excluded.rtt_samples,
             rtt_slow = rtt_slow + excluded.rtt_slow",
    )?
    .execute(params![before.0, HOUR])?;
    let n = tx
        .prepare_cached("DELETE FROM quality_rollup WHERE bucket < ?1 AND bucket % ?2 != 0")?
        .execute(params![before.0, HOUR])?;
    tx.commit()?;
    Ok(n as u64)
}

/// Deletes rollup rows and entry attempts older than `cutoff`; returns how many.
pub(super) fn purge(conn: &mut Connection, cutoff: UnixSecs) -> StoreResult<u64> {
    let tx = conn.transaction()?;
    let mut n = tx
        .prepare_cached("DELETE FROM usage WHERE bucket < ?1")?
        .execute(params![cutoff.0])?;
    n += tx
        .prepare_cached("DELETE FROM quality_rollup WHERE bucket < ?1")?
        .execute(params![cutoff.0])?;
    n += tx
        .prepare_cached("DELETE FROM entry_attempts WHERE time_ms < ?1")?
        .execute(params![cutoff.0.saturating_mul(1000)])?;
    tx.commit()?;
    Ok(n as u64)
}
